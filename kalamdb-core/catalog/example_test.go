package catalog_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

func Example() {
	ctx := context.Background()
	backend := memory.New()
	defer backend.Close()

	cat, err := catalog.Open(ctx, backend, catalog.Options{})
	if err != nil {
		panic(err)
	}
	if _, err := cat.CreateNamespace(ctx, "chat"); err != nil {
		panic(err)
	}
	tbl, err := cat.CreateTable(ctx, catalog.Table{
		Namespace: "chat", Name: "messages", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{
			{Name: "id", Type: row.TypeInt64},
			{Name: "body", Type: row.TypeString, Nullable: true},
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(tbl.FullName(), tbl.Partition())

	_, err = cat.CreateTable(ctx, catalog.Table{
		Namespace: "chat", Name: "broken", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "id", Type: row.TypeString}},
	})
	var ce *core.ColumnError
	fmt.Println(errors.Is(err, core.ErrInvalidSchema), errors.As(err, &ce) && ce.Column == "id")
	fmt.Println(err)
	// Output:
	// chat.messages t:chat.messages.1
	// true true
	// invalid schema: column "id": is defined twice
}
