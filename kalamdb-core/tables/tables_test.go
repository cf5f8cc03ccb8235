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

func BenchmarkMemory(b *testing.B) { tablestest.Bench(b, memoryHarness) }
