package bbolt_test

import (
	"context"
	"fmt"
	"os"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/bbolt"
)

// Open a bbolt backend by name through a Registry, with the section a
// config.toml would hold, and page through a partition.
func Example() {
	dir, err := os.MkdirTemp("", "kalamdb-bbolt-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	reg := store.NewRegistry()
	bbolt.Register(reg)
	ctx := context.Background()
	b, err := reg.Open(ctx, bbolt.Name, store.ConfigMap{"path": dir, "sync_writes": false})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	events := store.MustPartition("events")
	if err := b.CreatePartition(ctx, events); err != nil {
		panic(err)
	}
	for i := 1; i <= 5; i++ {
		if err := b.Put(ctx, events, []byte(fmt.Sprintf("e%d", i)), []byte(fmt.Sprint(i*i))); err != nil {
			panic(err)
		}
	}
	// Two pages of two keys: resume after the last key of a page.
	var last []byte
	for page := 1; page <= 2; page++ {
		it, err := b.Scan(ctx, events, store.ScanOptions{Start: last, ExclusiveStart: last != nil, Limit: 2})
		if err != nil {
			panic(err)
		}
		for it.Next() {
			fmt.Printf("page %d: %s=%s\n", page, it.Key(), it.Value())
			last = append(last[:0], it.Key()...)
		}
		if err := it.Close(); err != nil {
			panic(err)
		}
	}
	// Output:
	// page 1: e1=1
	// page 1: e2=4
	// page 2: e3=9
	// page 2: e4=16
}
