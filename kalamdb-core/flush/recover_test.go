package flush_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
)

func TestOpenRemovesOrphansAndKeepsOtherFiles(t *testing.T) {
	e := newEnv(t)
	tbl := e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	s := e.store("items")
	require.NoError(t, s.insert(e.ctx, "alice", vals(1, 0)))
	res, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	require.Len(t, res.Files, 1)
	committed := filepath.Join(e.root, filepath.FromSlash(res.Files[0]))
	dir := filepath.Dir(committed)

	orphanSeg := filepath.Join(dir, segment.FileName(tbl.ID, 99))
	orphanTmp := filepath.Join(dir, segment.FileName(tbl.ID, 100)+segment.TempExt)
	otherTable := filepath.Join(dir, segment.FileName(tbl.ID+7, 1))
	deadDir := filepath.Join(e.root, "gone", "table", "u-bob")
	deadSeg := filepath.Join(deadDir, segment.FileName(1234, 1))
	foreign := filepath.Join(dir, "README.txt")
	require.NoError(t, os.MkdirAll(deadDir, 0o755))
	for _, p := range []string{orphanSeg, orphanTmp, otherTable, deadSeg, foreign} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	}
	e.reopen()
	for _, p := range []string{orphanSeg, orphanTmp, otherTable, deadSeg} {
		_, err := os.Stat(p)
		assert.True(t, os.IsNotExist(err), "%s is removed", p)
	}
	_, err = os.Stat(deadDir)
	assert.True(t, os.IsNotExist(err), "empty directories are removed")
	for _, p := range []string{committed, foreign} {
		_, err := os.Stat(p)
		assert.NoError(t, err, "%s is kept", p)
	}
	e.check("items", model{"alice": {1: 0}}, []string{"alice"}, nil)
}

func TestOpenReportsAMissingCommittedSegment(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	require.NoError(t, e.store("items").insert(e.ctx, "", vals(1, 0)))
	res, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(e.root, filepath.FromSlash(res.Files[0]))))
	err = e.tryReopen()
	require.ErrorIs(t, err, core.ErrCorrupt)
	assert.Contains(t, err.Error(), res.Files[0])
}

func TestOpenRejectsACorruptManifest(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.inner.Put(e.ctx, layout.Manifests, []byte("junk"), []byte("{not json")))
	require.ErrorIs(t, e.tryReopen(), core.ErrCorrupt)
}

// assertNoSegments fails unless the manifest is empty and table name has
// no directory.
func assertNoSegments(t *testing.T, e *env, name string) {
	t.Helper()
	it, err := e.inner.Scan(e.ctx, layout.Manifests, store.ScanOptions{})
	require.NoError(t, err)
	assert.False(t, it.Next(), "the manifest is empty")
	require.NoError(t, it.Close())
	_, err = os.Stat(filepath.Join(e.root, ns, name))
	assert.True(t, os.IsNotExist(err), "the table's directory is gone")
}

func TestDropTableRemovesBufferManifestAndFiles(t *testing.T) {
	e := newEnv(t)
	tbl := e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	s := e.store("items")
	for _, u := range []string{"alice", "bob"} {
		require.NoError(t, s.insert(e.ctx, u, vals(1, 0), vals(2, 0)))
	}
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	require.NoError(t, s.insert(e.ctx, "alice", vals(3, 0)))

	require.NoError(t, e.m.DropTable(e.ctx, ns, "items"))
	_, err = e.m.DB().Catalog().Table(ns, "items")
	require.ErrorIs(t, err, core.ErrTableNotFound)
	ok, err := e.inner.PartitionExists(e.ctx, tbl.Partition())
	require.NoError(t, err)
	assert.False(t, ok, "the buffer is gone")
	assertNoSegments(t, e, "items")

	// A table re-created under the name starts empty.
	e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	e.check("items", model{}, []string{"alice", "bob"}, map[string][]int64{"alice": {1, 2, 3}})
	require.NoError(t, e.store("items").insert(e.ctx, "alice", vals(1, 5)))
	_, err = e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	e.reopen()
	e.check("items", model{"alice": {1: 5}}, []string{"alice", "bob"}, nil)
}

func TestDropOfAStreamTable(t *testing.T) {
	e := newEnv(t)
	_, err := e.m.DB().Catalog().CreateNamespace(e.ctx, ns)
	require.NoError(t, err)
	_, err = e.m.DB().Catalog().CreateTable(e.ctx, catalog.Table{Namespace: ns, Name: "ev", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "x", Type: 2}}, Stream: catalog.StreamOptions{TTL: 1e9, MaxBuffer: 10}})
	require.NoError(t, err)
	require.NoError(t, e.m.DropTable(e.ctx, ns, "ev"))
	_, err = e.m.DB().Catalog().Table(ns, "ev")
	require.ErrorIs(t, err, core.ErrTableNotFound)
}

// TestInterruptedDropIsCompletedAtOpen: the catalog forgot the table but
// its manifest records and files remain (a crash in the middle of
// DropTable); the next Open removes them.
func TestInterruptedDropIsCompletedAtOpen(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	require.NoError(t, e.store("items").insert(e.ctx, "", vals(1, 0)))
	res, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	require.NoError(t, e.m.DB().Catalog().DropTable(e.ctx, ns, "items")) // the catalog step only
	e.reopen()
	_, err = os.Stat(filepath.Join(e.root, filepath.FromSlash(res.Files[0])))
	assert.True(t, os.IsNotExist(err))
	it, err := e.inner.Scan(e.ctx, layout.Manifests, store.ScanOptions{})
	require.NoError(t, err)
	assert.False(t, it.Next())
	require.NoError(t, it.Close())
}

// A read-only Parquet directory does not stop Open: the files it cannot
// remove are reported by Leftovers, no read sees them, and the next Open
// that can removes them.
func TestOpenReportsTheFilesItCannotRemove(t *testing.T) {
	e := newEnv(t)
	tbl := e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	require.NoError(t, e.store("items").insert(e.ctx, "alice", vals(1, 0)))
	e.createTable("gone", catalog.SharedTable, catalog.FlushPolicy{})
	require.NoError(t, e.store("gone").insert(e.ctx, "", vals(1, 0)))
	_, err := e.m.FlushAll(e.ctx)
	require.NoError(t, err)
	gone, err := e.m.Segments(context.Background(), ns, "gone")
	require.NoError(t, err)
	require.Len(t, gone, 1)
	// A drop interrupted after the catalog forgot the table.
	require.NoError(t, e.m.DB().Catalog().DropTable(e.ctx, ns, "gone"))
	segs, err := e.m.Segments(context.Background(), ns, "items")
	require.NoError(t, err)
	dir := filepath.Join(e.root, filepath.FromSlash(filepath.Dir(segs[0].Path)))
	orphanSeg := filepath.Join(dir, segment.FileName(tbl.ID, 99))
	orphanTmp := filepath.Join(dir, segment.FileName(tbl.ID, 100)+segment.TempExt)
	for _, p := range []string{orphanSeg, orphanTmp} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	}
	e.m.Stop()

	fsys := faultfs.New(segment.DirFS(e.root))
	fsys.SetRule(faultfs.FailFrom(1, func(op faultfs.Op) bool { return op == faultfs.OpRemove }, syscall.EROFS))
	opts := e.opts
	opts.FS = fsys
	m, err := flush.Open(e.ctx, e.inner, opts)
	require.NoError(t, err)
	left := m.Leftovers()
	require.Len(t, left, 3)
	var msgs []string
	for _, err := range left {
		assert.ErrorIs(t, err, syscall.EROFS)
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, p := range []string{gone[0].Path, filepath.Base(orphanSeg), filepath.Base(orphanTmp)} {
		assert.Contains(t, all, p)
	}
	e.m, e.fsys = m, fsys
	e.check("items", model{"alice": {1: 0}}, []string{"alice"}, nil)

	e.reopen()
	assert.Empty(t, e.m.Leftovers())
	for _, p := range []string{orphanSeg, orphanTmp, filepath.Join(e.root, filepath.FromSlash(gone[0].Path))} {
		_, err := os.Stat(p)
		assert.True(t, os.IsNotExist(err), "%s is removed", p)
	}
}

// With a grace period, Open removes only the unrecorded objects older than
// it: a younger one may be an upload about to commit.
func TestOpenKeepsUnrecordedObjectsYoungerThanTheGrace(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.GCGrace = time.Hour })
	tbl := e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	require.NoError(t, s.insert(e.ctx, "", vals(1, 0)))
	res, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	dir := filepath.Dir(filepath.Join(e.root, filepath.FromSlash(res.Files[0])))
	young := filepath.Join(dir, segment.FileName(tbl.ID, 50))
	youngTmp := filepath.Join(dir, segment.FileName(tbl.ID, 51)+segment.TempExt)
	old := filepath.Join(dir, segment.FileName(tbl.ID, 52))
	oldTmp := filepath.Join(dir, segment.FileName(tbl.ID, 53)+segment.TempExt)
	for _, p := range []string{young, youngTmp, old, oldTmp} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	}
	past := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{old, oldTmp} {
		require.NoError(t, os.Chtimes(p, past, past))
	}
	e.reopen()
	assert.Equal(t, 2, e.m.Young())
	for _, p := range []string{young, youngTmp} {
		_, err := os.Stat(p)
		assert.NoError(t, err, "%s is younger than the grace: kept", p)
	}
	for _, p := range []string{old, oldTmp} {
		_, err := os.Stat(p)
		assert.True(t, os.IsNotExist(err), "%s is older than the grace: removed", p)
	}
	e.check("items", model{"": {1: 0}}, []string{""}, nil)
}
