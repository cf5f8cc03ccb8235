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

// A request handler gets one RowStore per request: the table is looked up
// once and the caller bound once, so every call of the request reaches the
// same table and only the caller's rows.
func ExampleDB_RowStore() {
	ctx := context.Background()
	backend := memory.New()
	defer backend.Close()
	db, err := tables.Open(ctx, backend, tables.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Catalog().CreateNamespace(ctx, "chat"); err != nil {
		panic(err)
	}
	_, err = db.Catalog().CreateTable(ctx, catalog.Table{
		Namespace: "chat", Name: "messages", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "body", Type: row.TypeString}},
	})
	if err != nil {
		panic(err)
	}

	// The request of alice: insert a row from JSON-like input.
	alice, err := db.RowStore(ctx, "chat", "messages", "alice")
	if err != nil {
		panic(err)
	}
	vals, err := alice.Table().ValuesFromMap(map[string]any{"id": float64(1), "body": "hello"})
	if err != nil {
		panic(err)
	}
	if _, err := alice.Insert(ctx, vals); err != nil {
		panic(err)
	}

	// The request of bob reaches bob's rows only.
	bob, err := db.RowStore(ctx, "chat", "messages", "bob")
	if err != nil {
		panic(err)
	}
	_, err = bob.Get(ctx, row.Int64(1))
	fmt.Println("bob sees alice's row:", !errors.Is(err, core.ErrRowNotFound))
	r, _ := alice.Get(ctx, row.Int64(1))
	fmt.Println("alice:", r.Values[1].Str())

	// The table is dropped and created again: the old store never reaches
	// the new table; a new store does.
	_ = db.Catalog().DropTable(ctx, "chat", "messages")
	_, _ = db.Catalog().CreateTable(ctx, catalog.Table{
		Namespace: "chat", Name: "messages", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}},
	})
	_, err = alice.Insert(ctx, vals)
	fmt.Println("old store:", errors.Is(err, core.ErrTableNotFound))
	alice, _ = db.RowStore(ctx, "chat", "messages", "alice")
	n, _ := alice.Count(ctx)
	fmt.Println("new table rows:", n)
	// Output:
	// bob sees alice's row: false
	// alice: hello
	// old store: true
	// new table rows: 0
}
