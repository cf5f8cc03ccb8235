package tables_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// version is what Buffered reports of one buffered version.
type version struct {
	id      int64
	body    string
	deleted bool
}

func buffered(t *testing.T, rs *tables.RowStore, from row.Value, exclusive bool) []version {
	t.Helper()
	var out []version
	seqs := map[int64]bool{}
	require.NoError(t, rs.Buffered(context.Background(), from, exclusive, func(r *row.Row) error {
		require.Len(t, r.Values, len(rs.Table().Columns))
		require.False(t, seqs[r.Seq], "one version per _seq")
		seqs[r.Seq] = true
		out = append(out, version{id: r.Values[0].Int64(), body: r.Values[1].Str(), deleted: r.Deleted})
		return nil
	}))
	return out
}

func TestBufferedVersionsIncludeTombstonesOfOneUser(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	db, err := tables.Open(ctx, b, tables.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Catalog().CreateNamespace(ctx, "app")
	require.NoError(t, err)
	_, err = db.Catalog().CreateTable(ctx, catalog.Table{Namespace: "app", Name: "m", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "body", Type: row.TypeString}}})
	require.NoError(t, err)
	alice, err := db.RowStore(ctx, "app", "m", "alice")
	require.NoError(t, err)
	bob, err := db.RowStore(ctx, "app", "m", "bob")
	require.NoError(t, err)
	for i := int64(1); i <= 4; i++ {
		_, err := alice.Insert(ctx, []row.Value{row.Int64(i), row.String("a")})
		require.NoError(t, err)
	}
	_, err = bob.Insert(ctx, []row.Value{row.Int64(2), row.String("b")})
	require.NoError(t, err)
	_, err = alice.Update(ctx, row.Int64(2), map[string]row.Value{"body": row.String("a2")})
	require.NoError(t, err)
	require.NoError(t, alice.Delete(ctx, row.Int64(3)))

	require.Equal(t, []version{{1, "a", false}, {2, "a2", false}, {3, "a", true}, {4, "a", false}}, buffered(t, alice, row.Value{}, false))
	require.Equal(t, []version{{2, "a2", false}, {3, "a", true}, {4, "a", false}}, buffered(t, alice, row.Int64(2), false))
	require.Equal(t, []version{{3, "a", true}, {4, "a", false}}, buffered(t, alice, row.Int64(2), true))
	require.Equal(t, []version{{2, "b", false}}, buffered(t, bob, row.Value{}, false))

	// fn's error ends the read and is returned.
	stop := errors.New("stop")
	n := 0
	err = alice.Buffered(ctx, row.Value{}, false, func(*row.Row) error { n++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)
	// A key of the wrong type is refused.
	require.Error(t, alice.Buffered(ctx, row.String("x"), false, func(*row.Row) error { return nil }))
}
