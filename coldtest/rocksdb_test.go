package coldtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush/flushtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

func openRocks(t testing.TB, dir string) store.StorageBackend {
	cfg := rocksdb.DefaultConfig()
	cfg.Path = dir
	b, err := rocksdb.OpenWith(cfg)
	require.NoError(t, err)
	return b
}

// BenchmarkColdTierOnRocksDB runs the flush and merged-read benchmarks with
// RocksDB as the hot buffer.
func BenchmarkColdTierOnRocksDB(b *testing.B) {
	dirs := map[store.StorageBackend]string{}
	flushtest.Bench(b, flushtest.Harness{
		Name: "rocksdb",
		New: func(tb testing.TB) store.StorageBackend {
			dir := tb.TempDir()
			be := openRocks(tb, dir)
			dirs[be] = dir
			return be
		},
		Reopen: func(tb testing.TB, be store.StorageBackend) store.StorageBackend {
			dir := dirs[be]
			delete(dirs, be)
			require.NoError(tb, be.Close())
			be = openRocks(tb, dir)
			dirs[be] = dir
			return be
		},
	})
}

// TestFlushSurvivesRestartOnRocksDB flushes, changes cold rows, flushes
// again, closes RocksDB and opens it again: every row reads back from the
// segments, the deleted one stays deleted, and a cold key is still a
// duplicate; then it compacts the segments and restarts once more.
func TestFlushSurvivesRestartOnRocksDB(t *testing.T) {
	ctx := context.Background()
	dbDir, parquet := t.TempDir(), t.TempDir()
	b := openRocks(t, dbDir)
	m, err := flush.Open(ctx, b, flush.Options{Dir: parquet})
	require.NoError(t, err)
	_, err = m.DB().Catalog().CreateNamespace(ctx, "app")
	require.NoError(t, err)
	_, err = m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: "app", Name: "items", Type: catalog.UserTable,
		PrimaryKey: "id", Columns: flushtest.Columns()})
	require.NoError(t, err)
	s, err := m.DB().User(ctx, "app", "items")
	require.NoError(t, err)
	for id := int64(0); id < 500; id++ {
		_, err := s.Insert(ctx, "alice", flushtest.Row(id))
		require.NoError(t, err)
	}
	_, err = m.Flush(ctx, "app", "items")
	require.NoError(t, err)
	_, err = s.Update(ctx, "alice", row.Int64(7), map[string]row.Value{"name": row.String("seven")})
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, "alice", row.Int64(8)))
	res, err := m.Close(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, res.Rows, "the update and the tombstone")
	require.NoError(t, b.Close())

	b = openRocks(t, dbDir)
	defer b.Close()
	m, err = flush.Open(ctx, b, flush.Options{Dir: parquet})
	require.NoError(t, err)
	s, err = m.DB().User(ctx, "app", "items")
	require.NoError(t, err)
	n, err := s.Count(ctx, "alice")
	require.NoError(t, err)
	assert.EqualValues(t, 499, n)
	r, err := s.Get(ctx, "alice", row.Int64(7))
	require.NoError(t, err)
	assert.Equal(t, "seven", r.Values[1].Str())
	_, err = s.Get(ctx, "alice", row.Int64(8))
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	_, err = s.Insert(ctx, "alice", flushtest.Row(9))
	assert.ErrorIs(t, err, core.ErrDuplicateKey)
	check := func(what string) {
		t.Helper()
		page, err := s.Scan(ctx, "alice", tables.ScanOptions{Start: row.Int64(6), Limit: 3})
		require.NoError(t, err, what)
		require.Len(t, page.Rows, 3, what)
		assert.EqualValues(t, []int64{6, 7, 9}, []int64{page.Rows[0].Values[0].Int64(), page.Rows[1].Values[0].Int64(), page.Rows[2].Values[0].Int64()}, what)
		n, err := s.Count(ctx, "alice")
		require.NoError(t, err, what)
		assert.EqualValues(t, 499, n, what)
		r, err := s.Get(ctx, "alice", row.Int64(7))
		require.NoError(t, err, what)
		assert.Equal(t, "seven", r.Values[1].Str(), what)
		_, err = s.Get(ctx, "alice", row.Int64(8))
		assert.ErrorIs(t, err, core.ErrRowNotFound, what)
	}
	check("after the restart")

	// Both segments merge into one, without row 8, its tombstone, or the
	// first version of row 7, and the rows read the same, also after
	// another restart.
	cres, err := m.Compact(ctx, "app", "items")
	require.NoError(t, err)
	assert.Equal(t, 2, cres.Merged)
	assert.EqualValues(t, 499, cres.Rows)
	assert.EqualValues(t, 3, cres.Dropped)
	check("after the compaction")
	_, err = m.Close(ctx)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	b2 := openRocks(t, dbDir)
	defer b2.Close()
	m, err = flush.Open(ctx, b2, flush.Options{Dir: parquet})
	require.NoError(t, err)
	s, err = m.DB().User(ctx, "app", "items")
	require.NoError(t, err)
	check("after the compaction and a restart")
	segs, err := m.Segments(context.Background(), "app", "items")
	require.NoError(t, err)
	assert.Len(t, segs, 1)
	_, err = m.Close(ctx)
	require.NoError(t, err)
}
