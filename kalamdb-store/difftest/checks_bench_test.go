package difftest

import (
	"context"
	"fmt"
	"testing"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
)

// BenchmarkChecks measures what a batch's checks cost each backend, with
// the configurations of the differential test (unsynced writes where the
// backend has the choice): a write of a new key as a batch of one put
// ("put"), the same with a check that the key is absent
// ("put-if-absent"), and a compare-and-swap of one key ("cas": a check of
// its value and a put), each on 16-byte keys and 100-byte values.
//
//	go test -run '^$' -bench Checks -benchtime 1s -count 5 ./kalamdb-store/difftest/
func BenchmarkChecks(b *testing.B) {
	all := append([]opener{{name: memory.Name, open: func(testing.TB, string) (store.StorageBackend, func() (store.StorageBackend, error)) {
		return memory.New(), nil
	}}}, backends...)
	ctx := context.Background()
	value := make([]byte, 100)
	for _, o := range all {
		b.Run(o.name, func(b *testing.B) {
			be, _ := o.open(b, scratchDir(b))
			defer be.Close()
			p := store.MustPartition("bench")
			if err := be.CreatePartition(ctx, p); err != nil {
				b.Fatal(err)
			}
			key := func(kind string, i int) []byte { return []byte(fmt.Sprintf("%-6s%010d", kind, i)) }
			b.Run("put", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if err := be.Batch(ctx, []store.Operation{store.PutOp(p, key("put", i), value)}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("put-if-absent", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					k := key("pia", i)
					if err := be.Batch(ctx, []store.Operation{store.CheckAbsentOp(p, k), store.PutOp(p, k, value)}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("cas", func(b *testing.B) {
				k := key("cas", 0)
				old := []byte(fmt.Sprintf("%0100d", 0))
				if err := be.Put(ctx, p, k, old); err != nil {
					b.Fatal(err)
				}
				for i := 1; b.Loop(); i++ {
					next := []byte(fmt.Sprintf("%0100d", i))
					if err := be.Batch(ctx, []store.Operation{store.CheckValueOp(p, k, old), store.PutOp(p, k, next)}); err != nil {
						b.Fatal(err)
					}
					old = next
				}
			})
		})
	}
}
