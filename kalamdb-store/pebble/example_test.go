package pebble_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/pebble"
)

// Open a Pebble backend by name through a Registry, with the section a
// config.toml would hold, write to a partition and scan it back.
func Example() {
	dir, err := os.MkdirTemp("", "kalamdb-pebble-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	reg := store.NewRegistry()
	pebble.Register(reg)
	ctx := context.Background()
	b, err := reg.Open(ctx, pebble.Name, store.ConfigMap{
		"path":        filepath.Join(dir, "db"),
		"sync_writes": false,
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	users := store.MustPartition("users")
	if err := b.CreatePartition(ctx, users); err != nil {
		panic(err)
	}
	err = b.Batch(ctx, []store.Operation{
		store.PutOp(users, []byte("u1"), []byte("ada")),
		store.PutOp(users, []byte("u2"), []byte("grace")),
		store.PutOp(users, []byte("u3"), []byte("alan")),
	})
	if err != nil {
		panic(err)
	}
	it, err := b.Scan(ctx, users, store.ScanOptions{Start: []byte("u2")})
	if err != nil {
		panic(err)
	}
	for it.Next() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		panic(err)
	}
	// Output:
	// u2=grace
	// u3=alan
}

// Open with an explicit configuration: DefaultConfig with another path.
func ExampleOpenWith() {
	dir, err := os.MkdirTemp("", "kalamdb-pebble-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cfg := pebble.DefaultConfig()
	cfg.Path = dir
	b, err := pebble.OpenWith(cfg)
	if err != nil {
		panic(err)
	}
	defer b.Close()
	fmt.Printf("%+v\n", b.Capabilities())
	// Output:
	// {SnapshotScans:true Durable:true MultiProcess:false MaxBatchOps:0 MaxBatchBytes:0}
}
