package memory_test

import (
	"strings"
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

// TestConformanceWithBatchLimits runs the suite on a memory backend that
// claims the batch limits of a distributed engine (a few operations and a
// few MiB at once), as etcd does: every behaviour holds within them.
func TestConformanceWithBatchLimits(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Name: memory.Name + "/limited",
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			b, err := memory.OpenWith(memory.Config{MaxBatchOps: 9, MaxBatchBytes: 2<<20 + 8<<10})
			if err != nil {
				t.Fatal(err)
			}
			return b, nil
		},
	})
}

func TestConfigRefusesNegativeLimits(t *testing.T) {
	_, err := memory.OpenWith(memory.Config{MaxBatchOps: -1})
	if err == nil || !strings.Contains(err.Error(), "storage.memory.max_batch_ops: is -1; use 0 (no limit) or 8 or more") {
		t.Fatalf("got %v", err)
	}
	_, err = memory.OpenWith(memory.Config{MaxBatchBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "storage.memory.max_batch_bytes: is -1") {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkMemory(b *testing.B) { storetest.Bench(b, harness()) }

// BenchmarkCreatePartitions: creates per second at 100, 1,000 and 10,000
// partitions (docs/backend-comparison.md).
func BenchmarkCreatePartitions(b *testing.B) { storetest.BenchCreatePartitions(b, harness()) }
