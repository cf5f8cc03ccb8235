package faultfs_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
)

func write(t *testing.T, fsys segment.FS, name, data string, sync bool) {
	t.Helper()
	f, err := fsys.Create(name)
	require.NoError(t, err)
	_, err = f.Write([]byte(data))
	require.NoError(t, err)
	if sync {
		require.NoError(t, f.Sync())
	}
	require.NoError(t, f.Close())
}

func read(t *testing.T, fsys segment.FS, name string) (string, bool) {
	t.Helper()
	f, err := fsys.Open(name)
	if segment.IsNotExist(err) {
		return "", false
	}
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return string(b), true
}

func TestPowerLossKeepsOnlyWhatWasMadeDurable(t *testing.T) {
	inner := segment.DirFS(t.TempDir())
	require.NoError(t, inner.MkdirAll("d"))
	fsys := faultfs.New(inner)

	write(t, fsys, "d/durable", "synced", true)
	require.NoError(t, fsys.SyncDir("d"))
	write(t, fsys, "d/unsynced-data", "lost", false)
	require.NoError(t, fsys.SyncDir("d"))
	write(t, fsys, "d/unsynced-entry", "synced data", true) // data synced, directory not
	write(t, fsys, "d/tmp", "renamed", true)
	require.NoError(t, fsys.Rename("d/tmp", "d/final")) // rename never made durable
	require.NoError(t, fsys.MkdirAll("d/new/deeper"))   // directories never synced

	require.NoError(t, fsys.PowerLoss())
	got, ok := read(t, inner, "d/durable")
	assert.True(t, ok)
	assert.Equal(t, "synced", got)
	_, ok = read(t, inner, "d/unsynced-entry")
	assert.False(t, ok, "a file whose directory entry was not synced is gone")
	got, ok = read(t, inner, "d/unsynced-data")
	assert.True(t, ok, "its entry was synced")
	assert.Empty(t, got, "its data was not")
	_, ok = read(t, inner, "d/final")
	assert.False(t, ok, "the rename is undone")
	_, ok = read(t, inner, "d/tmp")
	assert.False(t, ok, "and so is the creation of the renamed file")
	_, err := inner.ReadDir("d/new")
	assert.True(t, segment.IsNotExist(err), "the new directory is gone")
}

func TestDurableRenameSurvives(t *testing.T) {
	inner := segment.DirFS(t.TempDir())
	require.NoError(t, inner.MkdirAll("d"))
	fsys := faultfs.New(inner)
	write(t, fsys, "d/x.tmp", "payload", true)
	require.NoError(t, fsys.Rename("d/x.tmp", "d/x"))
	require.NoError(t, fsys.SyncDir("d"))
	require.NoError(t, fsys.PowerLoss())
	got, ok := read(t, inner, "d/x")
	assert.True(t, ok)
	assert.Equal(t, "payload", got)
}

func TestFailNthFailsOnce(t *testing.T) {
	fsys := faultfs.New(segment.DirFS(t.TempDir()))
	fsys.SetRule(faultfs.FailNth(2, func(op faultfs.Op) bool { return op == faultfs.OpCreate }))
	_, err := fsys.Create("a")
	require.NoError(t, err)
	_, err = fsys.Create("b")
	require.ErrorIs(t, err, faultfs.ErrInjected)
	_, err = fsys.Create("c")
	require.NoError(t, err)
	_, ok := read(t, fsys.Inner(), "b")
	assert.False(t, ok, "a failed operation is not applied")
	assert.Equal(t, 2, fsys.Count(faultfs.OpCreate))
	assert.False(t, fsys.Crashed())
}

func TestCrashAtFailsEverythingAfter(t *testing.T) {
	fsys := faultfs.New(segment.DirFS(t.TempDir()))
	fsys.SetRule(faultfs.CrashAt(3, faultfs.Writes))
	require.NoError(t, fsys.MkdirAll("d"))
	f, err := fsys.Create("d/a")
	require.NoError(t, err)
	_, err = f.Write([]byte("x"))
	require.ErrorIs(t, err, faultfs.ErrCrashed)
	assert.True(t, fsys.Crashed())
	_, err = fsys.ReadDir("d")
	require.ErrorIs(t, err, faultfs.ErrCrashed, "reads fail too after a crash")
	require.ErrorIs(t, f.Close(), faultfs.ErrCrashed)
	require.NoError(t, fsys.PowerLoss())
	assert.False(t, fsys.Crashed())
	_, err = fsys.ReadDir(".")
	require.NoError(t, err)
	assert.Equal(t, 2, fsys.Total(faultfs.Writes))
}

// FailFrom models a disk that fills up: from the n-th operation that needs
// space on, every such operation fails with the given error, while
// removals, which free space, and reads still work.
func TestFailFromFailsEveryLaterOperationUntilCleared(t *testing.T) {
	inner := segment.DirFS(t.TempDir())
	require.NoError(t, inner.MkdirAll("d"))
	fsys := faultfs.New(inner)
	write(t, fsys, "d/old", "x", true)
	full := errors.New("disk full")
	fsys.SetRule(faultfs.FailFrom(2, faultfs.NeedsSpace, full))

	f, err := fsys.Create("d/new") // the first operation that needs space
	require.NoError(t, err)
	_, err = f.Write([]byte("y"))
	require.ErrorIs(t, err, full)
	assert.Contains(t, err.Error(), "write d/new")
	require.ErrorIs(t, f.Sync(), full)
	require.ErrorIs(t, f.Close(), full)
	require.ErrorIs(t, fsys.Rename("d/new", "d/newer"), full)
	require.ErrorIs(t, fsys.SyncDir("d"), full)
	require.ErrorIs(t, fsys.MkdirAll("e"), full)
	got, ok := read(t, fsys, "d/old")
	assert.True(t, ok)
	assert.Equal(t, "x", got)
	require.NoError(t, fsys.Remove("d/new"), "a removal needs no space")

	fsys.SetRule(nil)
	write(t, fsys, "d/new", "z", true)
	assert.False(t, fsys.Crashed())
}
