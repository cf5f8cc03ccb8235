package tables_test

import (
	"testing"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

var memoryHarness = tablestest.Harness{
	Name: "memory",
	New: func(testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
		return memory.New(), nil
	},
}

func TestMemory(t *testing.T) { tablestest.Run(t, memoryHarness) }

// TestMemoryWithBatchLimits runs the suite on a memory backend that applies
// at most 64 operations and 1 MiB at once, as a distributed engine does.
func TestMemoryWithBatchLimits(t *testing.T) {
	tablestest.Run(t, tablestest.Harness{
		Name: "memory/limited",
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			b, err := memory.OpenWith(memory.Config{MaxBatchOps: 64, MaxBatchBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return b, nil
		},
	})
}

func BenchmarkMemory(b *testing.B) { tablestest.Bench(b, memoryHarness) }
