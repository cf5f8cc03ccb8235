package storetest

import (
	"context"
	"encoding/binary"
	"testing"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// BenchKeys is how many keys Bench preloads for its reads.
const BenchKeys = 10000

// BenchValueSize is the size of every value Bench writes.
const BenchValueSize = 100

// Bench measures the contract's operations on the backends h makes, as
// sub-benchmarks get, put, batch100 (one batch of 100 puts per op) and
// scan100 (a 100-key forward scan per op), each on 16-byte keys and
// BenchValueSize-byte values, so figures compare across backends.
func Bench(b *testing.B, h Harness) {
	ctx := context.Background()
	setup := func(b *testing.B) (store.StorageBackend, store.Partition, [][]byte, []byte) {
		be, _ := h.New(b)
		b.Cleanup(func() { _ = be.Close() })
		p := store.MustPartition("bench")
		if err := be.CreatePartition(ctx, p); err != nil {
			b.Fatal(err)
		}
		keys := make([][]byte, BenchKeys)
		val := make([]byte, BenchValueSize)
		for i := range val {
			val[i] = byte(i)
		}
		ops := make([]store.Operation, 0, 1000)
		for i := range keys {
			keys[i] = BenchKey(i)
			ops = append(ops, store.PutOp(p, keys[i], val))
			if len(ops) == cap(ops) {
				if err := be.Batch(ctx, ops); err != nil {
					b.Fatal(err)
				}
				ops = ops[:0]
			}
		}
		return be, p, keys, val
	}
	b.Run("get", func(b *testing.B) {
		be, p, keys, _ := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := be.Get(ctx, p, keys[(i*7919)%BenchKeys]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("put", func(b *testing.B) {
		be, p, _, val := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := be.Put(ctx, p, BenchKey(BenchKeys+i), val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch100", func(b *testing.B) {
		be, p, _, val := setup(b)
		ops := make([]store.Operation, 100)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for j := range ops {
				ops[j] = store.PutOp(p, BenchKey(BenchKeys+i*100+j), val)
			}
			if err := be.Batch(ctx, ops); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan100", func(b *testing.B) {
		be, p, keys, _ := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			it, err := be.Scan(ctx, p, store.ScanOptions{Start: keys[(i*7919)%(BenchKeys-100)], Limit: 100})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for it.Next() {
				n++
			}
			if err := it.Close(); err != nil {
				b.Fatal(err)
			}
			if n != 100 {
				b.Fatalf("scan returned %d keys, want 100", n)
			}
		}
	})
}

// BenchKey returns the i-th benchmark key: 16 bytes, big-endian ordered.
func BenchKey(i int) []byte {
	k := make([]byte, 16)
	copy(k, "benchkey")
	binary.BigEndian.PutUint64(k[8:], uint64(i))
	return k
}
