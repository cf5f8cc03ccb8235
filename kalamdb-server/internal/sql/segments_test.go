package sql

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

// pair is two engines over one table layer and cold tier: seg reads the
// segment files itself, copy copies every row through the table layer, as
// an engine without Options.Segments does.
type pair struct {
	m         *flush.Manager
	seg, copy *fixture
}

func newPair(t *testing.T, b store.StorageBackend, dedupeAlways bool) *pair {
	t.Helper()
	return newPairOn(t, b, dedupeAlways, nil)
}

// newPairOn is newPair with the segments in st, a segment store on an
// object store (nil: a local directory): seg then reads copies of the
// segment files (Options.SegmentFiles).
func newPairOn(t *testing.T, b store.StorageBackend, dedupeAlways bool, st segment.Store) *pair {
	t.Helper()
	fopts := flush.Options{Dir: t.TempDir(), CompactSegments: flush.NeverCompact}
	files := ""
	if st != nil {
		fopts.Dir, fopts.Store = "", st
		files = filepath.Join(t.TempDir(), "sql-files")
	}
	m, err := flush.Open(context.Background(), b, fopts)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = m.Close(context.Background()) })
	p := &pair{m: m,
		seg:  newFixtureWith(t, m.DB(), m, func(o *Options) { o.Segments, o.SegmentFiles = m, files }),
		copy: newFixtureWith(t, m.DB(), m)}
	require.NotNil(t, p.seg.e.segments)
	require.Equal(t, st != nil, p.seg.e.mirror != nil)
	require.Nil(t, p.copy.e.segments)
	p.seg.e.dedupeAlways = dedupeAlways
	return p
}

// objectStoreOf returns a segment store on an object store, behind a disk
// cache as the server opens one: a file:// bucket, or with s3 a new
// bucket of the moto S3 server (skipping t without it).
func objectStoreOf(t testing.TB, s3 bool) segment.Store {
	t.Helper()
	var bk *blob.Bucket
	var err error
	if s3 {
		_, url := s3test.Bucket(t)
		bk, err = blob.OpenBucket(context.Background(), url)
	} else {
		bk, err = fileblob.OpenBucket(t.TempDir(), nil)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = bk.Close() })
	cache, err := segment.OpenDiskCache(t.TempDir(), 64<<20)
	require.NoError(t, err)
	return cache.Wrap(objstore.New(bk, "test bucket", objstore.Options{}), "test")
}

// pairQueries are run by both engines, as each user, and must agree.
var pairQueries = []string{
	`SELECT * FROM items ORDER BY id`,
	`SELECT id, _seq, _updated FROM items ORDER BY id`,
	`SELECT count(*), sum(qty), min(name), max(seen), sum(price), count(data), count(ok) FROM items`,
	`SELECT id, name FROM items WHERE id BETWEEN 5 AND 30 ORDER BY id`,
	`SELECT id FROM items WHERE id > 45 ORDER BY id`,
	`SELECT id FROM items WHERE id < 12 AND qty > 3 ORDER BY id`,
	`SELECT a.id, b.name FROM items a JOIN items b ON a.id = b.id + 1 ORDER BY 1`,
	`SELECT count(*) FROM items WHERE id >= 1000`,
}

// same checks that both engines answer every query alike for alice and
// bob, and that the segment engine made views over segments.
func (p *pair) same(t *testing.T, step string, queries ...string) {
	t.Helper()
	views := p.seg.e.views.Load()
	for _, tok := range []string{aliceToken, bobToken} {
		for _, q := range append(pairQueries, queries...) {
			want := p.copy.ok(t, tok, q)
			got := p.seg.ok(t, tok, q)
			require.Equal(t, want.Schema, got.Schema, "%s: %s", step, q)
			require.Equal(t, want.Rows, got.Rows, "%s: %s", step, q)
		}
	}
	require.Greater(t, p.seg.e.views.Load(), views, step)
}

func runPair(t *testing.T, b store.StorageBackend, dedupeAlways bool, st segment.Store) {
	p := newPairOn(t, b, dedupeAlways, st)
	f := p.seg
	f.setup(t)
	var vals []string
	for i := 1; i <= 50; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'v%d', %d, %d.5, %v, '\\x%02x'::BLOB, TIMESTAMP '2026-01-02 03:04:05' + INTERVAL %d SECOND)", i, i, i%7, i, i%2 == 0, i, i))
	}
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty, price, ok, data, seen) VALUES `+strings.Join(vals, ", "))
	f.ok(t, bobToken, `INSERT INTO items (id, name, qty) VALUES (1, 'bob', 1), (7, 'bob7', 7), (60, 'bob60', 60)`)
	p.same(t, "buffered only")

	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	p.same(t, "flushed only")
	assert.Equal(t, [][]any{{"bob"}, {"bob7"}, {"bob60"}}, f.ok(t, bobToken, `SELECT name FROM items ORDER BY id`).Rows)

	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (51, 'new', 5), (52, 'new', NULL)`)
	p.same(t, "buffer and segments")

	f.ok(t, aliceToken, `UPDATE items SET qty = qty + 1000, name = 'upd' WHERE id <= 10; DELETE FROM items WHERE id > 40 AND id <= 45`)
	f.ok(t, bobToken, `DELETE FROM items WHERE id = 7`)
	p.same(t, "updated and deleted after a flush")
	assert.Equal(t, [][]any{{47.0}}, f.ok(t, aliceToken, `SELECT count(*) FROM items`).Rows)

	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	p.same(t, "tombstones in segments")
	f.ok(t, aliceToken, `UPDATE items SET qty = 1 WHERE id = 3; INSERT INTO items (id, name) VALUES (41, 'again')`)
	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	f.ok(t, aliceToken, `DELETE FROM items WHERE id = 3`)
	p.same(t, "three segments")

	f.ok(t, adminToken, `STORAGE COMPACT TABLE app.items`)
	p.same(t, "compacted")

	f.ok(t, adminToken, `ALTER TABLE app.items ADD COLUMN note TEXT`)
	f.ok(t, aliceToken, `UPDATE items SET note = 'n' WHERE id = 2; INSERT INTO items (id, name, note) VALUES (70, 'x', 'seventy')`)
	p.same(t, "a column added", `SELECT id, note FROM items WHERE note IS NOT NULL OR id < 4 ORDER BY id`)
	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	p.same(t, "a column added, flushed", `SELECT id, note FROM items WHERE note IS NOT NULL OR id < 4 ORDER BY id`)
	assert.Equal(t, [][]any{{1.0, nil}, {2.0, "n"}, {70.0, "seventy"}},
		f.ok(t, aliceToken, `SELECT id, note FROM items WHERE note IS NOT NULL OR id < 3 ORDER BY id`).Rows)

	// A shared table.
	f.ok(t, adminToken, `CREATE SHARED TABLE app.s (k TEXT PRIMARY KEY, n INT); INSERT INTO app.s VALUES ('a', 1), ('b', 2), ('c', 3)`)
	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.s`)
	f.ok(t, adminToken, `UPDATE app.s SET n = 20 WHERE k = 'b'; DELETE FROM app.s WHERE k = 'c'; INSERT INTO app.s VALUES ('d', 4)`)
	p.same(t, "shared", `SELECT * FROM app.s ORDER BY k`, `SELECT sum(n) FROM app.s WHERE k > 'a'`,
		`SELECT i.id, s.n FROM items i JOIN app.s s ON i.id = s.n ORDER BY 1`)
	assert.Equal(t, [][]any{{"a", 1.0}, {"b", 20.0}, {"d", 4.0}}, f.ok(t, aliceToken, `SELECT k, n FROM app.s ORDER BY k`).Rows)
	assert.Positive(t, p.seg.e.merged.Load())
}

// Queries that read the segment files answer as those that copy every row:
// buffered rows only, flushed only, both, rows updated or deleted after a
// flush, compacted segments, each user's rows only, an added column.
func TestSegmentFilesAnswerAsTheCopiedRows(t *testing.T) {
	inEachMergeMode(t, func(t *testing.T, b store.StorageBackend, always bool) {
		runPair(t, b, always, nil)
	})
}

// On an object store, queries read copies of the segment files, and answer
// as those that copy every row.
func TestSegmentFilesOfAnObjectStoreAnswerAsTheCopiedRows(t *testing.T) {
	inEachMergeMode(t, func(t *testing.T, b store.StorageBackend, always bool) {
		runPair(t, b, always, objectStoreOf(t, false))
	})
	t.Run("s3", func(t *testing.T) {
		st := objectStoreOf(t, true)
		b := memory.New()
		t.Cleanup(func() { _ = b.Close() })
		runPair(t, b, false, st)
	})
}

func TestSegmentFilesAnswerAsTheCopiedRowsOnRocksDB(t *testing.T) {
	c := rocksdb.DefaultConfig()
	c.Path = t.TempDir()
	b, err := rocksdb.OpenWith(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	runPair(t, b, false, nil)
}

// Segments are read as they are when their key range meets no other
// segment's and no buffered key; merged with the buffer alone when only
// buffered keys fall in them; and merged all together when their ranges
// meet.
func TestSplitSegments(t *testing.T) {
	seg := func(lo, hi string, maxSeq int64) flush.SnapshotFile {
		return flush.SnapshotFile{Segment: flush.Segment{MinKey: []byte(lo), MaxKey: []byte(hi), MaxSeq: maxSeq, Path: lo + hi}}
	}
	names := func(fs []flush.SnapshotFile) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Path)
		}
		return strings.Join(out, " ")
	}
	check := func(files []flush.SnapshotFile, buf string, seqs []int64, plain, covered, overlapping string, newer bool) {
		t.Helper()
		var keys [][]byte
		for _, k := range strings.Fields(buf) {
			keys = append(keys, []byte(k))
		}
		sp := splitSegments(files, keys, seqs)
		assert.Equal(t, plain, names(sp.plain), "plain")
		assert.Equal(t, covered, names(sp.covered), "covered")
		assert.Equal(t, overlapping, names(sp.overlapping), "overlapping")
		assert.Equal(t, newer, sp.bufferNewer, "buffer newer")
	}
	check(nil, "a", []int64{1}, "", "", "", true)
	check([]flush.SnapshotFile{seg("m", "p", 5), seg("c", "f", 5)}, "a g q", []int64{1, 1, 1}, "cf mp", "", "", true)
	check([]flush.SnapshotFile{seg("c", "f", 5), seg("f", "h", 5), seg("x", "y", 5)}, "", nil, "xy", "", "cf fh", true)
	check([]flush.SnapshotFile{seg("a", "z", 5), seg("c", "d", 5), seg("f", "g", 5)}, "", nil, "", "", "az cd fg", true)
	check([]flush.SnapshotFile{seg("a", "m", 5), seg("b", "c", 5), seg("n", "o", 5)}, "", nil, "no", "", "am bc", true)
	check([]flush.SnapshotFile{seg("c", "f", 5), seg("g", "h", 5)}, "a d", []int64{1, 6}, "gh", "cf", "", true)
	check([]flush.SnapshotFile{seg("c", "f", 5), seg("g", "h", 5)}, "a d", []int64{1, 5}, "gh", "cf", "", false)
	check([]flush.SnapshotFile{seg("c", "f", 5)}, "f", []int64{9}, "", "cf", "", true)
	check([]flush.SnapshotFile{seg("c", "f", 5)}, "c", []int64{2}, "", "cf", "", false)
}

// Key bounds leave out the segments whose key range is outside them.
func TestSegmentsOutsideTheKeyBoundsAreNotRead(t *testing.T) {
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	p := newPair(t, b, false)
	f := p.seg
	f.ok(t, adminToken, `CREATE NAMESPACE app; CREATE SHARED TABLE app.m (id BIGINT PRIMARY KEY, x DOUBLE, y INT)`)
	for s := 0; s < 3; s++ {
		f.fill(t, s*100, 100)
		f.ok(t, adminToken, `STORAGE FLUSH TABLE app.m`)
	}
	tb, err := f.db.Catalog().Table("app", "m")
	require.NoError(t, err)
	snap, err := p.m.Snapshot(context.Background(), tb, "")
	require.NoError(t, err)
	defer snap.Release()
	require.Len(t, snap.Files, 3)
	for _, c := range []struct {
		where string
		segs  int
	}{
		{`id >= 100 AND id < 200`, 1}, {`id > 99 AND id <= 200`, 2}, {`id < 100`, 1}, {`id > 199`, 1},
		{`id BETWEEN 150 AND 250`, 2}, {`id > 299`, 0}, {`x > 0`, 3},
	} {
		q := `SELECT count(*), sum(id) FROM app.m WHERE ` + c.where
		bounds := pushdown(mustParse(t, f, q), tb, nil)
		assert.Len(t, inBounds(snap.Files, tb, nil, bounds), c.segs, c.where)
		assert.Equal(t, p.copy.ok(t, adminToken, q).Rows, f.ok(t, adminToken, q).Rows, c.where)
	}
}

func mustParse(t *testing.T, f *fixture, q string) *parsed {
	t.Helper()
	conn, err := f.e.db.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	s := &session{e: f.e, ns: "app"}
	pr, err := s.parse(context.Background(), conn, q, 0)
	require.NoError(t, err)
	return pr
}

// A flush or compaction that runs while queries read never makes a row
// disappear or appear twice: the batches a writer inserts, in order, are
// always seen as a whole prefix of them.
func TestQueriesRacingFlushesSeeEveryRowOnce(t *testing.T) {
	inEachMergeMode(t, func(t *testing.T, b store.StorageBackend, always bool) {
		p := newPair(t, b, always)
		f := p.seg
		f.setup(t)
		const batches, size = 24, 50
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			for k := 0; k < batches; k++ {
				var vals []string
				for i := k * size; i < (k+1)*size; i++ {
					vals = append(vals, fmt.Sprintf("(%d, 'n', %d)", i, i))
				}
				f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES `+strings.Join(vals, ", "))
				if k%2 == 0 {
					// Rewrite the previous batch: a new version of each row,
					// same values.
					f.ok(t, aliceToken, fmt.Sprintf(`UPDATE items SET qty = id WHERE id >= %d AND id < %d`, max(k-1, 0)*size, k*size))
				}
				f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
				if k%5 == 4 {
					f.ok(t, adminToken, `STORAGE COMPACT TABLE app.items`)
				}
			}
		}()
		check := func() {
			r := f.ok(t, aliceToken, `SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0), coalesce(sum(qty), 0), coalesce(max(id), -1) FROM items`)
			n := r.Rows[0][0].(float64)
			require.Equal(t, n, r.Rows[0][1], "a row seen twice")
			require.Zero(t, int(n)%size, "a batch seen in part: %v", r.Rows)
			require.Equal(t, n*(n-1)/2, r.Rows[0][2], "rows missing: %v", r.Rows)
			require.Equal(t, n*(n-1)/2, r.Rows[0][3], "rows missing: %v", r.Rows)
			require.Equal(t, n-1, r.Rows[0][4])
		}
		queries := 0
		for running := true; running; queries++ {
			select {
			case <-done:
				running = false
			default:
			}
			check()
		}
		wg.Wait()
		check()
		assert.Equal(t, [][]any{{float64(batches * size)}}, f.ok(t, aliceToken, `SELECT count(*) FROM items`).Rows)
		t.Logf("%d queries during %d flushes", queries, batches)
	})
}

// The engine reads no file but the segment files under the cold tier's
// directory, and a query cannot name even those.
func TestQueriesCannotReadFiles(t *testing.T) {
	for _, objectStore := range []bool{false, true} {
		t.Run(fmt.Sprintf("object-store=%v", objectStore), func(t *testing.T) { queriesCannotReadFiles(t, objectStore) })
	}
}

func queriesCannotReadFiles(t *testing.T, objectStore bool) {
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	var st segment.Store
	if objectStore {
		st = objectStoreOf(t, false)
	}
	p := newPairOn(t, b, false, st)
	f := p.seg
	f.setup(t)
	f.ok(t, bobToken, `INSERT INTO items (id, name) VALUES (1, 'secret')`)
	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	// On an object store, bob's query copies his segment file.
	assert.Equal(t, [][]any{{"secret"}}, f.ok(t, bobToken, `SELECT name FROM items`).Rows)
	tb, err := f.db.Catalog().Table("app", "items")
	require.NoError(t, err)
	snap, err := p.m.Snapshot(context.Background(), tb, "bob")
	require.NoError(t, err)
	defer snap.Release()
	require.Len(t, snap.Files, 1)
	dir := snap.Dir
	if objectStore {
		require.Empty(t, dir)
		dir = f.e.mirror.dir
	}
	seg := filepath.Join(dir, filepath.FromSlash(snap.Files[0].Path))
	require.FileExists(t, seg)
	outside := filepath.Join(t.TempDir(), "other.parquet")
	_, err = p.copy.e.db.Exec(`COPY (SELECT 1 AS x) TO ` + quoteString(outside) + ` (FORMAT parquet)`)
	require.Error(t, err, "the engine without segments writes no file")
	require.NoError(t, os.WriteFile(outside, []byte("not parquet"), 0o600))

	for _, q := range []struct{ sql, code string }{
		{`SELECT * FROM read_parquet(` + quoteString(seg) + `)`, CodeUnsupported},
		{`SELECT * FROM parquet_scan([` + quoteString(seg) + `])`, CodeUnsupported},
		{`SELECT * FROM ` + quoteString(seg), CodeInvalidSQL},
		{`SELECT * FROM ` + quote(seg), CodeInvalidSQL},
		{`SELECT * FROM items, ` + quote(seg), CodeInvalidSQL},
		{`SELECT * FROM (WITH "x.parquet" AS (SELECT 1) SELECT * FROM "x.parquet"), "x.parquet"`, CodeInvalidSQL},
		{`SELECT * FROM glob(` + quoteString(dir+"/*") + `)`, CodeUnsupported},
	} {
		f.fail(t, http.StatusBadRequest, q.code, aliceToken, q.sql)
	}
	assert.Empty(t, f.ok(t, aliceToken, `SELECT * FROM items`).Rows)

	// Below the statement layer, the engine itself reads the segment
	// directory only, and its settings are locked.
	db := f.e.db
	var n int64
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM read_parquet(`+quoteString(seg)+`)`).Scan(&n))
	assert.Equal(t, int64(1), n)
	for _, q := range []string{
		`SELECT count(*) FROM read_parquet(` + quoteString(outside) + `)`,
		`SELECT count(*) FROM read_text(` + quoteString(outside) + `)`,
		`SELECT count(*) FROM read_text(` + quoteString(dir+"/../"+filepath.Base(filepath.Dir(outside))+"/other.parquet") + `)`,
		`SELECT count(*) FROM read_text('/etc/hostname')`,
	} {
		err := db.QueryRow(q).Scan(&n)
		require.Error(t, err, q)
		assert.Contains(t, err.Error(), "Permission Error", q)
	}
	for _, q := range []string{`SET allowed_directories = ['/']`, `SET allowed_paths = ['/etc/hostname']`, `SET enable_external_access = true`} {
		_, err := db.Exec(q)
		assert.Error(t, err, q)
	}
	// The engine could write there too: only queries reach it, never a
	// COPY.
	for _, tok := range []string{aliceToken, adminToken} {
		f.fail(t, http.StatusBadRequest, CodeInvalidSQL, tok, `COPY (SELECT 1 AS x) TO `+quoteString(filepath.Join(dir, "x.parquet"))+` (FORMAT parquet)`)
		f.fail(t, http.StatusBadRequest, CodeInvalidSQL, tok, `COPY items TO `+quoteString(seg)+` (FORMAT parquet)`)
	}
	assert.NoFileExists(t, filepath.Join(dir, "x.parquet"))
}

// Segments on an object store, without Options.SegmentFiles, are not local
// files, nor are files under a directory whose name DuckDB would take for a
// pattern: queries copy their rows through the table layer, and see the
// same.
func TestSegmentsNotReadableAsFilesAreCopied(t *testing.T) {
	bk, err := fileblob.OpenBucket(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = bk.Close() })
	pattern := filepath.Join(t.TempDir(), "kalam[1]")
	require.NoError(t, os.Mkdir(pattern, 0o700))
	for name, opts := range map[string]flush.Options{
		"object store":      {Store: objstore.New(bk, "file", objstore.Options{})},
		"pattern directory": {Dir: pattern},
	} {
		t.Run(name, func(t *testing.T) {
			b := memory.New()
			t.Cleanup(func() { _ = b.Close() })
			opts.CompactSegments = flush.NeverCompact
			m, err := flush.Open(context.Background(), b, opts)
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = m.Close(context.Background()) })
			f := newFixtureWith(t, m.DB(), m, func(o *Options) { o.Segments = m })
			require.Nil(t, f.e.segments)
			f.setup(t)
			f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)`)
			f.ok(t, bobToken, `INSERT INTO items (id, name, qty) VALUES (1, 'bob', 100)`)
			f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
			f.ok(t, aliceToken, `UPDATE items SET qty = 20 WHERE id = 2; DELETE FROM items WHERE id = 3`)
			assert.Equal(t, [][]any{{1.0, 1.0}, {2.0, 20.0}}, f.ok(t, aliceToken, `SELECT id, qty FROM items ORDER BY id`).Rows)
			assert.Equal(t, [][]any{{1.0, 100.0}}, f.ok(t, bobToken, `SELECT id, qty FROM items ORDER BY id`).Rows)
			assert.Zero(t, f.e.views.Load())
		})
	}
}

// A flush between a query's read of the buffer and its list of segments
// makes the query see the flushed versions twice, in the buffer and in the
// new segment, and it counts them once; a compaction once it holds the
// list removes no file it reads.
func TestAFlushOrCompactionDuringAQuery(t *testing.T) {
	inEachMergeMode(t, func(t *testing.T, b store.StorageBackend, always bool) {
		p := newPair(t, b, always)
		f := p.seg
		f.setup(t)
		ctx := context.Background()
		insert := func(from, to int) {
			var vals []string
			for i := from; i < to; i++ {
				vals = append(vals, fmt.Sprintf("(%d, 'n', %d)", i, i))
			}
			f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES `+strings.Join(vals, ", "))
		}
		const q = `SELECT count(*), count(DISTINCT id), sum(qty) FROM items`
		var ran []string
		flushes := func(rows int64) func(string) {
			return func(stage string) {
				ran = append(ran, stage)
				if stage == "buffered" {
					r, err := p.m.Flush(ctx, "app", "items")
					require.NoError(t, err)
					require.Equal(t, rows, r.Rows)
				}
			}
		}
		// Into a first segment, so the versions seen twice are in one
		// segment and the buffer.
		insert(0, 100)
		f.e.between = flushes(100)
		assert.Equal(t, [][]any{{100.0, 100.0, float64(99 * 100 / 2)}}, f.ok(t, aliceToken, q).Rows)
		assert.Equal(t, []string{"buffered", "listed"}, ran)
		// Into a second segment whose key range meets the first's.
		f.e.between = nil
		insert(100, 200)
		f.ok(t, aliceToken, `UPDATE items SET qty = qty + 1 WHERE id < 10`)
		ran = nil
		f.e.between = flushes(110)
		want := [][]any{{200.0, 200.0, float64(199*200/2 + 10)}}
		assert.Equal(t, want, f.ok(t, aliceToken, q).Rows)
		assert.Equal(t, []string{"buffered", "listed"}, ran)

		// Two segments now; a major compaction replaces them while a
		// query holds them.
		segs, err := p.m.Segments(context.Background(), "app", "items")
		require.NoError(t, err)
		require.Len(t, segs, 2)
		dir, ok := p.m.LocalDir()
		require.True(t, ok)
		f.e.between = func(stage string) {
			if stage == "listed" {
				r, err := p.m.MajorCompact(ctx, "app", "items")
				require.NoError(t, err)
				require.Equal(t, 2, r.Merged)
			}
		}
		assert.Equal(t, want, f.ok(t, aliceToken, q).Rows)
		f.e.between = nil
		for _, s := range segs {
			assert.NoFileExists(t, filepath.Join(dir, filepath.FromSlash(s.Path)), "released once the query ended")
		}
		segs, err = p.m.Segments(context.Background(), "app", "items")
		require.NoError(t, err)
		require.Len(t, segs, 1)
		assert.Equal(t, want, f.ok(t, aliceToken, q).Rows)
	})
}

// The engine's Parquet reader skips the row groups whose statistics rule
// out a query's condition, through the view over the segments.
func TestRowGroupsAreSkippedByTheirStatistics(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	m, err := flush.Open(ctx, b, flush.Options{Dir: t.TempDir(), RowGroupRows: 100, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = m.Close(ctx) })
	f := newFixtureWith(t, m.DB(), m, func(o *Options) { o.Segments = m })
	f.ok(t, adminToken, `CREATE NAMESPACE app; CREATE SHARED TABLE app.m (id BIGINT PRIMARY KEY, x DOUBLE, y INT)`)
	f.fill(t, 0, 1000)
	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.m`)
	tb, err := f.db.Catalog().Table("app", "m")
	require.NoError(t, err)
	snap, err := m.Snapshot(ctx, tb, "")
	require.NoError(t, err)
	defer snap.Release()
	require.Len(t, snap.Files, 1)
	require.Equal(t, 10, snap.Files[0].RowGroups)

	scanned := func(sp segmentSplit, where string) string {
		t.Helper()
		view, err := segmentView(tb, snap.Dir, sp, "")
		require.NoError(t, err)
		rows, err := f.e.db.QueryContext(ctx, "EXPLAIN ANALYZE SELECT count(*) FROM ("+view+") WHERE "+where)
		require.NoError(t, err)
		defer rows.Close()
		var plan strings.Builder
		for rows.Next() {
			var kind, text string
			require.NoError(t, rows.Scan(&kind, &text))
			plan.WriteString(text)
		}
		require.NoError(t, rows.Err())
		i := strings.Index(plan.String(), "Row Groups Scanned:")
		require.GreaterOrEqual(t, i, 0, "plan: %s", plan.String())
		return strings.Join(strings.Fields(plan.String()[i:])[3:6], " ")
	}
	plain := segmentSplit{plain: snap.Files}
	assert.Equal(t, "10 / 10", scanned(plain, `y > 49`))
	assert.Equal(t, "1 / 10", scanned(plain, `id >= 950`))
	assert.Equal(t, "2 / 10", scanned(plain, `x BETWEEN 100 AND 150`))
	// Merged with the buffer, a condition on the key still reaches the scan.
	assert.Equal(t, "1 / 10", scanned(segmentSplit{overlapping: snap.Files}, `id >= 950`))
	assert.Equal(t, [][]any{{50.0}}, f.ok(t, adminToken, `SELECT count(*) FROM app.m WHERE id >= 950`).Rows)
}

// rootSegments claims segments at the file system's root.
type rootSegments struct{ Segments }

func (rootSegments) LocalDir() (string, bool) { return "/", true }

// The engine never opens the whole file system to DuckDB: segments said to
// be at its root are copied through the table layer.
func TestSegmentsAtTheRootAreNotReadAsFiles(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Segments = rootSegments{} })
	require.Nil(t, f.e.segments)
	var n int64
	err := f.e.db.QueryRow(`SELECT count(*) FROM read_text('/etc/hostname')`).Scan(&n)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Permission Error")
}

// inEachMergeMode runs fn on a fresh memory backend twice: with the
// segments that allow it read as they are, and with every segment merged
// version by version (always).
func inEachMergeMode(t *testing.T, fn func(t *testing.T, b store.StorageBackend, always bool)) {
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprintf("merge-always=%v", always), func(t *testing.T) {
			b := memory.New()
			t.Cleanup(func() { _ = b.Close() })
			fn(t, b, always)
		})
	}
}
