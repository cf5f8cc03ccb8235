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
	cat := m.Catalog()
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
