package coretest

import (
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// rocksHarness opens a RocksDB backend in a fresh temporary directory; its
// reopen function opens the same directory again.
var rocksHarness = tablestest.Harness{
	Name: "rocksdb",
	New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
		cfg := rocksdb.DefaultConfig()
		cfg.Path = t.TempDir()
		b, err := rocksdb.OpenWith(cfg)
		require.NoError(t, err)
		return b, func() (store.StorageBackend, error) { return rocksdb.OpenWith(cfg) }
	},
}

// TestTablesOnRocksDB runs the table-store suite on RocksDB, with real
// restarts (close and reopen of the database) where the suite restarts.
func TestTablesOnRocksDB(t *testing.T) { tablestest.Run(t, rocksHarness) }

// BenchmarkTablesOnRocksDB runs the table-store benchmarks on RocksDB next
// to the raw RocksDB operations they sit on.
func BenchmarkTablesOnRocksDB(b *testing.B) { tablestest.Bench(b, rocksHarness) }
