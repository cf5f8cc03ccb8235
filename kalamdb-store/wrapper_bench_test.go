package store_test

import (
	"context"
	"testing"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// nopEngine does nothing, so that BenchmarkWrapper measures what store.New
// adds to every call, free of any engine's noise.
type nopEngine struct{ v []byte }

func (n *nopEngine) Get(context.Context, store.Partition, []byte) ([]byte, error) { return n.v, nil }
func (n *nopEngine) Put(context.Context, store.Partition, []byte, []byte) error   { return nil }
func (n *nopEngine) Delete(context.Context, store.Partition, []byte) error        { return nil }
func (n *nopEngine) Batch(context.Context, []store.Operation) error               { return nil }
func (n *nopEngine) Scan(context.Context, store.Partition, store.Range) (store.Iterator, error) {
	return &nopIter{}, nil
}
func (n *nopEngine) PartitionExists(context.Context, store.Partition) (bool, error) { return true, nil }
func (n *nopEngine) CreatePartition(context.Context, store.Partition) error         { return nil }
func (n *nopEngine) ListPartitions(context.Context) ([]store.Partition, error)      { return nil, nil }
func (n *nopEngine) DropPartition(context.Context, store.Partition) error           { return nil }
func (n *nopEngine) Capabilities() store.Capabilities                               { return store.Capabilities{} }
func (n *nopEngine) Close() error                                                   { return nil }

type nopIter struct{ i int }

var nopKey, nopValue = []byte("k"), []byte("v")

func (it *nopIter) Next() bool    { it.i++; return it.i <= 100 }
func (it *nopIter) Key() []byte   { return nopKey }
func (it *nopIter) Value() []byte { return nopValue }
func (it *nopIter) Err() error    { return nil }
func (it *nopIter) Close() error  { return nil }

// BenchmarkWrapper measures the cost store.New adds per call: each
// operation on a no-op engine, called directly through the Engine interface
// ("raw") and through the wrapped StorageBackend ("wrapped").
func BenchmarkWrapper(b *testing.B) {
	ctx := context.Background()
	p := store.MustPartition("p")
	k := []byte("benchkey12345678")
	e := &nopEngine{v: []byte("v")}
	raw := opaque(e)
	sink := 0
	be := store.New(e)
	b.Run("get/raw", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v, _ := raw.Get(ctx, p, k)
			sink += len(v)
		}
	})
	b.Run("get/wrapped", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v, _ := be.Get(ctx, p, k)
			sink += len(v)
		}
	})
	b.Run("scan100/raw", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			it, _ := raw.Scan(ctx, p, store.Range{Lower: k})
			for it.Next() {
				sink += len(it.Key()) + len(it.Value())
			}
			it.Close()
		}
	})
	b.Run("scan100/wrapped", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			it, _ := be.Scan(ctx, p, store.ScanOptions{Start: k, Limit: 100})
			for it.Next() {
				sink += len(it.Key()) + len(it.Value())
			}
			_ = it.Close()
		}
	})
	if sink == 0 {
		b.Fatal("nothing was read")
	}
}

// opaque hides the engine's concrete type from the compiler, so the raw
// calls are dynamic calls as they are behind store.New.
//
//go:noinline
func opaque(e store.Engine) store.Engine { return e }
