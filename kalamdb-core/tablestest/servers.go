package tablestest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// refresh is one background refresh of the catalog, as
// tables.Options.CatalogRefreshed reports it.
type refresh struct {
	changed bool
	err     error
}

// servers returns two table layers on one backend shared by several
// processes, standing for two servers: a is the env's, and b reports each
// of its background refreshes on the channel returned.
func servers(t *testing.T, h Harness) (e *env, a, b *tables.DB, refreshed <-chan refresh) {
	e = newEnvWith(t, h, envOptions{wrap: func(b store.StorageBackend) store.StorageBackend { return multiProcess{b} }})
	ch := make(chan refresh, 16)
	b, err := tables.Open(e.ctx, e.b, tables.Options{Clock: e.clock, SeqBlock: 16,
		CatalogRefreshed: func(changed bool, err error) { ch <- refresh{changed, err} }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return e, e.db, b, ch
}

// kvTable is a small shared table of namespace ns.
func kvTable(ns, name string) catalog.Table {
	return catalog.Table{Namespace: ns, Name: name, Type: catalog.SharedTable, PrimaryKey: "k",
		Columns: []catalog.Column{{Name: "k", Type: row.TypeInt64}, {Name: "v", Type: row.TypeString}}}
}

// testServersSeeNewTables: a namespace and a table created through one
// server are usable through the other at once, without waiting for its
// background refresh: a lookup of what it does not know reads the catalog
// again first.
func testServersSeeNewTables(t *testing.T, h Harness) {
	e, a, b, _ := servers(t, h)
	_, err := a.Catalog().CreateNamespace(e.ctx, "later")
	require.NoError(t, err)
	_, err = a.Catalog().CreateTable(e.ctx, kvTable("later", "kv"))
	require.NoError(t, err)

	_, err = b.Catalog().FindNamespace(e.ctx, "later")
	require.NoError(t, err)
	ts, err := b.Catalog().FreshTables(e.ctx, "later")
	require.NoError(t, err)
	require.Len(t, ts, 1)
	nss, err := b.Catalog().FreshNamespaces(e.ctx)
	require.NoError(t, err)
	assert.Len(t, nss, 2)

	_, err = a.Catalog().CreateTable(e.ctx, kvTable("later", "kv2"))
	require.NoError(t, err)
	// A lookup that missed looks again after its refresh, even when another
	// request's refresh brought the table first and this one finds nothing
	// new.
	_, missed := b.Catalog().Table("later", "kv2")
	require.ErrorIs(t, missed, core.ErrTableNotFound)
	_, err = b.Catalog().Refresh(e.ctx)
	require.NoError(t, err)
	again, err := b.Catalog().RefreshIfMissing(e.ctx, missed)
	require.NoError(t, err)
	assert.True(t, again)
	rs, err := b.RowStore(e.ctx, "later", "kv2", "")
	require.NoError(t, err, "a table created through another server is found")
	_, err = rs.Insert(e.ctx, []row.Value{row.Int64(1), row.String("from b")})
	require.NoError(t, err)
	ra, err := a.RowStore(e.ctx, "later", "kv2", "")
	require.NoError(t, err)
	got, err := ra.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	assert.Equal(t, "from b", got.Values[1].Str())

	_, err = a.Catalog().CreateTable(e.ctx, catalog.Table{Namespace: "later", Name: "ev", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "n", Type: row.TypeInt64}}, Stream: catalog.StreamOptions{TTL: time.Hour, MaxBuffer: 10}})
	require.NoError(t, err)
	_, err = b.Stream(e.ctx, "later", "ev")
	require.NoError(t, err, "a stream table created through another server is found")

	// What no server created is still unknown.
	_, err = b.RowStore(e.ctx, "later", "nothing", "")
	require.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = b.Catalog().FindNamespace(e.ctx, "nothing")
	require.ErrorIs(t, err, core.ErrNamespaceNotFound)
}

// testServersSeeDroppedTables: once a table is dropped through one server,
// every write through the other fails with core.ErrTableNotFound, through
// a store it opened before the drop and through a new lookup alike; the
// re-created table starts empty for both.
func testServersSeeDroppedTables(t *testing.T, h Harness) {
	e, a, b, _ := servers(t, h)
	_, err := a.Catalog().CreateTable(e.ctx, kvTable(ns, "gone"))
	require.NoError(t, err)
	held, err := b.RowStore(e.ctx, ns, "gone", "")
	require.NoError(t, err)
	_, err = held.Insert(e.ctx, []row.Value{row.Int64(1), row.String("one")})
	require.NoError(t, err)

	require.NoError(t, a.Catalog().DropTable(e.ctx, ns, "gone"))
	_, err = held.Insert(e.ctx, []row.Value{row.Int64(2), row.String("two")})
	require.ErrorIs(t, err, core.ErrTableNotFound, "insert through a store opened before the drop")
	_, err = held.Update(e.ctx, row.Int64(1), map[string]row.Value{"v": row.String("x")})
	require.ErrorIs(t, err, core.ErrTableNotFound, "update through a store opened before the drop")
	require.ErrorIs(t, held.Delete(e.ctx, row.Int64(1)), core.ErrTableNotFound, "delete through a store opened before the drop")
	if rs, err := b.RowStore(e.ctx, ns, "gone", ""); err == nil {
		_, err = rs.Insert(e.ctx, []row.Value{row.Int64(3), row.String("three")})
		require.ErrorIs(t, err, core.ErrTableNotFound, "insert through a lookup after the drop")
	} else {
		require.ErrorIs(t, err, core.ErrTableNotFound)
	}

	_, err = a.Catalog().CreateTable(e.ctx, kvTable(ns, "gone"))
	require.NoError(t, err)
	_, err = b.Catalog().Refresh(e.ctx)
	require.NoError(t, err)
	for _, db := range []*tables.DB{a, b} {
		rs, err := db.RowStore(e.ctx, ns, "gone", "")
		require.NoError(t, err)
		n, err := rs.Count(e.ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "the re-created table holds none of the dropped one's rows")
	}
}

// testServersSeeAddedColumns: a column added through one server is
// written and read through the other once a request names it: the
// catalog is read again and the table's store switched to the new
// definition, keeping the rows.
func testServersSeeAddedColumns(t *testing.T, h Harness) {
	e, a, b, _ := servers(t, h)
	_, err := a.Catalog().CreateTable(e.ctx, kvTable(ns, "grow"))
	require.NoError(t, err)
	rb, err := b.RowStore(e.ctx, ns, "grow", "")
	require.NoError(t, err)
	_, err = rb.Insert(e.ctx, []row.Value{row.Int64(1), row.String("old")})
	require.NoError(t, err)
	old := rb.Table()

	_, err = a.AddColumn(e.ctx, ns, "grow", catalog.Column{Name: "extra", Type: row.TypeInt64, Nullable: true})
	require.NoError(t, err)
	_, err = old.ValuesFromMap(map[string]any{"k": 2, "v": "new", "extra": 5})
	require.ErrorIs(t, err, core.ErrInvalidRow, "the old definition does not know the column")

	changed, err := b.Catalog().RefreshForColumn(e.ctx, old, "v")
	require.NoError(t, err)
	assert.False(t, changed, "a known column reads nothing again")
	// Another request's refresh brought the new definition meanwhile: this
	// one still looks again.
	_, err = b.Catalog().Refresh(e.ctx)
	require.NoError(t, err)
	changed, err = b.Catalog().RefreshForColumn(e.ctx, old, "extra")
	require.NoError(t, err)
	assert.True(t, changed, "the catalog holds a newer definition than the request's")

	held := rb
	rb, err = b.RowStore(e.ctx, ns, "grow", "")
	require.NoError(t, err)
	nt := rb.Table()
	require.Len(t, nt.Columns, 3)
	assert.Len(t, held.Table().Columns, 3, "the table's store was switched to the new definition, not replaced")
	vals, err := nt.ValuesFromMap(map[string]any{"k": 2, "v": "new", "extra": 5})
	require.NoError(t, err)
	_, err = rb.Insert(e.ctx, vals)
	require.NoError(t, err)
	ra, err := a.RowStore(e.ctx, ns, "grow", "")
	require.NoError(t, err)
	got, err := ra.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)
	assert.Equal(t, int64(5), got.Values[2].Int64())
	got, err = rb.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	assert.Equal(t, "old", got.Values[1].Str())
	assert.True(t, got.Values[2].IsNull(), "a row written before the column reads it as null")
}

// testServersBackgroundRefresh: a server's copy of the catalog follows the
// other server's changes once a second of its clock, with no request
// naming them, and a refresh that finds nothing new reads nothing more.
func testServersBackgroundRefresh(t *testing.T, h Harness) {
	e, a, b, refreshed := servers(t, h)
	_, err := a.Catalog().CreateNamespace(e.ctx, "bg")
	require.NoError(t, err)
	_, err = a.Catalog().CreateTable(e.ctx, kvTable("bg", "kv"))
	require.NoError(t, err)
	_, err = b.Catalog().Table("bg", "kv")
	require.ErrorIs(t, err, core.ErrNamespaceNotFound, "nothing refreshed yet")

	e.clock.Advance(tables.CatalogRefreshInterval)
	r := <-refreshed
	require.NoError(t, r.err)
	assert.True(t, r.changed)
	_, err = b.Catalog().Table("bg", "kv")
	require.NoError(t, err, "the background refresh brought the new table")

	e.clock.Advance(tables.CatalogRefreshInterval)
	r = <-refreshed
	require.NoError(t, r.err)
	assert.False(t, r.changed, "nothing changed since")

	require.NoError(t, a.Catalog().DropTable(e.ctx, "bg", "kv"))
	e.clock.Advance(tables.CatalogRefreshInterval)
	r = <-refreshed
	require.NoError(t, r.err)
	assert.True(t, r.changed)
	_, err = b.Catalog().Table("bg", "kv")
	require.ErrorIs(t, err, core.ErrTableNotFound, "the background refresh forgot the dropped table")
}
