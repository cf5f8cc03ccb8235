package tables_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

func Example() {
	ctx := context.Background()
	backend := memory.New()
	defer backend.Close()
	db, err := tables.Open(ctx, backend, tables.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	cat := db.Catalog()
	if _, err := cat.CreateNamespace(ctx, "chat"); err != nil {
		panic(err)
	}
	_, err = cat.CreateTable(ctx, catalog.Table{
		Namespace: "chat", Name: "messages", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{
			{Name: "id", Type: row.TypeInt64},
			{Name: "body", Type: row.TypeString},
		},
	})
	if err != nil {
		panic(err)
	}
	messages, err := db.User(ctx, "chat", "messages")
	if err != nil {
		panic(err)
	}

	// Rows as a server receives them, as JSON-like maps.
	for i, body := range []string{"hello", "how are you?", "bye"} {
		vals, err := messages.Table().ValuesFromMap(map[string]any{"id": float64(i + 1), "body": body})
		if err != nil {
			panic(err)
		}
		if _, err := messages.Insert(ctx, "alice", vals); err != nil {
			panic(err)
		}
	}
	_, err = messages.Insert(ctx, "alice", []row.Value{row.Int64(1), row.String("again")})
	fmt.Println(errors.Is(err, core.ErrDuplicateKey))

	updated, _ := messages.Update(ctx, "alice", row.Int64(2), map[string]row.Value{"body": row.String("how are you doing?")})
	fmt.Println(updated.Values[1].Str())
	_ = messages.Delete(ctx, "alice", row.Int64(3))

	page, _ := messages.Scan(ctx, "alice", tables.ScanOptions{Limit: 10})
	for _, r := range page.Rows {
		fmt.Println(r.Values[0].Int64(), r.Values[1].Str())
	}
	n, _ := messages.Count(ctx, "bob")
	fmt.Println("bob has", n, "rows")
	// Output:
	// true
	// how are you doing?
	// 1 hello
	// 2 how are you doing?
	// bob has 0 rows
}
