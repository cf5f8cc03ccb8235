package flush_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// servers are two flush Managers, as two servers, on one shared backend
// and one segment directory.
type servers struct {
	shared store.StorageBackend
	dir    string
	a, b   *flush.Manager
	sa, sb *tables.SharedTableStore
}

// twoServers opens server a with the shared table ns.kv holding rows 0 to
// n-1, then server b; b's backend is wrapB(shared) when wrapB is set.
func twoServers(t *testing.T, n int, wrapB func(store.StorageBackend) store.StorageBackend) *servers {
	t.Helper()
	return twoServersWithGrace(t, n, wrapB, -1)
}

// twoServersWithGrace is twoServers with Options.GCGrace grace.
func twoServersWithGrace(t *testing.T, n int, wrapB func(store.StorageBackend) store.StorageBackend, grace time.Duration) *servers {
	t.Helper()
	ctx := context.Background()
	s := &servers{shared: tablestest.MultiProcess(memory.New()), dir: t.TempDir()}
	t.Cleanup(func() { _ = s.shared.Close() })
	open := func(b store.StorageBackend) *flush.Manager {
		m, err := flush.Open(ctx, b, flush.Options{FS: segment.DirFS(s.dir), CompactSegments: flush.NeverCompact, GCGrace: grace})
		require.NoError(t, err)
		t.Cleanup(m.Stop)
		return m
	}
	s.a = open(s.shared)
	_, err := s.a.DB().Catalog().CreateNamespace(ctx, ns)
	require.NoError(t, err)
	_, err = s.a.DB().Catalog().CreateTable(ctx, kvTable())
	require.NoError(t, err)
	s.sa, err = s.a.DB().Shared(ctx, ns, "kv")
	require.NoError(t, err)
	for i := range n {
		_, err := s.sa.Insert(ctx, []row.Value{row.Int64(int64(i)), row.String("a")})
		require.NoError(t, err)
	}
	bb := s.shared
	if wrapB != nil {
		bb = wrapB(s.shared)
	}
	s.b = open(bb)
	s.sb, err = s.b.DB().Shared(ctx, ns, "kv")
	require.NoError(t, err)
	return s
}

// checkRows asserts that st reads exactly rows 0 to n-1, by key, by page
// and by count.
func checkRows(t *testing.T, st *tables.SharedTableStore, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		_, err := st.Get(ctx, row.Int64(int64(i)))
		require.NoError(t, err, "row %d", i)
	}
	page, err := st.Scan(ctx, tables.ScanOptions{Limit: 10 * n})
	require.NoError(t, err)
	require.Len(t, page.Rows, n)
	for i, r := range page.Rows {
		assert.Equal(t, int64(i), r.Values[0].Int64())
	}
	c, err := st.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(n), c)
}

// A server reads the rows another server flushed, by key, by page and by
// count, and lists that server's segments: its list of segments follows
// the manifest's version in the backend.
func TestAServerReadsWhatAnotherFlushed(t *testing.T) {
	ctx := context.Background()
	s := twoServers(t, 100, nil)
	checkRows(t, s.sb, 100)
	res, err := s.a.Flush(ctx, ns, "kv")
	require.NoError(t, err)
	require.Equal(t, int64(100), res.Removed, "the flush emptied the buffer")
	checkRows(t, s.sb, 100)
	segs, err := s.b.Segments(context.Background(), ns, "kv")
	require.NoError(t, err)
	require.Len(t, segs, 1)
	assert.Equal(t, res.Files[0], segs[0].Path)
}

// An insert of a key that another server has flushed is a duplicate, also
// when the flush lands between the insert's read of the key and its write:
// the write's batch checks the manifest version it read the segments at,
// fails, and the insert decides again on the new segment list.
func TestAnInsertRacingAFlushOfAnotherServerIsADuplicate(t *testing.T) {
	ctx := context.Background()
	var s *servers
	var once sync.Once
	var hookErr error
	s = twoServers(t, 10, func(b store.StorageBackend) store.StorageBackend {
		return &beforeTableWrite{StorageBackend: b, hook: func() {
			once.Do(func() {
				// Server a inserts the same key and flushes it, between
				// b's read of the key and b's write.
				if _, hookErr = s.sa.Insert(ctx, []row.Value{row.Int64(50), row.String("a")}); hookErr == nil {
					_, hookErr = s.a.Flush(ctx, ns, "kv")
				}
			})
		}}
	})
	// b knows the table's segments (none) before the race.
	checkRows(t, s.sb, 10)
	_, err := s.sb.Insert(ctx, []row.Value{row.Int64(50), row.String("b")})
	require.NoError(t, hookErr)
	require.ErrorIs(t, err, core.ErrDuplicateKey, "one insert of a key succeeds")
	r, err := s.sb.Get(ctx, row.Int64(50))
	require.NoError(t, err)
	assert.Equal(t, "a", r.Values[1].Str())

	// Once b knows the segment, an insert of a flushed key is a duplicate
	// without a race, and an update of it replaces the flushed version.
	_, err = s.sb.Insert(ctx, []row.Value{row.Int64(3), row.String("b")})
	require.ErrorIs(t, err, core.ErrDuplicateKey)
	_, err = s.sb.Update(ctx, row.Int64(3), map[string]row.Value{"v": row.String("b")})
	require.NoError(t, err)
	r, err = s.sa.Get(ctx, row.Int64(3))
	require.NoError(t, err)
	assert.Equal(t, "b", r.Values[1].Str())
}

// beforeTableWrite calls hook before each batch that writes a table's
// partition, before the backend applies it.
type beforeTableWrite struct {
	store.StorageBackend
	hook func()
}

func (w *beforeTableWrite) Batch(ctx context.Context, ops []store.Operation) error {
	for _, op := range ops {
		if _, _, _, ok := layout.ParseTablePartition(op.Partition); ok && op.Kind == store.OpPut {
			w.hook()
			break
		}
	}
	return w.StorageBackend.Batch(ctx, ops)
}

// A compaction on one server: another server reads the new list, and the
// files of the merged segments stay for the garbage rule (a server may
// still be reading them), never removed by the compacting server's last
// local reader.
func TestACompactionOnAnotherServerKeepsTheOldFilesForTheGarbageRule(t *testing.T) {
	ctx := context.Background()
	s := twoServers(t, 30, nil)
	var files []string
	for i := range 3 {
		_, err := s.sa.Update(ctx, row.Int64(int64(i)), map[string]row.Value{"v": row.String("u")})
		require.NoError(t, err)
		res, err := s.a.Flush(ctx, ns, "kv")
		require.NoError(t, err)
		files = append(files, res.Files...)
	}
	checkRows(t, s.sb, 30)
	segs, err := s.b.Segments(context.Background(), ns, "kv")
	require.NoError(t, err)
	require.Len(t, segs, 3)
	res, err := s.a.MajorCompact(ctx, ns, "kv")
	require.NoError(t, err)
	require.Equal(t, 3, res.Merged)
	checkRows(t, s.sb, 30)
	segs, err = s.b.Segments(context.Background(), ns, "kv")
	require.NoError(t, err)
	require.Len(t, segs, 1, "b lists the compacted segment only")
	for _, f := range files {
		_, err := os.Stat(filepath.Join(s.dir, f))
		assert.NoError(t, err, "%s stays until the garbage rule removes it", f)
	}
}

// Servers that flush the same table in turn take segment ids from the
// backend: no two segments share a file, and every row reads back through
// both.
func TestServersFlushingInTurnNeverShareASegmentFile(t *testing.T) {
	ctx := context.Background()
	s := twoServers(t, 0, nil)
	seen := map[string]bool{}
	n := 0
	for round := range 3 {
		for _, side := range []struct {
			m  *flush.Manager
			st *tables.SharedTableStore
		}{{s.a, s.sa}, {s.b, s.sb}} {
			for range 5 {
				_, err := side.st.Insert(ctx, []row.Value{row.Int64(int64(n)), row.String("x")})
				require.NoError(t, err)
				n++
			}
			res, err := side.m.Flush(ctx, ns, "kv")
			require.NoError(t, err, "round %d", round)
			require.Len(t, res.Files, 1)
			require.False(t, seen[res.Files[0]], "segment file %s written twice", res.Files[0])
			seen[res.Files[0]] = true
		}
	}
	checkRows(t, s.sa, n)
	checkRows(t, s.sb, n)
}

// A drop of a table through one server removes the segments another
// server flushed, records and files, with the table's manifest version.
func TestADropRemovesTheSegmentsOfEveryServer(t *testing.T) {
	ctx := context.Background()
	s := twoServers(t, 10, nil)
	_, err := s.a.Flush(ctx, ns, "kv")
	require.NoError(t, err)
	_, err = s.sb.Insert(ctx, []row.Value{row.Int64(100), row.String("b")})
	require.NoError(t, err)
	_, err = s.b.Flush(ctx, ns, "kv")
	require.NoError(t, err)
	require.NoError(t, s.a.DropTable(ctx, ns, "kv"))
	n, err := store.Count(ctx, s.shared, layout.Manifests, store.ScanOptions{})
	require.NoError(t, err)
	assert.Zero(t, n, "no manifest record of the table is left")
	var left []string
	require.NoError(t, filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return err
	}))
	assert.Empty(t, left, "no segment file is left")
}

// kvTable is the shared table ns.kv (id int64, v string).
func kvTable() catalog.Table {
	return catalog.Table{Namespace: ns, Name: "kv", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "v", Type: row.TypeString}}}
}

// A flush, compaction or segment listing through a server of a table
// another server created after it last read the catalog finds the table:
// the name it does not know makes it read the catalog again.
func TestAServerFlushesATableAnotherCreatedSinceItReadTheCatalog(t *testing.T) {
	ctx := context.Background()
	s := twoServers(t, 0, nil)
	later := kvTable()
	later.Name = "later"
	_, err := s.a.DB().Catalog().CreateTable(ctx, later)
	require.NoError(t, err)
	_, err = s.b.Flush(ctx, ns, "later")
	require.NoError(t, err)
	later.Name = "later2"
	_, err = s.a.DB().Catalog().CreateTable(ctx, later)
	require.NoError(t, err)
	_, err = s.b.Compact(ctx, ns, "later2")
	require.NoError(t, err)
	later.Name = "later3"
	_, err = s.a.DB().Catalog().CreateTable(ctx, later)
	require.NoError(t, err)
	_, err = s.b.Segments(context.Background(), ns, "later3")
	require.NoError(t, err)
}

// The garbage rule on a shared store: the files of segments a compaction
// unlisted are removed by a later collection on any server, once they have
// been seen unrecorded for the grace period, never the files still
// recorded.
func TestGarbageIsCollectedAfterItsGrace(t *testing.T) {
	ctx := context.Background()
	const grace = time.Hour
	s := twoServersWithGrace(t, 30, nil, grace)
	var files []string
	for i := range 3 {
		_, err := s.sa.Update(ctx, row.Int64(int64(i)), map[string]row.Value{"v": row.String("u")})
		require.NoError(t, err)
		res, err := s.a.Flush(ctx, ns, "kv")
		require.NoError(t, err)
		files = append(files, res.Files...)
	}
	res, err := s.a.MajorCompact(ctx, ns, "kv")
	require.NoError(t, err)
	require.Len(t, res.Files, 1)
	exists := func(f string) bool {
		_, err := os.Stat(filepath.Join(s.dir, f))
		return err == nil
	}
	now := time.Now()
	for _, at := range []time.Duration{0, grace - time.Minute} {
		n, err := s.b.CollectGarbageAt(ctx, now.Add(at))
		require.NoError(t, err)
		assert.Zero(t, n, "nothing goes before the grace, at +%v", at)
	}
	for _, f := range files {
		assert.True(t, exists(f), "%s stays within the grace", f)
	}
	n, err := s.b.CollectGarbageAt(ctx, now.Add(grace+time.Minute))
	require.NoError(t, err)
	assert.Equal(t, len(files), n)
	for _, f := range files {
		assert.False(t, exists(f), "%s is garbage after the grace", f)
	}
	assert.True(t, exists(res.Files[0]), "the compacted segment is recorded")
	checkRows(t, s.sa, 30)
	checkRows(t, s.sb, 30)
}

// unknownCommit fails, once, the batch that records a segment (without
// applying it) and the read of that record that follows: the commit's
// outcome is unknown to the server.
type unknownCommit struct {
	store.StorageBackend
	mu             sync.Mutex
	batch, readErr bool
}

func (u *unknownCommit) Batch(ctx context.Context, ops []store.Operation) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, op := range ops {
		if !u.batch && op.Kind == store.OpPut && op.Partition.Name() == layout.Manifests.Name() && flush.IsSegmentRecord(op.Key) {
			u.batch = true
			return errors.New("injected: the reply was lost")
		}
	}
	return u.StorageBackend.Batch(ctx, ops)
}

func (u *unknownCommit) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	u.mu.Lock()
	fail := u.batch && !u.readErr && p.Name() == layout.Manifests.Name() && flush.IsSegmentRecord(key)
	if fail {
		u.readErr = true
	}
	u.mu.Unlock()
	if fail {
		return nil, errors.New("injected: the backend does not answer")
	}
	return u.StorageBackend.Get(ctx, p, key)
}

// A segment whose commit has an unknown outcome on one server is not read
// by that server once the manifest, read again, does not record it: the
// rows it holds were deleted through another server since, and they do
// not come back.
func TestASegmentOfAnUnknownCommitIsNotReadOnceTheManifestLacksIt(t *testing.T) {
	ctx := context.Background()
	s := twoServers(t, 10, func(b store.StorageBackend) store.StorageBackend { return &unknownCommit{StorageBackend: b} })
	_, err := s.b.Flush(ctx, ns, "kv")
	require.Error(t, err, "the commit's outcome is unknown")
	require.NoError(t, s.sa.Delete(ctx, row.Int64(3)))
	_, err = s.a.Flush(ctx, ns, "kv")
	require.NoError(t, err)
	_, err = s.sb.Get(ctx, row.Int64(3))
	require.ErrorIs(t, err, core.ErrRowNotFound, "the deleted row stays deleted")
	n, err := s.sb.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(9), n)
}

// An update or delete through a server of a row that another server has
// just flushed finds the row, though the first server's list of segments
// lacks the new segment: a write that would answer "not found" without a
// batch first reads the manifest version again, and reads again when it
// moved.
func TestAWriteFindsARowAnotherServerJustFlushed(t *testing.T) {
	ctx := context.Background()
	s := twoServers(t, 10, nil)
	checkRows(t, s.sb, 10) // b's list: no segment
	_, err := s.a.Flush(ctx, ns, "kv")
	require.NoError(t, err)
	_, err = s.sb.Update(ctx, row.Int64(4), map[string]row.Value{"v": row.String("b")})
	require.NoError(t, err, "the row is in a's segment")
	require.NoError(t, s.sb.Delete(ctx, row.Int64(5)))
	r, err := s.sa.Get(ctx, row.Int64(4))
	require.NoError(t, err)
	assert.Equal(t, "b", r.Values[1].Str())
	_, err = s.sa.Get(ctx, row.Int64(5))
	require.ErrorIs(t, err, core.ErrRowNotFound)
}
