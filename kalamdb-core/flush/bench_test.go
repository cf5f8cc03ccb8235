package flush_test

import (
	"testing"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush/flushtest"
)

// BenchmarkColdTier runs the flush and merged-read benchmarks with the
// memory backend as the hot buffer (the root module runs them on RocksDB).
func BenchmarkColdTier(b *testing.B) {
	flushtest.Bench(b, flushtest.Harness{Name: "memory", New: func(testing.TB) store.StorageBackend { return memory.New() }})
}
