package app_test

import (
	"context"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/app"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
)

// A binary with one more backend lists it beside the built-in ones. (A real
// backend comes from its own package; this one reuses the memory engine.)
func ExampleMain() {
	mykv := backends.Backend{
		Name:    "mykv",
		Durable: false,
		Summary: "an example engine",
		Register: func(r *store.Registry) {
			r.Register("mykv", func(context.Context, store.Config) (store.StorageBackend, error) { return memory.New(), nil })
		},
		Decode: backends.DecodeWith(memory.DefaultConfig),
	}
	code := app.Main([]string{"backends"}, mykv)
	fmt.Println("exit code", code)
	// Output:
	// NAME     ALIASES    DURABLE  DESCRIPTION
	// bbolt    -          yes      embedded bbolt, pure Go, one file; writes are synced to disk by default
	// etcd     -          yes      an etcd cluster (Raft): shared by several servers, survives the loss of a minority of its members
	// memory   in-memory  no       in-process B-trees; fast, and nothing survives a restart
	// mykv     -          no       an example engine
	// pebble   -          yes      embedded Pebble, pure Go; writes are synced to its log by default
	// redis    -          yes      a Redis (or Valkey) server; durable as far as the server's persistence settings make it
	// rocksdb  -          yes      embedded RocksDB (the default); every acknowledged write is in its write-ahead log
	// exit code 0
}
