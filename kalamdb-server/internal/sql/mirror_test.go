package sql

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// segmentsOf returns the committed segments of alice's rows of app.items
// after n flushes of one row each, on an object store.
func segmentsOf(t *testing.T, n int) (*pair, []flush.SnapshotFile) {
	t.Helper()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	p := newPairOn(t, b, false, objectStoreOf(t, false))
	p.seg.setup(t)
	for i := range n {
		p.seg.ok(t, aliceToken, fmt.Sprintf(`INSERT INTO items (id, name) VALUES (%d, 'x')`, i))
		p.seg.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	}
	tb, err := p.seg.db.Catalog().Table("app", "items")
	require.NoError(t, err)
	snap, err := p.m.Snapshot(context.Background(), tb, "alice")
	require.NoError(t, err)
	t.Cleanup(snap.Release)
	require.Len(t, snap.Files, n)
	for _, f := range snap.Files {
		require.Positive(t, f.Bytes)
	}
	return p, snap.Files
}

// mirrored reports which of files the mirror holds on disk.
func mirroredFiles(t *testing.T, m *mirror, files []flush.SnapshotFile) []bool {
	t.Helper()
	out := make([]bool, len(files))
	for i, f := range files {
		_, err := os.Stat(m.path(f.Path))
		if err != nil {
			require.ErrorIs(t, err, fs.ErrNotExist)
		}
		out[i] = err == nil
	}
	return out
}

// The mirror keeps at most its bound of files no query uses, evicting the
// least recently used, and never a file in use.
func TestSegmentFilesMirrorEvictsUnusedFilesBeyondItsBound(t *testing.T) {
	ctx := context.Background()
	p, files := segmentsOf(t, 3)
	// Room for two files of the three (they have about the same size).
	limit := files[0].Bytes + files[1].Bytes + files[2].Bytes/2
	m, err := openMirror(filepath.Join(t.TempDir(), "files"), limit, p.m.Store())
	require.NoError(t, err)

	releaseA, err := m.acquire(ctx, files[:1])
	require.NoError(t, err)
	releaseBC, err := m.acquire(ctx, files[1:])
	require.NoError(t, err)
	assert.Equal(t, []bool{true, true, true}, mirroredFiles(t, m, files), "files in use stay, beyond the bound")
	all, inUse := m.held()
	assert.Equal(t, all, inUse)
	assert.Greater(t, all, limit)

	releaseBC()
	// B is the least recently used of the files no query uses.
	assert.Equal(t, []bool{true, false, true}, mirroredFiles(t, m, files))
	releaseA()
	releaseA() // idempotent
	assert.Equal(t, []bool{true, false, true}, mirroredFiles(t, m, files))
	all, inUse = m.held()
	assert.LessOrEqual(t, all, limit)
	assert.Zero(t, inUse)

	// B again: A is now the least recently used.
	releaseB, err := m.acquire(ctx, files[1:2])
	require.NoError(t, err)
	assert.Equal(t, []bool{false, true, true}, mirroredFiles(t, m, files))
	releaseB()

	// A file larger than the bound is kept while in use, then removed.
	small, err := openMirror(filepath.Join(t.TempDir(), "small"), 1, p.m.Store())
	require.NoError(t, err)
	release, err := small.acquire(ctx, files[:1])
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false, false}, mirroredFiles(t, small, files))
	release()
	assert.Equal(t, []bool{false, false, false}, mirroredFiles(t, small, files))

	// Opening the directory again starts it empty.
	m2, err := openMirror(m.dir, limit, p.m.Store())
	require.NoError(t, err)
	assert.Equal(t, []bool{false, false, false}, mirroredFiles(t, m2, files))
}

// damagedStore serves its segments shortened (cut bytes off their end) or
// with their last bytes overwritten (garble), or fails every Open with an
// unreachable object store's error (down).
type damagedStore struct {
	segment.Store
	cut    int64
	garble bool
	down   atomic.Bool
}

func (s *damagedStore) Open(ctx context.Context, name string, size int64) (segment.Object, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("%w: the test's outage", objstore.ErrUnavailable)
	}
	o, err := s.Store.Open(ctx, name, size)
	if err != nil {
		return nil, err
	}
	return &damagedObject{Object: o, s: s}, nil
}

type damagedObject struct {
	segment.Object
	s *damagedStore
}

func (o *damagedObject) Size() int64 { return o.Object.Size() - o.s.cut }

func (o *damagedObject) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.Object.ReadAt(p, off)
	if o.s.garble {
		for i := range n {
			if off+int64(i) >= o.Object.Size()-16 {
				p[i] ^= 0x55
			}
		}
	}
	return n, err
}

// A copy shorter than the manifest's length, or whose footer is not the
// segment's, is refused and leaves no file.
func TestSegmentFilesMirrorRefusesDamagedCopies(t *testing.T) {
	ctx := context.Background()
	p, files := segmentsOf(t, 1)
	noBytes := files[0]
	noBytes.Bytes = 0 // as in manifests written before it was recorded
	for name, c := range map[string]struct {
		store *damagedStore
		file  flush.SnapshotFile
		want  string
	}{
		"short":                 {&damagedStore{Store: p.m.Store(), cut: 10}, files[0], "the manifest records"},
		"short, length unknown": {&damagedStore{Store: p.m.Store(), cut: 10}, noBytes, "the copy is not the segment"},
		"garbled footer":        {&damagedStore{Store: p.m.Store(), garble: true}, files[0], "the copy is not the segment"},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := openMirror(filepath.Join(t.TempDir(), "files"), 1<<20, c.store)
			require.NoError(t, err)
			_, err = m.acquire(ctx, []flush.SnapshotFile{c.file})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), c.file.Path)
			all, _ := m.held()
			assert.Zero(t, all)
			var left []string
			require.NoError(t, filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					left = append(left, p)
				}
				return err
			}))
			assert.Empty(t, left)
		})
	}
	// Undamaged, the same file is copied.
	m, err := openMirror(filepath.Join(t.TempDir(), "files"), 1<<20, &damagedStore{Store: p.m.Store()})
	require.NoError(t, err)
	release, err := m.acquire(ctx, []flush.SnapshotFile{noBytes})
	require.NoError(t, err)
	release()
	assert.Equal(t, []bool{true}, mirroredFiles(t, m, files))
}

// damagedSegments is a cold tier whose store is damaged.
type damagedSegments struct {
	*flush.Manager
	store *damagedStore
}

func (d damagedSegments) Store() segment.Store { return d.store }

// When the object store cannot be reached, a query that needs a segment
// file not yet copied fails with STORAGE_UNAVAILABLE (503), holding no
// file; one whose files are copied still answers.
func TestSegmentFilesOfAnUnreachableObjectStore(t *testing.T) {
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	m, err := flush.Open(context.Background(), b, flush.Options{Store: objectStoreOf(t, false), CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = m.Close(context.Background()) })
	ds := damagedSegments{Manager: m, store: &damagedStore{Store: m.Store()}}
	f := newFixtureWith(t, m.DB(), m, func(o *Options) { o.Segments, o.SegmentFiles = ds, filepath.Join(t.TempDir(), "files") })
	require.NotNil(t, f.e.mirror)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')`)
	f.ok(t, bobToken, `INSERT INTO items (id, name) VALUES (1, 'bob')`)
	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	assert.Equal(t, [][]any{{2.0}}, f.ok(t, aliceToken, `SELECT count(*) FROM items`).Rows)

	ds.store.down.Store(true)
	r := f.sql(t, bobToken, `SELECT name FROM items`)
	assert.Equal(t, http.StatusServiceUnavailable, r.status, string(r.body))
	require.NotNil(t, r.Error)
	assert.Equal(t, "STORAGE_UNAVAILABLE", r.Error.Code)
	assert.Empty(t, r.Results)
	_, inUse := f.e.mirror.held()
	assert.Zero(t, inUse)
	// Alice's file was copied before.
	assert.Equal(t, [][]any{{2.0}}, f.ok(t, aliceToken, `SELECT count(*) FROM items`).Rows)

	ds.store.down.Store(false)
	assert.Equal(t, [][]any{{"bob"}}, f.ok(t, bobToken, `SELECT name FROM items`).Rows)
}

// gatedStore counts the segments opened, and holds the first Open until
// open is closed, once it has said so on opening.
type gatedStore struct {
	segment.Store
	opened  atomic.Int64
	opening chan struct{}
	open    chan struct{}
	failing error // the first Open's error, once released
}

func (s *gatedStore) Open(ctx context.Context, name string, size int64) (segment.Object, error) {
	if s.opened.Add(1) == 1 {
		close(s.opening)
		<-s.open
		if s.failing != nil {
			return nil, s.failing
		}
	}
	return s.Store.Open(ctx, name, size)
}

// waiting returns how many queries wait for the copy of segment p under
// way (0 when none is).
func (m *mirror) waiting(p string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.copying[p]; ok {
		return c.waiters
	}
	return 0
}

// Queries that need a file another query is copying wait for that copy
// rather than copy the file too; they share its failure, unless it failed
// because its own query gave up.
func TestSegmentFilesCopiedOnceForConcurrentQueries(t *testing.T) {
	p, files := segmentsOf(t, 1)
	for name, c := range map[string]struct {
		failing error
		opens   int64  // the store's Opens in all
		want    string // the waiter's error; "" for none
	}{
		"copied":                     {opens: 1},
		"failed":                     {failing: fmt.Errorf("%w: the test's outage", objstore.ErrUnavailable), opens: 1, want: "the test's outage"},
		"abandoned by the first one": {failing: context.Canceled, opens: 2},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			gs := &gatedStore{Store: p.m.Store(), opening: make(chan struct{}), open: make(chan struct{}), failing: c.failing}
			m, err := openMirror(filepath.Join(t.TempDir(), "files"), 1<<30, gs)
			require.NoError(t, err)
			type outcome struct {
				release func()
				err     error
			}
			first, second := make(chan outcome, 1), make(chan outcome, 1)
			go func() {
				r, err := m.acquire(ctx, files)
				first <- outcome{r, err}
			}()
			<-gs.opening
			go func() {
				r, err := m.acquire(ctx, files)
				second <- outcome{r, err}
			}()
			require.Eventually(t, func() bool { return m.waiting(files[0].Path) > 0 }, 10*time.Second, time.Millisecond,
				"the second query waits for the first one's copy")
			close(gs.open)
			a, b := <-first, <-second
			if c.failing != nil {
				require.ErrorIs(t, a.err, c.failing)
			} else {
				require.NoError(t, a.err)
				a.release()
			}
			if c.want != "" {
				require.Error(t, b.err)
				assert.Contains(t, b.err.Error(), c.want)
			} else {
				require.NoError(t, b.err)
				b.release()
				assert.Equal(t, []bool{true}, mirroredFiles(t, m, files))
			}
			assert.Equal(t, c.opens, gs.opened.Load(), "opens of the segment in the store")
			_, inUse := m.held()
			assert.Zero(t, inUse)
		})
	}
}

// A copy removed or cut short behind the mirror's back (its directory
// cleaned, a disk that filled) is copied again by the next query that
// needs it, rather than handed to the query engine.
func TestSegmentFilesMirrorCopiesAgainWhatWasRemovedOrCut(t *testing.T) {
	ctx := context.Background()
	p, files := segmentsOf(t, 1)
	gs := &gatedStore{Store: p.m.Store(), opening: make(chan struct{}), open: make(chan struct{})}
	close(gs.open)
	m, err := openMirror(filepath.Join(t.TempDir(), "files"), 1<<30, gs)
	require.NoError(t, err)
	acquire := func() {
		t.Helper()
		release, err := m.acquire(ctx, files)
		require.NoError(t, err)
		release()
		fi, err := os.Stat(m.path(files[0].Path))
		require.NoError(t, err)
		assert.Equal(t, files[0].Bytes, fi.Size())
		all, _ := m.held()
		assert.Equal(t, files[0].Bytes, all)
	}
	acquire()
	acquire()
	assert.EqualValues(t, 1, gs.opened.Load(), "an intact copy is used as it is")
	require.NoError(t, os.Truncate(m.path(files[0].Path), files[0].Bytes/2))
	acquire()
	assert.EqualValues(t, 2, gs.opened.Load(), "a copy cut short is copied again")
	require.NoError(t, os.Remove(m.path(files[0].Path)))
	acquire()
	assert.EqualValues(t, 3, gs.opened.Load(), "a removed copy is copied again")
}
