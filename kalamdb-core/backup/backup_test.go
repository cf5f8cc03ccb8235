package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup/backuptest"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// db is a database of the tests: a backend and its segment directory.
type db struct {
	b   store.StorageBackend
	dir string
}

func newDB(t *testing.T) db {
	return db{b: memory.New(), dir: t.TempDir()}
}

func (d db) source() backup.Source {
	return backup.Source{Backend: d.b, Name: "memory", Segments: segment.FSStore(segment.DirFS(d.dir), d.dir)}
}

func (d db) target() backup.Target {
	return backup.Target{Backend: d.b, Segments: func(context.Context, store.StorageBackend) (segment.Store, error) {
		return segment.FSStore(segment.DirFS(d.dir), d.dir), nil
	}}
}

// open opens the table layer on d.
func (d db) open(t *testing.T) *flush.Manager {
	m, err := flush.Open(context.Background(), d.b, flush.Options{Dir: d.dir, GCGrace: -1, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	return m
}

// populated returns a database filled by backuptest.Populate and what the
// table API reads of it.
func populated(t *testing.T) (db, string) {
	d := newDB(t)
	m := d.open(t)
	backuptest.Populate(t, m)
	want := backuptest.Dump(t, m.DB())
	m.Stop()
	return d, want
}

// backedUp returns a populated database, what the table API reads of it,
// and a backup of it in a directory.
func backedUp(t *testing.T) (db, string, string) {
	src, want := populated(t)
	loc := filepath.Join(t.TempDir(), "b")
	_, err := backup.Backup(context.Background(), src.source(), loc, backup.Options{})
	require.NoError(t, err)
	return src, want, loc
}

// requireSame checks that d reads as want through the table API.
func requireSame(t *testing.T, d db, want string) {
	m := d.open(t)
	defer m.Stop()
	require.Equal(t, want, backuptest.Dump(t, m.DB()))
}

func TestRoundTrip(t *testing.T) {
	for _, dest := range []string{"dir", "backup.tar.gz", "file-url"} {
		t.Run(dest, func(t *testing.T) {
			ctx := context.Background()
			src, want := populated(t)
			loc := filepath.Join(t.TempDir(), dest)
			if dest == "file-url" {
				loc = "file://" + filepath.Join(t.TempDir(), "b")
			}
			idx, err := backup.Backup(ctx, src.source(), loc, backup.Options{})
			require.NoError(t, err)
			require.NotEmpty(t, idx.Segments, "the backup holds the flushed segments")
			require.Len(t, idx.Tables, 3)

			dst := newDB(t)
			var phases sync.Map
			rep, err := backup.Restore(ctx, loc, dst.target(), backup.Options{Progress: func(p backup.Progress) { phases.Store(p.Phase, true) }})
			require.NoError(t, err)
			require.Equal(t, len(idx.Segments), rep.Segments)
			for _, ph := range []string{"check", "restore", "verify"} {
				_, ok := phases.Load(ph)
				require.True(t, ok, "progress of phase %s reported", ph)
			}
			parts, err := dst.b.ListPartitions(ctx)
			require.NoError(t, err)
			require.NotContains(t, parts, backup.RestoreMarker, "a finished restore drops its marker")
			m := dst.open(t)
			defer m.Stop()
			require.Equal(t, want, backuptest.Dump(t, m.DB()))
		})
	}
}

// A backup of a backup's restore is the same backup: every key and
// segment carried, nothing added.
func TestBackupOfARestoreIsTheSame(t *testing.T) {
	ctx := context.Background()
	src, _ := populated(t)
	a := filepath.Join(t.TempDir(), "a")
	ia, err := backup.Backup(ctx, src.source(), a, backup.Options{})
	require.NoError(t, err)
	dst := newDB(t)
	_, err = backup.Restore(ctx, a, dst.target(), backup.Options{})
	require.NoError(t, err)
	b := filepath.Join(t.TempDir(), "b")
	ib, err := backup.Backup(ctx, dst.source(), b, backup.Options{})
	require.NoError(t, err)
	require.Equal(t, ia.Partitions, ib.Partitions)
	require.Equal(t, ia.Segments, ib.Segments)
	require.Equal(t, ia.Tables, ib.Tables)
}

func TestRestoreRefusesANonEmptyTargetUnlessForced(t *testing.T) {
	ctx := context.Background()
	_, want, loc := backedUp(t)

	dst := newDB(t)
	other := store.MustPartition("t:x.y.9")
	require.NoError(t, dst.b.CreatePartition(ctx, other))
	require.NoError(t, dst.b.Put(ctx, other, []byte("k"), []byte("v")))
	_, err := backup.Restore(ctx, loc, dst.target(), backup.Options{})
	require.ErrorContains(t, err, "not empty")
	require.ErrorContains(t, err, "partition t:x.y.9 with 1 keys")
	v, err := dst.b.Get(ctx, other, []byte("k"))
	require.NoError(t, err, "a refused restore changes nothing")
	require.Equal(t, "v", string(v))

	_, err = backup.Restore(ctx, loc, dst.target(), backup.Options{Force: true})
	require.NoError(t, err)
	ok, err := dst.b.PartitionExists(ctx, other)
	require.NoError(t, err)
	require.False(t, ok, "a forced restore replaces what the target held")
	requireSame(t, dst, want)
}

func TestBackupToANonEmptyPlaceIsRefused(t *testing.T) {
	ctx := context.Background()
	src, _, loc := backedUp(t)
	_, err := backup.Backup(ctx, src.source(), loc, backup.Options{})
	require.ErrorContains(t, err, "is not empty")
	require.ErrorIs(t, err, backup.ErrDestination)
	tgz := filepath.Join(t.TempDir(), "b.tar.gz")
	require.NoError(t, os.WriteFile(tgz, []byte("x"), 0o600))
	_, err = backup.Backup(ctx, src.source(), tgz, backup.Options{})
	require.ErrorIs(t, err, os.ErrExist)
}

// An unfinished restore leaves its marker: the database is refused by a
// backup and by a restore that is not forced.
func TestUnfinishedRestoreIsSeen(t *testing.T) {
	ctx := context.Background()
	_, want, loc := backedUp(t)

	dst := newDB(t)
	// A target whose writes fail half way: the restore stops with its
	// marker in place.
	failing := &failAfter{StorageBackend: dst.b, left: 3}
	_, err := backup.Restore(ctx, loc, backup.Target{Backend: failing, Segments: dst.target().Segments}, backup.Options{BatchOps: 10})
	require.ErrorContains(t, err, "injected")
	require.ErrorContains(t, err, backup.RestoreMarker.Name())
	ok, err := dst.b.PartitionExists(ctx, backup.RestoreMarker)
	require.NoError(t, err)
	require.True(t, ok)

	_, err = backup.Backup(ctx, dst.source(), filepath.Join(t.TempDir(), "c"), backup.Options{})
	require.ErrorContains(t, err, "unfinished restore")
	_, err = backup.Restore(ctx, loc, dst.target(), backup.Options{})
	require.ErrorContains(t, err, "an unfinished restore")
	_, err = backup.Restore(ctx, loc, dst.target(), backup.Options{Force: true})
	require.NoError(t, err)
	requireSame(t, dst, want)
}

// failAfter fails every Batch after the first left ones.
type failAfter struct {
	store.StorageBackend
	left int
}

func (f *failAfter) Batch(ctx context.Context, ops []store.Operation) error {
	if f.left == 0 {
		return errors.New("injected write failure")
	}
	f.left--
	return f.StorageBackend.Batch(ctx, ops)
}

// Restore splits its writes into batches within the target's limits.
func TestRestoreBatchesWithinTheTargetsLimits(t *testing.T) {
	ctx := context.Background()
	_, want, loc := backedUp(t)
	limited, err := memory.OpenWith(memory.Config{MaxBatchOps: store.MinBatchOps, MaxBatchBytes: 4096})
	require.NoError(t, err)
	dst := db{b: limited, dir: t.TempDir()}
	_, err = backup.Restore(ctx, loc, dst.target(), backup.Options{})
	require.NoError(t, err)
	requireSame(t, dst, want)
}

func TestCorruptionIsDetected(t *testing.T) {
	ctx := context.Background()
	src, _ := populated(t)
	master := filepath.Join(t.TempDir(), "master")
	idx, err := backup.Backup(ctx, src.source(), master, backup.Options{})
	require.NoError(t, err)
	var catalogFile string
	for _, p := range idx.Partitions {
		if p.Name == "system:catalog" {
			catalogFile = p.File
		}
	}
	seg := idx.Segments[0].File

	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		file   string // the file the error names
		offset bool   // the error names an offset
	}{
		{"flip a byte of a partition file", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, catalogFile), 20) }, catalogFile, true},
		{"truncate a partition file", func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, catalogFile), 30) }, catalogFile, true},
		{"flip a byte of a segment", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, seg), 100) }, seg, true},
		{"truncate a segment", func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, seg), 10) }, seg, true},
		{"remove a segment", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, seg))) }, seg, false},
		{"remove the index", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, backup.IndexName))) }, backup.IndexName, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			require.NoError(t, os.CopyFS(dir, os.DirFS(master)))
			c.damage(t, dir)
			dst := newDB(t)
			_, err := backup.Restore(ctx, dir, dst.target(), backup.Options{})
			require.Error(t, err)
			require.ErrorContains(t, err, c.file)
			if c.offset {
				var ce *backup.CorruptError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, c.file, ce.File)
				require.ErrorContains(t, err, fmt.Sprintf("offset %d", ce.Offset))
			}
			parts, err := dst.b.ListPartitions(ctx)
			require.NoError(t, err)
			require.Empty(t, parts, "nothing is written from a damaged backup")
		})
	}
}

func TestDamagedArchiveIsDetected(t *testing.T) {
	ctx := context.Background()
	src, _ := populated(t)
	tgz := filepath.Join(t.TempDir(), "b.tar.gz")
	_, err := backup.Backup(ctx, src.source(), tgz, backup.Options{})
	require.NoError(t, err)
	data, err := os.ReadFile(tgz)
	require.NoError(t, err)

	for name, damaged := range map[string][]byte{
		"truncated": data[:len(data)*2/3],
		"flipped":   flipped(data, len(data)/2),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "b.tar.gz")
			require.NoError(t, os.WriteFile(p, damaged, 0o600))
			dst := newDB(t)
			_, err := backup.Restore(ctx, p, dst.target(), backup.Options{})
			require.Error(t, err)
			require.ErrorContains(t, err, "offset")
			parts, err := dst.b.ListPartitions(ctx)
			require.NoError(t, err)
			require.Empty(t, parts)
		})
	}
}

func flipped(data []byte, at int) []byte {
	out := append([]byte(nil), data...)
	out[at] ^= 0xff
	return out
}

func flip(t *testing.T, path string, at int64) {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Less(t, at, int64(len(data)))
	require.NoError(t, os.WriteFile(path, flipped(data, int(at)), 0o600))
}

func truncate(t *testing.T, path string, drop int64) {
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, st.Size()-drop))
}

// An online backup, taken while clients write through the Gate, holds
// every write acknowledged before it started, and each multi-row insert
// whole or not at all.
func TestOnlineBackupHoldsEveryAcknowledgedWrite(t *testing.T) {
	ctx := context.Background()
	d := newDB(t)
	gate := backup.NewGate(d.b)
	m, err := flush.Open(ctx, gate, flush.Options{Dir: d.dir, GCGrace: -1, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	defer m.Stop()
	_, err = m.DB().Catalog().CreateNamespace(ctx, "app")
	require.NoError(t, err)
	_, err = m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: "app", Name: "kv", Type: catalog.SharedTable, PrimaryKey: "k",
		Columns: []catalog.Column{{Name: "k", Type: row.TypeInt64}, {Name: "w", Type: row.TypeInt64}}})
	require.NoError(t, err)
	kv, err := m.DB().Shared(ctx, "app", "kv")
	require.NoError(t, err)

	const writers = 4
	ws := backuptest.StartWriters(t, writers, func(w int, i int64) error {
		base := int64(w)<<32 | 2*i
		// Two rows, one batch.
		_, err := kv.Insert(ctx, []row.Value{row.Int64(base), row.Int64(int64(w))}, []row.Value{row.Int64(base + 1), row.Int64(int64(w))})
		return err
	})
	before := ws.Acked()
	src := backup.Source{Backend: gate, Name: "memory", Segments: segment.FSStore(segment.DirFS(d.dir), d.dir), Pause: gate.Pause}
	loc := filepath.Join(t.TempDir(), "b")
	_, err = backup.Backup(ctx, src, loc, backup.Options{})
	ws.Stop()
	require.NoError(t, err)

	dst := newDB(t)
	_, err = backup.Restore(ctx, loc, dst.target(), backup.Options{})
	require.NoError(t, err)
	m2 := dst.open(t)
	defer m2.Stop()
	kv2, err := m2.DB().Shared(ctx, "app", "kv")
	require.NoError(t, err)
	page, err := kv2.Scan(ctx, tablesAll)
	require.NoError(t, err)
	require.False(t, page.More)
	have := map[int64]bool{}
	for _, r := range page.Rows {
		have[r.Values[0].Int64()] = true
	}
	for w, n := range before {
		for i := int64(0); i < n; i++ {
			require.True(t, have[int64(w)<<32|2*i], "row %d of writer %d, acknowledged before the backup", 2*i, w)
		}
	}
	for k := range have {
		require.True(t, have[k^1], "row %d is in the backup without the other row of its insert", k)
	}
}

// While a SegmentHold is held, a removed segment stays readable; the
// release removes it.
func TestSegmentHoldDefersRemovals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := backup.NewSegmentHold(segment.FSStore(segment.DirFS(dir), dir))
	up, err := h.Create(ctx, "a/seg")
	require.NoError(t, err)
	_, err = up.Write([]byte("bytes"))
	require.NoError(t, err)
	require.NoError(t, up.Commit())

	release, err := h.Hold(ctx)
	require.NoError(t, err)
	inner, err := h.Hold(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Remove(ctx, "a/seg"))
	release()
	obj, err := h.Open(ctx, "a/seg", -1)
	require.NoError(t, err, "kept while a hold remains")
	require.NoError(t, obj.Close())
	inner()
	_, err = h.Open(ctx, "a/seg", -1)
	require.ErrorIs(t, err, os.ErrNotExist, "removed at the last release")
}
