package tablestest

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

func testCatalogRestart(t *testing.T, e *env) {
	before, err := e.db.Catalog().Tables("")
	require.NoError(t, err)
	_, err = e.user().Insert(e.ctx, "alice", sample(1))
	require.NoError(t, err)
	e.restart()
	after, err := e.db.Catalog().Tables("")
	require.NoError(t, err)
	require.Len(t, after, len(before))
	for i := range before {
		assert.Equal(t, before[i].FullName(), after[i].FullName())
		assert.Equal(t, before[i].ID, after[i].ID)
		assert.Equal(t, before[i].Columns, after[i].Columns)
		assert.Equal(t, before[i].Stream, after[i].Stream)
		assert.Equal(t, before[i].Partition(), after[i].Partition())
	}
	r, err := e.user().Get(e.ctx, "alice", row.Int64(1))
	require.NoError(t, err)
	assertValues(t, sample(1), r.Values)
}

func testWrongType(t *testing.T, e *env) {
	_, err := e.db.User(e.ctx, ns, sharedTable)
	assert.ErrorIs(t, err, core.ErrWrongTableType)
	_, err = e.db.Shared(e.ctx, ns, userTable)
	assert.ErrorIs(t, err, core.ErrWrongTableType)
	_, err = e.db.Stream(e.ctx, ns, userTable)
	assert.ErrorIs(t, err, core.ErrWrongTableType)
	_, err = e.db.User(e.ctx, ns, streamTable)
	assert.ErrorIs(t, err, core.ErrWrongTableType)
	_, err = e.db.User(e.ctx, ns, "nope")
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = e.db.Shared(e.ctx, "nope", sharedTable)
	assert.ErrorIs(t, err, core.ErrNamespaceNotFound)
	_, err = e.db.Stream(e.ctx, ns, "nope")
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = e.db.RowStore(e.ctx, ns, streamTable, "alice")
	assert.ErrorIs(t, err, core.ErrWrongTableType)
	_, err = e.db.RowStore(e.ctx, ns, "nope", "alice")
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = e.db.RowStore(e.ctx, "nope", userTable, "alice")
	assert.ErrorIs(t, err, core.ErrNamespaceNotFound)
	assert.Same(t, e.db.Catalog().Backend(), e.db.Backend())

	require.NoError(t, e.db.Close())
	_, err = e.db.User(e.ctx, ns, userTable)
	assert.ErrorIs(t, err, store.ErrClosed)
	_, err = e.db.Stream(e.ctx, ns, streamTable)
	assert.ErrorIs(t, err, store.ErrClosed)
	_, err = e.db.RowStore(e.ctx, ns, sharedTable, "")
	assert.ErrorIs(t, err, store.ErrClosed)
	require.NoError(t, e.db.Close(), "Close is idempotent")
}

// testRowStore checks DB.RowStore: a user table's store is bound to its
// user, a shared table's to nobody, and both are the typed stores' tables.
func testRowStore(t *testing.T, e *env) {
	alice, err := e.db.RowStore(e.ctx, ns, userTable, "alice")
	require.NoError(t, err)
	bob, err := e.db.RowStore(e.ctx, ns, userTable, "bob")
	require.NoError(t, err)
	assert.Equal(t, "alice", alice.User())
	assert.Equal(t, userTable, alice.Table().Name)
	_, err = alice.Insert(e.ctx, sample(1), sample(2))
	require.NoError(t, err)
	_, err = bob.Insert(e.ctx, sample(2))
	require.NoError(t, err, "bob's key 2 is not alice's")
	_, err = bob.Get(e.ctx, row.Int64(1))
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	n, err := bob.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	_, err = alice.Update(e.ctx, row.Int64(2), map[string]row.Value{"body": row.String("changed")})
	require.NoError(t, err)
	require.NoError(t, alice.Delete(e.ctx, row.Int64(1)))
	page, err := alice.Scan(e.ctx, tables.ScanOptions{})
	require.NoError(t, err)
	require.Len(t, page.Rows, 1)
	assert.Equal(t, "changed", page.Rows[0].Values[colBody].Str())
	r, err := e.user().Get(e.ctx, "alice", row.Int64(2))
	require.NoError(t, err, "the typed store reaches the same rows")
	assert.Equal(t, "changed", r.Values[colBody].Str())
	r, err = e.user().Get(e.ctx, "bob", row.Int64(2))
	require.NoError(t, err)
	assert.Equal(t, "body 2", r.Values[colBody].Str())
	empty, err := e.db.RowStore(e.ctx, ns, userTable, "")
	require.NoError(t, err, "the user id is checked by each call, as the typed store's")
	_, err = empty.Get(e.ctx, row.Int64(2))
	assert.ErrorIs(t, err, core.ErrInvalidArgument)

	// A shared table has no users: every caller reaches every row.
	sa, err := e.db.RowStore(e.ctx, ns, sharedTable, "alice")
	require.NoError(t, err)
	sb, err := e.db.RowStore(e.ctx, ns, sharedTable, "bob")
	require.NoError(t, err)
	assert.Empty(t, sa.User())
	_, err = sa.Insert(e.ctx, sample(7))
	require.NoError(t, err)
	_, err = sb.Insert(e.ctx, sample(7))
	assert.ErrorIs(t, err, core.ErrDuplicateKey)
	r, err = sb.Get(e.ctx, row.Int64(7))
	require.NoError(t, err)
	assertValues(t, sample(7), r.Values)
	n, err = e.shared().Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// testRowStoreOfARecreatedTable checks that a RowStore stays on the table
// it was opened on: once the table is dropped and re-created under the
// same name with other columns, every call fails with ErrTableNotFound and
// nothing reaches the new table, which a new RowStore reaches.
func testRowStoreOfARecreatedTable(t *testing.T, e *env) {
	old, err := e.db.RowStore(e.ctx, ns, userTable, "alice")
	require.NoError(t, err)
	_, err = old.Insert(e.ctx, sample(1))
	require.NoError(t, err)
	oldDef := old.Table()
	require.NoError(t, e.db.Catalog().DropTable(e.ctx, ns, userTable))
	_, err = e.db.Catalog().CreateTable(e.ctx, catalog.Table{Namespace: ns, Name: userTable, Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "small", Type: row.TypeInt32}, {Name: "body", Type: row.TypeString, Nullable: true}}})
	require.NoError(t, err)

	assert.Same(t, oldDef, old.Table(), "the old store keeps its definition")
	_, err = old.Insert(e.ctx, sample(2))
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = old.Get(e.ctx, row.Int64(1))
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = old.Update(e.ctx, row.Int64(1), map[string]row.Value{"body": row.String("x")})
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	assert.ErrorIs(t, old.Delete(e.ctx, row.Int64(1)), core.ErrTableNotFound)
	_, err = old.Scan(e.ctx, tables.ScanOptions{})
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = old.Count(e.ctx)
	assert.ErrorIs(t, err, core.ErrTableNotFound)

	fresh, err := e.db.RowStore(e.ctx, ns, userTable, "alice")
	require.NoError(t, err)
	assert.NotEqual(t, oldDef.ID, fresh.Table().ID)
	assert.Equal(t, "small", fresh.Table().Columns[1].Name)
	n, err := fresh.Count(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing of the old table, nothing the old store wrote")
	_, err = fresh.Insert(e.ctx, []row.Value{row.Int64(1), row.Int32(5), row.String("new")})
	require.NoError(t, err)
	r, err := fresh.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	assert.Equal(t, int32(5), r.Values[1].Int32())
}

func testDroppedTable(t *testing.T, e *env) {
	old := e.user()
	_, err := old.Insert(e.ctx, "alice", sample(1))
	require.NoError(t, err)
	require.NoError(t, e.db.Catalog().DropTable(e.ctx, ns, userTable))

	_, err = old.Insert(e.ctx, "alice", sample(2))
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = old.Get(e.ctx, "alice", row.Int64(1))
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = old.Scan(e.ctx, "alice", tables.ScanOptions{})
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = old.Count(e.ctx, "alice")
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = e.db.User(e.ctx, ns, userTable)
	assert.ErrorIs(t, err, core.ErrTableNotFound)

	// Re-created under the same name: a new, empty table; the old handle
	// still cannot reach it.
	_, err = e.db.Catalog().CreateTable(e.ctx, catalog.Table{Namespace: ns, Name: userTable, Type: catalog.UserTable, PrimaryKey: "id", Columns: columns()})
	require.NoError(t, err)
	fresh := e.user()
	n, err := fresh.Count(e.ctx, "alice")
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = old.Insert(e.ctx, "alice", sample(3))
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = fresh.Insert(e.ctx, "alice", sample(1))
	require.NoError(t, err, "no duplicate: the old row went with the old table")
}

// userIDs are ids that a naive "user:" prefix or a 0x00 separator would
// confuse with one another.
var userIDs = []string{"a", "a\x00", "a\x00b", "a\x00\x01", "a:b", "a:", "b", "\x00", "\xff", ":", "ü", "a\xff", strings.Repeat("u", catalog.MaxUserIDLen)}

func testUserIsolation(t *testing.T, e *env) {
	s := e.user()
	for ui, u := range userIDs {
		for id := int64(1); id <= 3; id++ {
			vals := sample(id)
			vals[colBlob] = row.Bytes([]byte(u))
			vals[colSmall] = row.Int32(int32(ui))
			_, err := s.Insert(e.ctx, u, vals)
			require.NoError(t, err, "user %q", u)
		}
	}
	for ui, u := range userIDs {
		page, err := s.Scan(e.ctx, u, tables.ScanOptions{})
		require.NoError(t, err)
		require.Equal(t, []int64{1, 2, 3}, ids(page.Rows), "user %q sees exactly their rows", u)
		for _, r := range page.Rows {
			assert.Equal(t, u, string(r.Values[colBlob].Bytes()), "user %q got another user's row", u)
		}
		n, err := s.Count(e.ctx, u)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n, "count of %q", u)
		r, err := s.Get(e.ctx, u, row.Int64(2))
		require.NoError(t, err)
		assert.Equal(t, int32(ui), r.Values[colSmall].Int32())
	}

	// Changes by one user never touch another's rows.
	require.NoError(t, s.Delete(e.ctx, "a", row.Int64(1)))
	_, err := s.Update(e.ctx, "a\x00", row.Int64(2), map[string]row.Value{"blob": row.Bytes([]byte("changed"))})
	require.NoError(t, err)
	for _, u := range userIDs {
		n, err := s.Count(e.ctx, u)
		require.NoError(t, err)
		if u == "a" {
			assert.Equal(t, int64(2), n)
			continue
		}
		assert.Equal(t, int64(3), n, "user %q", u)
		r, err := s.Get(e.ctx, u, row.Int64(2))
		require.NoError(t, err)
		want := u
		if u == "a\x00" {
			want = "changed"
		}
		assert.Equal(t, want, string(r.Values[colBlob].Bytes()), "user %q", u)
	}
	_, err = s.Get(e.ctx, "nobody", row.Int64(1))
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	assert.ErrorIs(t, s.Delete(e.ctx, "nobody", row.Int64(1)), core.ErrRowNotFound)

	for _, bad := range []string{"", strings.Repeat("u", catalog.MaxUserIDLen+1)} {
		_, err := s.Insert(e.ctx, bad, sample(1))
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		_, err = s.Get(e.ctx, bad, row.Int64(1))
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		_, err = s.Scan(e.ctx, bad, tables.ScanOptions{})
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		_, err = s.Count(e.ctx, bad)
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		_, err = s.Update(e.ctx, bad, row.Int64(1), map[string]row.Value{"body": row.Null()})
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		assert.ErrorIs(t, s.Delete(e.ctx, bad, row.Int64(1)), core.ErrInvalidArgument)
	}
}

func testStringKeys(t *testing.T, e *env) {
	s, err := e.db.User(e.ctx, ns, docsTable)
	require.NoError(t, err)
	names := []string{"\x00", "\x00\x00", "a", "a\x00", "a\x00b", "a:", "a:b", "ab", "b", strings.Repeat("k", catalog.MaxKeyLen), "ü"}
	for i, name := range slices.Backward(names) {
		_, err := s.Insert(e.ctx, "u:1", []row.Value{row.String(name), row.Int64(int64(i))})
		require.NoError(t, err, "%q", name)
	}
	page, err := s.Scan(e.ctx, "u:1", tables.ScanOptions{})
	require.NoError(t, err)
	var got []string
	for _, r := range page.Rows {
		got = append(got, r.Values[0].Str())
	}
	assert.Equal(t, names, got, "string keys in byte order")
	for _, name := range names {
		r, err := s.Get(e.ctx, "u:1", row.String(name))
		require.NoError(t, err)
		assert.Equal(t, name, r.Values[0].Str())
	}
	_, err = s.Insert(e.ctx, "u:1", []row.Value{row.String("a\x00"), row.Int64(0)})
	assert.ErrorIs(t, err, core.ErrDuplicateKey)
	_, err = s.Insert(e.ctx, "u", []row.Value{row.String(":1a"), row.Int64(0)})
	require.NoError(t, err, `user "u" with key ":1a" is not user "u:1" with key "a"`)
	n, err := s.Count(e.ctx, "u:1")
	require.NoError(t, err)
	assert.Equal(t, int64(len(names)), n)
	_, err = s.Insert(e.ctx, "u:1", []row.Value{row.String(strings.Repeat("k", catalog.MaxKeyLen+1)), row.Int64(0)})
	requireColumnError(t, err, core.ErrInvalidRow, "name")
	// An empty key could be stored but never named in a URL: it is refused.
	_, err = s.Insert(e.ctx, "u:1", []row.Value{row.String(""), row.Int64(0)})
	requireColumnError(t, err, core.ErrInvalidRow, "name")
	assert.ErrorContains(t, err, "is the primary key and the value is empty")
	_, err = s.Get(e.ctx, "u:1", row.String(""))
	requireColumnError(t, err, core.ErrInvalidRow, "name")

	// The longest user id and the longest key, of the bytes the encoding
	// doubles, still make a key the storage contract accepts
	// (store.MaxKeySize): every backend can hold every row.
	longUser, longKey := strings.Repeat("\x00", catalog.MaxUserIDLen), strings.Repeat("\x00", catalog.MaxKeyLen)
	_, err = s.Insert(e.ctx, longUser, []row.Value{row.String(longKey), row.Int64(1)})
	require.NoError(t, err)
	r, err := s.Get(e.ctx, longUser, row.String(longKey))
	require.NoError(t, err)
	assert.Equal(t, longKey, r.Values[0].Str())
	_, err = s.Update(e.ctx, longUser, row.String(longKey), map[string]row.Value{"n": row.Int64(2)})
	require.NoError(t, err)
	require.NoError(t, s.Delete(e.ctx, longUser, row.String(longKey)))

	page, err = s.Scan(e.ctx, "u:1", tables.ScanOptions{After: row.String("a"), Limit: 2})
	require.NoError(t, err)
	require.Len(t, page.Rows, 2)
	assert.Equal(t, "a\x00", page.Rows[0].Values[0].Str())
	assert.Equal(t, "a\x00b", page.Next.Str())
}

func testBufferUsers(t *testing.T, e *env) {
	s := e.user()
	for _, u := range userIDs {
		_, err := s.Insert(e.ctx, u, sample(1), sample(2))
		require.NoError(t, err)
	}
	got, err := s.Buffer().Users(e.ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, userIDs, got)
	assert.Len(t, got, len(userIDs))
	_, err = e.shared().Buffer().Users(e.ctx)
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	_, err = e.shared().Buffer().Prefix("someone")
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.Equal(t, e.user().Table().Partition(), s.Buffer().Partition())

	u, pk, err := s.Buffer().DecodeKey(key(t, userView{s: s, u: "a\x00b"}, 7))
	require.NoError(t, err)
	assert.Equal(t, "a\x00b", u)
	assert.True(t, pk.Equal(row.Int64(7)))
	_, _, err = s.Buffer().DecodeKey([]byte("garbage"))
	assert.ErrorIs(t, err, core.ErrCorrupt)
}

func testSeqRestart(t *testing.T, e *env) {
	s := e.user()
	var maxSeq int64
	for i := range 40 { // more than one reservation block
		seq, err := s.Insert(e.ctx, "alice", sample(int64(i)))
		require.NoError(t, err)
		require.Greater(t, seq, maxSeq)
		maxSeq = seq
	}
	sh, err := e.shared().Insert(e.ctx, sample(1))
	require.NoError(t, err)
	e.restart()
	s = e.user()
	seq, err := s.Insert(e.ctx, "bob", sample(1))
	require.NoError(t, err)
	assert.Greater(t, seq, maxSeq, "_seq keeps increasing after a restart")
	r, err := s.Update(e.ctx, "alice", row.Int64(3), map[string]row.Value{"body": row.String("after")})
	require.NoError(t, err)
	assert.Greater(t, r.Seq, seq)
	n, err := s.Count(e.ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, int64(40), n)
	sh2, err := e.shared().Insert(e.ctx, sample(2))
	require.NoError(t, err)
	assert.Greater(t, sh2, sh, "each table has its own increasing _seq")
}
