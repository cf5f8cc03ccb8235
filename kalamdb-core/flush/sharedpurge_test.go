package flush_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// beforeManifestWrite calls hook once, when the first batch that puts a
// manifest record that match accepts arrives, before the backend applies
// it: a write of another server landing in the middle of a flush's commit.
type beforeManifestWrite struct {
	store.StorageBackend
	match func(record []byte) bool
	once  sync.Once
	hook  func()
}

func (w *beforeManifestWrite) Batch(ctx context.Context, ops []store.Operation) error {
	for _, op := range ops {
		if op.Kind == store.OpPut && op.Partition.Name() == layout.Manifests.Name() && flush.IsSegmentRecord(op.Key) && w.match(op.Value) {
			w.once.Do(w.hook)
			break
		}
	}
	return w.StorageBackend.Batch(ctx, ops)
}

// sharedKV opens a Manager on w, a backend several servers share, with a
// shared table ns.kv (id int64, v string) and rows 0 to n-1 holding "old".
func sharedKV(t *testing.T, w store.StorageBackend, n int) (*flush.Manager, *tables.SharedTableStore) {
	t.Helper()
	ctx := context.Background()
	m, err := flush.Open(ctx, w, flush.Options{FS: segment.DirFS(t.TempDir()), CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	t.Cleanup(m.Stop)
	_, err = m.DB().Catalog().CreateNamespace(ctx, ns)
	require.NoError(t, err)
	_, err = m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: ns, Name: "kv", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "v", Type: row.TypeString}}})
	require.NoError(t, err)
	s, err := m.DB().Shared(ctx, ns, "kv")
	require.NoError(t, err)
	for i := range n {
		_, err := s.Insert(ctx, []row.Value{row.Int64(int64(i)), row.String("old")})
		require.NoError(t, err)
	}
	return m, s
}

// A flush on a buffer another server writes too never removes a version
// that server wrote while the flush ran: its updates and deletes of rows
// being flushed, landing between the flush's reads and its commit, stay
// buffered and win, for a small flush and for one above the size from which
// a flush of a quiet table removes its versions with one range delete.
func TestFlushKeepsWhatAnotherServerWroteMeanwhile(t *testing.T) {
	for _, lockAll := range []bool{false, true} {
		name := map[bool]string{false: "keys", true: "range"}[lockAll]
		t.Run(name, func(t *testing.T) {
			if lockAll {
				defer flush.SetLockAllAbove(1)()
			}
			ctx := context.Background()
			shared := tablestest.MultiProcess(memory.New())
			t.Cleanup(func() { _ = shared.Close() })
			w := &beforeManifestWrite{StorageBackend: shared, match: func([]byte) bool { return true }}
			m, s := sharedKV(t, w, 10)

			other, err := tables.Open(ctx, shared, tables.Options{})
			require.NoError(t, err)
			defer other.Close()
			var hookErr error
			w.hook = func() {
				o, err := other.Shared(ctx, ns, "kv")
				if err != nil {
					hookErr = err
					return
				}
				if _, err := o.Update(ctx, row.Int64(3), map[string]row.Value{"v": row.String("new")}); err != nil {
					hookErr = err
					return
				}
				hookErr = o.Delete(ctx, row.Int64(7))
			}
			res, err := m.Flush(ctx, ns, "kv")
			require.NoError(t, err)
			require.NoError(t, hookErr)
			assert.Equal(t, int64(10), res.Rows, "the flush wrote the ten versions it read")

			// The other server has no cold tier: it reads its writes from
			// the buffer.
			for _, db := range []*tables.DB{m.DB(), other} {
				st, err := db.Shared(ctx, ns, "kv")
				require.NoError(t, err)
				r, err := st.Get(ctx, row.Int64(3))
				require.NoError(t, err)
				assert.Equal(t, "new", r.Values[1].Str(), "the other server's update wins")
				_, err = st.Get(ctx, row.Int64(7))
				assert.Error(t, err, "the other server's delete holds")
			}
			n, err := s.Count(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(9), n, "the flushing server reads the other rows from its segment")
			tbl, err := m.DB().Catalog().Table(ns, "kv")
			require.NoError(t, err)
			buffered, err := store.Count(ctx, shared, tbl.Partition(), store.ScanOptions{})
			require.NoError(t, err)
			assert.Equal(t, int64(2), buffered, "only the other server's two versions stay buffered")
		})
	}
}

// On a shared backend, a flush that finds its segment's manifest record
// changed by another server while it purged (a server that took the
// table's lease over and compacted the segment away) leaves the record as
// that server left it: clearing the mark never writes a removed record back.
func TestClearingThePurgeMarkNeverWritesARemovedRecordBack(t *testing.T) {
	ctx := context.Background()
	shared := tablestest.MultiProcess(memory.New())
	t.Cleanup(func() { _ = shared.Close() })
	// The batch that clears the mark: a record without it.
	w := &beforeManifestWrite{StorageBackend: shared, match: func(rec []byte) bool { return !strings.Contains(string(rec), "pending_purge") }}
	m, _ := sharedKV(t, w, 1)

	var hookErr error
	w.hook = func() {
		// The other server removes every manifest record of the table.
		hookErr = shared.Batch(ctx, []store.Operation{store.DeleteRangeOp(layout.Manifests, []byte{0}, []byte{0xff})})
	}
	_, err := m.Flush(ctx, ns, "kv")
	require.NoError(t, err)
	require.NoError(t, hookErr)
	n, err := store.Count(ctx, shared, layout.Manifests, store.ScanOptions{})
	require.NoError(t, err)
	assert.Zero(t, n, "the removed record stays removed")
}
