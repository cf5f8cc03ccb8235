package memory_test

import (
	"testing"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

func harness() storetest.Harness {
	return storetest.Harness{
		Name: memory.Name,
		New: func(testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			return memory.New(), nil
		},
		Register: memory.Register,
		Config:   func(testing.TB) store.ConfigMap { return store.ConfigMap{} },
	}
}

func TestConformance(t *testing.T) { storetest.Run(t, harness()) }

func BenchmarkMemory(b *testing.B) { storetest.Bench(b, harness()) }

// BenchmarkCreatePartitions: creates per second at 100, 1,000 and 10,000
// partitions (docs/backend-comparison.md).
func BenchmarkCreatePartitions(b *testing.B) { storetest.BenchCreatePartitions(b, harness()) }
