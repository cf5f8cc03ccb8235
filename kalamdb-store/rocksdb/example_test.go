package rocksdb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"
)

// Opening the backend by name through a Registry, from the
// [storage.rocksdb] section of config.toml, as the server does.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "kalamdb-example-")
	defer os.RemoveAll(dir)

	reg := store.NewRegistry()
	rocksdb.Register(reg)
	ctx := context.Background()
	b, err := reg.Open(ctx, "rocksdb", store.ConfigMap{
		"path":           filepath.Join(dir, "db"),
		"block_cache_mb": 16,
		"sync_writes":    true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	users := store.MustPartition("users")
	_ = b.CreatePartition(ctx, users)
	_ = b.Put(ctx, users, []byte("u1"), []byte("alice"))
	v, _ := b.Get(ctx, users, []byte("u1"))
	fmt.Printf("%s\n", v)

	_, err = reg.Open(ctx, "rocksdb", store.ConfigMap{"pth": dir})
	fmt.Println(err)
	// Output:
	// alice
	// opening storage backend "rocksdb": storage.rocksdb.pth: unknown key; known keys: path, max_open_files, block_cache_mb, write_buffer_mb, total_write_buffer_mb, max_wal_mb, compression, sync_writes, memtable_bloom
}

// Partitions are found again when the database is reopened; a scan reads a
// key range in either direction.
func ExampleOpenWith() {
	dir, _ := os.MkdirTemp("", "kalamdb-example-")
	defer os.RemoveAll(dir)
	cfg := rocksdb.DefaultConfig()
	cfg.Path = dir
	ctx := context.Background()

	b, _ := rocksdb.OpenWith(cfg)
	events := store.MustPartition("events")
	_ = b.CreatePartition(ctx, events)
	_ = b.Batch(ctx, []store.Operation{
		store.PutOp(events, []byte("2024-01-01/a"), []byte("new year")),
		store.PutOp(events, []byte("2024-02-14/b"), []byte("valentine")),
		store.PutOp(events, []byte("2025-01-01/c"), []byte("next year")),
	})
	_ = b.Close()

	b, _ = rocksdb.OpenWith(cfg)
	defer b.Close()
	parts, _ := b.ListPartitions(ctx)
	fmt.Println(parts)
	it, _ := b.Scan(ctx, events, store.ScanOptions{Prefix: []byte("2024-"), Reverse: true})
	for it.Next() {
		fmt.Printf("%s %s\n", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// [events]
	// 2024-02-14/b valentine
	// 2024-01-01/a new year
}
