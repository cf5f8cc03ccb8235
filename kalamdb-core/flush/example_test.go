package flush_test

import (
	"context"
	"fmt"
	"os"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Example opens the cold tier on a backend, flushes a user table to
// Parquet, and reads the flushed rows back through the table store.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "kalamdb-parquet")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	m, err := flush.Open(ctx, memory.New(), flush.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	cat := m.DB().Catalog()
	if _, err := cat.CreateNamespace(ctx, "app"); err != nil {
		panic(err)
	}
	if _, err := cat.CreateTable(ctx, catalog.Table{
		Namespace: "app", Name: "notes", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "text", Type: row.TypeString}},
	}); err != nil {
		panic(err)
	}
	notes, err := m.DB().User(ctx, "app", "notes")
	if err != nil {
		panic(err)
	}
	for i, text := range []string{"buy milk", "call bob"} {
		if _, err := notes.Insert(ctx, "alice", []row.Value{row.Int64(int64(i + 1)), row.String(text)}); err != nil {
			panic(err)
		}
	}

	res, err := m.Flush(ctx, "app", "notes")
	if err != nil {
		panic(err)
	}
	fmt.Println("flushed", res.Rows, "rows to", res.Files)

	r, err := notes.Get(ctx, "alice", row.Int64(2)) // now read from Parquet
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Values[1].Str())
	if _, err := m.Close(ctx); err != nil {
		panic(err)
	}
	// Output:
	// flushed 2 rows to [app/notes/u-alice/seg-1-00000000000000000001.parquet]
	// call bob
}

// ExampleManager_Compact flushes a shared table three times, merges its
// three segments into one, then adds a column: the rows flushed before
// read it as null.
func ExampleManager_Compact() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "kalamdb-parquet")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	m, err := flush.Open(ctx, memory.New(), flush.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	if _, err := m.DB().Catalog().CreateNamespace(ctx, "app"); err != nil {
		panic(err)
	}
	if _, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{
		Namespace: "app", Name: "prices", Type: catalog.SharedTable, PrimaryKey: "sku",
		Columns: []catalog.Column{{Name: "sku", Type: row.TypeString}, {Name: "cents", Type: row.TypeInt64}},
	}); err != nil {
		panic(err)
	}
	prices, err := m.DB().Shared(ctx, "app", "prices")
	if err != nil {
		panic(err)
	}
	if _, err := prices.Insert(ctx, []row.Value{row.String("apple"), row.Int64(50)}); err != nil {
		panic(err)
	}
	for _, cents := range []int64{55, 60, 65} {
		if _, err := prices.Update(ctx, row.String("apple"), map[string]row.Value{"cents": row.Int64(cents)}); err != nil {
			panic(err)
		}
		if _, err := m.Flush(ctx, "app", "prices"); err != nil {
			panic(err)
		}
	}
	res, err := m.Compact(ctx, "app", "prices")
	if err != nil {
		panic(err)
	}
	fmt.Printf("merged %d segments into %d: %d version kept, %d dropped\n", res.Merged, res.Written, res.Rows, res.Dropped)

	if _, err := m.DB().AddColumn(ctx, "app", "prices", catalog.Column{Name: "currency", Type: row.TypeString, Nullable: true}); err != nil {
		panic(err)
	}
	r, err := prices.Get(ctx, row.String("apple"))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Values[1].Int64(), r.Values[2])
	if _, err := m.Close(ctx); err != nil {
		panic(err)
	}
	// Output:
	// merged 3 segments into 1: 1 version kept, 2 dropped
	// 65 NULL
}
