package tables_test

import (
	"context"
	"fmt"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// UpdateMany and DeleteMany change several rows in one batch of the
// storage backend: all of them or, when the batch fails, none. Rows that
// are not there are left out of the count.
func ExampleRowStore_UpdateMany() {
	ctx := context.Background()
	backend := memory.New()
	defer backend.Close()
	db, err := tables.Open(ctx, backend, tables.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Catalog().CreateNamespace(ctx, "shop"); err != nil {
		panic(err)
	}
	_, err = db.Catalog().CreateTable(ctx, catalog.Table{
		Namespace: "shop", Name: "stock", Type: catalog.SharedTable, PrimaryKey: "sku",
		Columns: []catalog.Column{{Name: "sku", Type: row.TypeString}, {Name: "count", Type: row.TypeInt64}},
	})
	if err != nil {
		panic(err)
	}
	stock, err := db.RowStore(ctx, "shop", "stock", "")
	if err != nil {
		panic(err)
	}
	_, err = stock.Insert(ctx,
		[]row.Value{row.String("apple"), row.Int64(10)},
		[]row.Value{row.String("pear"), row.Int64(4)},
		[]row.Value{row.String("plum"), row.Int64(0)})
	if err != nil {
		panic(err)
	}

	n, err := stock.UpdateMany(ctx, []tables.RowUpdate{
		{PK: row.String("apple"), Set: map[string]row.Value{"count": row.Int64(9)}},
		{PK: row.String("pear"), Set: map[string]row.Value{"count": row.Int64(3)}},
		{PK: row.String("kiwi"), Set: map[string]row.Value{"count": row.Int64(1)}},
	})
	fmt.Println("updated:", n, err)
	n, err = stock.DeleteMany(ctx, []row.Value{row.String("plum"), row.String("kiwi")})
	fmt.Println("deleted:", n, err)

	page, _ := stock.Scan(ctx, tables.ScanOptions{})
	for _, r := range page.Rows {
		fmt.Println(r.Values[0].Str(), r.Values[1].Int64())
	}
	// Output:
	// updated: 2 <nil>
	// deleted: 1 <nil>
	// apple 9
	// pear 3
}
