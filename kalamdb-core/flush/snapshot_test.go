package flush_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

func TestSnapshotListsAUsersSegmentsAndHoldsThemUntilReleased(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	dir := t.TempDir()
	m, err := flush.Open(ctx, b, flush.Options{Dir: dir, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = m.Close(ctx) })
	local, ok := m.LocalDir()
	require.True(t, ok)
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	require.Equal(t, abs, local)

	_, err = m.DB().Catalog().CreateNamespace(ctx, "app")
	require.NoError(t, err)
	tb, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: "app", Name: "u", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "v", Type: row.TypeString}}})
	require.NoError(t, err)
	u, err := m.DB().User(ctx, "app", "u")
	require.NoError(t, err)
	for round := int64(0); round < 2; round++ {
		_, err = u.Insert(ctx, "alice", []row.Value{row.Int64(round*10 + 1), row.String("a")}, []row.Value{row.Int64(round*10 + 2), row.String("a")})
		require.NoError(t, err)
		_, err = m.Flush(ctx, "app", "u")
		require.NoError(t, err)
	}
	_, err = u.Insert(ctx, "bob", []row.Value{row.Int64(1), row.String("b")})
	require.NoError(t, err)
	_, err = m.Flush(ctx, "app", "u")
	require.NoError(t, err)

	snap, err := m.Snapshot(ctx, tb, "alice")
	require.NoError(t, err)
	require.Equal(t, local, snap.Dir)
	require.Len(t, snap.Files, 2)
	for i, f := range snap.Files {
		require.Equal(t, "alice", f.User)
		require.Equal(t, int64(2), f.Rows)
		require.Equal(t, []string{"id", "v", catalog.ColumnSeq, catalog.ColumnUpdated, catalog.ColumnDeleted}, f.Columns)
		if i > 0 {
			require.Greater(t, f.ID, snap.Files[i-1].ID)
		}
		require.FileExists(t, filepath.Join(snap.Dir, filepath.FromSlash(f.Path)))
	}
	bob, err := m.Snapshot(ctx, tb, "bob")
	require.NoError(t, err)
	require.Len(t, bob.Files, 1)
	require.Equal(t, "bob", bob.Files[0].User)
	bob.Release()
	none, err := m.Snapshot(ctx, tb, "carol")
	require.NoError(t, err)
	require.Empty(t, none.Files)
	none.Release()

	// A compaction replaces the segments; the snapshot keeps their files.
	res, err := m.MajorCompact(ctx, "app", "u")
	require.NoError(t, err)
	require.Equal(t, 2, res.Merged)
	for _, f := range snap.Files {
		require.FileExists(t, filepath.Join(snap.Dir, filepath.FromSlash(f.Path)))
	}
	after, err := m.Snapshot(ctx, tb, "alice")
	require.NoError(t, err)
	require.Len(t, after.Files, 1)
	require.Equal(t, int64(4), after.Files[0].Rows)
	after.Release()
	snap.Release()
	snap.Release() // idempotent
	for _, f := range snap.Files {
		_, err := os.Stat(filepath.Join(snap.Dir, filepath.FromSlash(f.Path)))
		require.ErrorIs(t, err, os.ErrNotExist)
	}

	// Wrong users for the table's type.
	_, err = m.Snapshot(ctx, tb, "")
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	sh, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: "app", Name: "s", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}}})
	require.NoError(t, err)
	_, err = m.Snapshot(ctx, sh, "alice")
	require.ErrorIs(t, err, core.ErrInvalidArgument)
}

func TestSnapshotOfAStoreThatIsNotALocalDirectoryHasNoDir(t *testing.T) {
	e := newEnv(t) // its segments go through a fault-injecting file system
	_, ok := e.m.LocalDir()
	require.False(t, ok)
	tb := e.createTable("t", catalog.SharedTable, catalog.FlushPolicy{})
	require.NoError(t, e.store("t").insert(e.ctx, "", vals(1, 0)))
	_, err := e.m.Flush(e.ctx, ns, "t")
	require.NoError(t, err)
	snap, err := e.m.Snapshot(e.ctx, tb, "")
	require.NoError(t, err)
	defer snap.Release()
	require.Empty(t, snap.Dir)
	require.Len(t, snap.Files, 1)
	_, ok = segment.LocalDir(segment.FSStore(segment.DirFS(t.TempDir()), "x"))
	require.True(t, ok)
}
