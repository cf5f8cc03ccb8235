package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, b store.StorageBackend) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(context.Background(), b, catalog.Options{Clock: clock.NewFake(t0)})
	require.NoError(t, err)
	return c
}

func newBackend(t *testing.T) store.StorageBackend {
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func messages() catalog.Table {
	return catalog.Table{
		Namespace: "app", Name: "messages", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{
			{Name: "id", Type: row.TypeInt64},
			{Name: "body", Type: row.TypeString, Nullable: true},
			{Name: "sent", Type: row.TypeTimestamp},
		},
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", 51)
	cases := []struct {
		name   string
		edit   func(*catalog.Table)
		want   string
		column string
	}{
		{"empty namespace", func(t *catalog.Table) { t.Namespace = "" }, `namespace name "" is empty`, ""},
		{"upper namespace", func(t *catalog.Table) { t.Namespace = "App" }, "must start with a lowercase letter", ""},
		{"bad table byte", func(t *catalog.Table) { t.Name = "a-b" }, `table name "a-b" has '-' (U+002D) at byte offset 1`, ""},
		{"accented table name", func(t *catalog.Table) { t.Name = "héllo" }, `table name "héllo" has 'é' (U+00E9) at byte offset 1`, ""},
		{"accented first letter", func(t *catalog.Table) { t.Name = "élan" }, `must start with a lowercase letter (a-z), not 'é' (U+00E9)`, ""},
		{"control character", func(t *catalog.Table) { t.Name = "a\tb" }, `has U+0009 at byte offset 1`, ""},
		{"not UTF-8", func(t *catalog.Table) { t.Name = "a\xffb" }, `has the byte 0xff (not UTF-8) at byte offset 1`, ""},
		{"long table", func(t *catalog.Table) { t.Name = long }, "is 51 bytes, the limit is 50", ""},
		{"huge table name", func(t *catalog.Table) { t.Name = strings.Repeat("a", 100_000) }, `table name "` + strings.Repeat("a", 64) + `"… is 100000 bytes`, ""},
		{"huge column name", func(t *catalog.Table) { t.Columns[1].Name = strings.Repeat("b", 100_000) }, "is 100000 bytes, the limit is 64", strings.Repeat("b", 64) + "…"},
		{"no type", func(t *catalog.Table) { t.Type = "" }, "has no type", ""},
		{"bad type", func(t *catalog.Table) { t.Type = "view" }, `has type "view"`, ""},
		{"no columns", func(t *catalog.Table) { t.Columns = nil }, "has no columns", ""},
		{"too many columns", func(t *catalog.Table) { t.Columns = make([]catalog.Column, catalog.MaxColumns+1) }, "the limit is 1024", ""},
		{"unnamed column", func(t *catalog.Table) { t.Columns[1].Name = "" }, "column 1 of app.messages has no name", ""},
		{"reserved column", func(t *catalog.Table) { t.Columns[1].Name = "_seq" }, "reserved for system columns", "_seq"},
		{"bad column name", func(t *catalog.Table) { t.Columns[1].Name = "Body" }, "must start with a lowercase letter", "Body"},
		{"duplicate column", func(t *catalog.Table) { t.Columns[2].Name = "body" }, "is defined twice", "body"},
		{"invalid column type", func(t *catalog.Table) { t.Columns[2].Type = 0 }, "has no valid type", "sent"},
		{"no primary key", func(t *catalog.Table) { t.PrimaryKey = "" }, "user table app.messages has no primary key", ""},
		{"unknown primary key", func(t *catalog.Table) { t.PrimaryKey = "nope" }, "is not one of its columns", "nope"},
		{"nullable primary key", func(t *catalog.Table) { t.Columns[0].Nullable = true }, "cannot be nullable", "id"},
		{"float primary key", func(t *catalog.Table) { t.Columns[0].Type = row.TypeFloat64 }, "has type float64", "id"},
		{"negative flush", func(t *catalog.Table) { t.Flush.RowLimit = -1 }, "negative flush policy", ""},
		{"stream options on user", func(t *catalog.Table) { t.Stream.TTL = time.Second }, "cannot have stream options", ""},
		{"stream with pk", func(t *catalog.Table) { t.Type = catalog.StreamTable }, "cannot have a primary key", "id"},
		{"stream with flush", func(t *catalog.Table) {
			t.Type, t.PrimaryKey, t.Flush.RowLimit = catalog.StreamTable, "", 5
		}, "streams are never flushed", ""},
		{"stream without ttl", func(t *catalog.Table) {
			t.Type, t.PrimaryKey, t.Stream.MaxBuffer = catalog.StreamTable, "", 5
		}, "needs a positive TTL", ""},
		{"stream without buffer", func(t *catalog.Table) {
			t.Type, t.PrimaryKey, t.Stream.TTL = catalog.StreamTable, "", time.Minute
		}, "needs a positive maximum buffer", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def := messages()
			c.edit(&def)
			err := def.Validate()
			require.ErrorIs(t, err, core.ErrInvalidSchema)
			assert.ErrorContains(t, err, c.want)
			var ce *core.ColumnError
			if c.column != "" {
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, c.column, ce.Column)
			} else {
				assert.False(t, errors.As(err, &ce), "not a column error: %v", err)
			}
		})
	}
	def := messages()
	require.NoError(t, def.Validate())
	assert.Equal(t, catalog.DefaultFlushPolicy, def.Flush, "default flush policy")
	def = messages()
	def.Flush = catalog.FlushPolicy{Interval: time.Minute}
	require.NoError(t, def.Validate())
	assert.Equal(t, catalog.FlushPolicy{Interval: time.Minute}, def.Flush)
	stream := catalog.Table{Namespace: "app", Name: "events", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "kind", Type: row.TypeString}},
		Stream:  catalog.StreamOptions{TTL: time.Hour, MaxBuffer: 10}}
	require.NoError(t, stream.Validate())
}

func TestNamespaces(t *testing.T) {
	ctx := context.Background()
	c := open(t, newBackend(t))
	ns, err := c.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	assert.Equal(t, "app", ns.Name)
	assert.Equal(t, t0, ns.CreatedAt)
	_, err = c.CreateNamespace(ctx, "app")
	assert.ErrorIs(t, err, core.ErrNamespaceExists)
	_, err = c.CreateNamespace(ctx, "Bad")
	assert.ErrorIs(t, err, core.ErrInvalidSchema)
	_, err = c.CreateNamespace(ctx, "alpha")
	require.NoError(t, err)
	names := []string{}
	for _, n := range c.Namespaces() {
		names = append(names, n.Name)
	}
	assert.Equal(t, []string{"alpha", "app"}, names)
	_, err = c.Namespace("nope")
	assert.ErrorIs(t, err, core.ErrNamespaceNotFound)

	_, err = c.CreateTable(ctx, messages())
	require.NoError(t, err)
	assert.ErrorIs(t, c.DropNamespace(ctx, "app"), core.ErrNamespaceNotEmpty)
	assert.ErrorIs(t, c.DropNamespace(ctx, "nope"), core.ErrNamespaceNotFound)
	require.NoError(t, c.DropTable(ctx, "app", "messages"))
	require.NoError(t, c.DropNamespace(ctx, "app"))
	_, err = c.Namespace("app")
	assert.ErrorIs(t, err, core.ErrNamespaceNotFound)
}

func TestTablesPersistAcrossReopen(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	c := open(t, b)
	_, err := c.CreateTable(ctx, messages())
	assert.ErrorIs(t, err, core.ErrNamespaceNotFound, "namespace first")
	_, err = c.CreateNamespace(ctx, "app")
	require.NoError(t, err)

	def := messages()
	tbl, err := c.CreateTable(ctx, def)
	require.NoError(t, err)
	assert.Equal(t, messages(), def, "the definition passed in is not modified")
	assert.Equal(t, uint64(1), tbl.ID)
	assert.Equal(t, t0, tbl.CreatedAt)
	assert.Equal(t, "t:app.messages.1", tbl.Partition().Name())
	ok, err := b.PartitionExists(ctx, tbl.Partition())
	require.NoError(t, err)
	assert.True(t, ok)
	_, err = c.CreateTable(ctx, messages())
	assert.ErrorIs(t, err, core.ErrTableExists)

	shared := catalog.Table{Namespace: "app", Name: "config", Type: catalog.SharedTable, PrimaryKey: "key",
		Columns: []catalog.Column{{Name: "key", Type: row.TypeString}, {Name: "value", Type: row.TypeBytes, Nullable: true}},
		Flush:   catalog.FlushPolicy{RowLimit: 5, Interval: time.Second}}
	_, err = c.CreateTable(ctx, shared)
	require.NoError(t, err)
	stream := catalog.Table{Namespace: "app", Name: "events", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "kind", Type: row.TypeString}},
		Stream:  catalog.StreamOptions{TTL: time.Hour, MaxBuffer: 100}}
	_, err = c.CreateTable(ctx, stream)
	require.NoError(t, err)

	c2 := open(t, b)
	got, err := c2.Table("app", "messages")
	require.NoError(t, err)
	assert.Equal(t, tbl.ID, got.ID)
	assert.Equal(t, tbl.Columns, got.Columns)
	assert.Equal(t, catalog.DefaultFlushPolicy, got.Flush)
	assert.Equal(t, tbl.Partition(), got.Partition())
	assert.Equal(t, []row.Type{row.TypeInt64, row.TypeString, row.TypeTimestamp}, got.Types())
	assert.Equal(t, 0, got.PrimaryKeyIndex())
	i, ok := got.ColumnIndex("sent")
	assert.True(t, ok)
	assert.Equal(t, 2, i)
	cfg, err := c2.Table("app", "config")
	require.NoError(t, err)
	assert.Equal(t, shared.Flush, cfg.Flush)
	ev, err := c2.Table("app", "events")
	require.NoError(t, err)
	assert.Equal(t, stream.Stream, ev.Stream)
	assert.Equal(t, -1, ev.PrimaryKeyIndex())

	all, err := c2.Tables("")
	require.NoError(t, err)
	var names []string
	for _, t := range all {
		names = append(names, t.FullName())
	}
	assert.Equal(t, []string{"app.config", "app.events", "app.messages"}, names)
	_, err = c2.Tables("nope")
	assert.ErrorIs(t, err, core.ErrNamespaceNotFound)
	_, err = c2.Table("app", "nope")
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = c2.Table("nope", "messages")
	assert.ErrorIs(t, err, core.ErrNamespaceNotFound)

	// Ids keep increasing after a reopen, and a re-created table gets a new
	// id and a new, empty partition. The drop removes the record of the
	// table's lease, which a finished stream eviction leaves.
	leaseKey := []byte(lease.TableName(tbl.ID))
	require.NoError(t, b.Put(ctx, layout.Leases, leaseKey, []byte(`{"owner":"x"}`)))
	require.NoError(t, c2.DropTable(ctx, "app", "messages"))
	ok, err = b.PartitionExists(ctx, tbl.Partition())
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = b.Get(ctx, layout.Leases, leaseKey)
	assert.ErrorIs(t, err, store.ErrNotFound, "the table's lease record is gone")
	again, err := c2.CreateTable(ctx, messages())
	require.NoError(t, err)
	assert.Equal(t, uint64(4), again.ID)
	assert.ErrorIs(t, c2.DropTable(ctx, "app", "nope"), core.ErrTableNotFound)
}

func TestOpenSweepsLeftovers(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	c := open(t, b)
	_, err := c.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	tbl, err := c.CreateTable(ctx, messages())
	require.NoError(t, err)
	require.NoError(t, b.Put(ctx, layout.Sequences, layout.SequenceKey(tbl.ID), []byte{1}))

	// Leftovers of an interrupted drop and of an interrupted create.
	orphan := store.MustPartition("t:app.gone.77")
	require.NoError(t, b.CreatePartition(ctx, orphan))
	require.NoError(t, b.Put(ctx, layout.Sequences, layout.SequenceKey(77), []byte{1}))
	next, err := layout.TablePartition(2, "app", "later")
	require.NoError(t, err)
	require.NoError(t, b.CreatePartition(ctx, next))
	require.NoError(t, b.Put(ctx, next, []byte("stale"), []byte("row")))
	other := store.MustPartition("someone.elses")
	require.NoError(t, b.CreatePartition(ctx, other))

	c = open(t, b)
	for p, want := range map[store.Partition]bool{orphan: false, next: false, tbl.Partition(): true, other: true} {
		ok, err := b.PartitionExists(ctx, p)
		require.NoError(t, err)
		assert.Equal(t, want, ok, p.Name())
	}
	_, err = b.Get(ctx, layout.Sequences, layout.SequenceKey(77))
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.Get(ctx, layout.Sequences, layout.SequenceKey(tbl.ID))
	assert.NoError(t, err, "a live table's sequence stays")

	// A partition left by a create that failed before it was recorded is
	// emptied when its id is used.
	require.NoError(t, b.CreatePartition(ctx, next))
	require.NoError(t, b.Put(ctx, next, []byte("stale"), []byte("row")))
	def := messages()
	def.Name = "later"
	later, err := c.CreateTable(ctx, def)
	require.NoError(t, err)
	require.Equal(t, next, later.Partition())
	_, err = b.Get(ctx, next, []byte("stale"))
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func TestCorruptCatalog(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	c := open(t, b)
	_, err := c.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	_, err = c.CreateTable(ctx, messages())
	require.NoError(t, err)

	require.NoError(t, b.Put(ctx, layout.Catalog, layout.TableKey("app", "messages"), []byte("{")))
	_, err = catalog.Open(ctx, b, catalog.Options{})
	assert.ErrorIs(t, err, core.ErrCorrupt)

	require.NoError(t, b.Put(ctx, layout.Catalog, layout.TableKey("app", "messages"), []byte(`{"format":1,"namespace":"app","name":"messages","type":"user","columns":[]}`)))
	_, err = catalog.Open(ctx, b, catalog.Options{})
	assert.ErrorIs(t, err, core.ErrCorrupt)
	assert.ErrorContains(t, err, "has no columns")

	require.NoError(t, b.Delete(ctx, layout.Catalog, layout.TableKey("app", "messages")))
	require.NoError(t, b.Put(ctx, layout.Catalog, layout.NextTableIDKey(), []byte{1}))
	_, err = catalog.Open(ctx, b, catalog.Options{})
	assert.ErrorIs(t, err, core.ErrCorrupt)
}

func prepared(t *testing.T, def catalog.Table) *catalog.Table {
	t.Helper()
	c := open(t, newBackend(t))
	_, err := c.CreateNamespace(context.Background(), def.Namespace)
	require.NoError(t, err)
	tbl, err := c.CreateTable(context.Background(), def)
	require.NoError(t, err)
	return tbl
}

func TestRowHelpers(t *testing.T) {
	tbl := prepared(t, messages())
	sent := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	vals, err := tbl.ValuesFromMap(map[string]any{"id": float64(7), "sent": "2025-01-01T00:00:00Z"})
	require.NoError(t, err)
	assert.Equal(t, []row.Value{row.Int64(7), row.Null(), row.Timestamp(sent)}, vals)

	for _, c := range []struct {
		in     map[string]any
		column string
		want   string
	}{
		{map[string]any{"id": 1, "sent": sent, "nope": 1}, "nope", "is not a column of app.messages"},
		{map[string]any{"id": 1, "sent": sent, "_seq": 1}, "_seq", "system column"},
		{map[string]any{"id": "x", "sent": sent}, "id", "must be an integer from"},
		{map[string]any{"id": 1}, "sent", "is not nullable and the value is null"},
		{map[string]any{"id": 1, "sent": sent, "body": "\xff"}, "body", "is not valid UTF-8"},
	} {
		_, err := tbl.ValuesFromMap(c.in)
		var ce *core.ColumnError
		require.ErrorAs(t, err, &ce, "%v", c.in)
		assert.ErrorIs(t, err, core.ErrInvalidRow)
		assert.Equal(t, c.column, ce.Column)
		assert.ErrorContains(t, err, c.want)
	}

	assert.NoError(t, tbl.ValidateValues(vals))
	err = tbl.ValidateValues(vals[:2])
	assert.ErrorIs(t, err, core.ErrInvalidRow)
	assert.ErrorContains(t, err, "has 3 columns, the row has 2 values")
	err = tbl.ValidateValues([]row.Value{row.Int64(1), row.Int64(2), row.Timestamp(sent)})
	assert.ErrorContains(t, err, `column "body": has type string, the value is int64`)

	patched, err := tbl.Patch(vals, map[string]row.Value{"body": row.String("hi")})
	require.NoError(t, err)
	assert.Equal(t, row.String("hi"), patched[1])
	assert.True(t, vals[1].IsNull(), "Patch works on a copy")
	_, err = tbl.Patch(vals, nil)
	assert.ErrorContains(t, err, "sets no column")
	_, err = tbl.Patch(vals, map[string]row.Value{"id": row.Int64(2)})
	assert.ErrorContains(t, err, "is the primary key and cannot be updated")
	_, err = tbl.Patch(vals, map[string]row.Value{"sent": row.Null()})
	assert.ErrorContains(t, err, "is not nullable")
	_, err = tbl.Patch(vals, map[string]row.Value{"zzz": row.Null()})
	assert.ErrorContains(t, err, "is not a column")

	set, err := tbl.PatchFromMap(map[string]any{"body": "x"})
	require.NoError(t, err)
	assert.Equal(t, map[string]row.Value{"body": row.String("x")}, set)
	_, err = tbl.PatchFromMap(map[string]any{"sent": false})
	assert.ErrorContains(t, err, `column "sent"`)
	_, err = tbl.PatchFromMap(map[string]any{"zzz": false})
	assert.ErrorContains(t, err, `column "zzz"`)

	m := tbl.Map(row.Row{Seq: 9, Updated: 1, Deleted: true, Values: vals})
	assert.Equal(t, map[string]any{"id": int64(7), "body": nil, "sent": sent, "_seq": int64(9),
		"_updated": time.UnixMicro(1).UTC(), "_deleted": true}, m)

	assert.NoError(t, catalog.ValidateUserID("a\x00:b"))
	assert.ErrorIs(t, catalog.ValidateUserID(""), core.ErrInvalidArgument)
	assert.ErrorIs(t, catalog.ValidateUserID(strings.Repeat("u", catalog.MaxUserIDLen+1)), core.ErrInvalidArgument)
}

func TestPrimaryKeyEncoding(t *testing.T) {
	ordered := map[row.Type][]row.Value{
		row.TypeInt32:     {row.Int32(math.MinInt32), row.Int32(-1), row.Int32(0), row.Int32(math.MaxInt32)},
		row.TypeInt64:     {row.Int64(math.MinInt64), row.Int64(-1), row.Int64(0), row.Int64(1), row.Int64(math.MaxInt64)},
		row.TypeTimestamp: {row.TimestampMicros(-5), row.TimestampMicros(0), row.TimestampMicros(5)},
		row.TypeString:    {row.String("\x00"), row.String("a"), row.String("a\x00"), row.String("a:b"), row.String("b")},
		row.TypeBytes:     {row.Bytes([]byte{0}), row.Bytes([]byte{0, 0}), row.Bytes([]byte{1}), row.Bytes([]byte{0xFF})},
	}
	for typ, vals := range ordered {
		def := catalog.Table{Namespace: "app", Name: "t", Type: catalog.SharedTable, PrimaryKey: "k",
			Columns: []catalog.Column{{Name: "k", Type: typ}}}
		tbl := prepared(t, def)
		var prev []byte
		for i, v := range vals {
			k, err := tbl.AppendKey(nil, v)
			require.NoError(t, err)
			if i > 0 {
				assert.Negative(t, bytes.Compare(prev, k), "%s: %v after previous", typ, v)
			}
			prev = k
			back, rest, err := tbl.DecodeKey(append(k, 'x'))
			require.NoError(t, err)
			assert.True(t, v.Equal(back), "%s: %v round-trips to %v", typ, v, back)
			assert.Equal(t, []byte("x"), rest)
		}
		_, err := tbl.AppendKey(nil, row.Null())
		assert.ErrorIs(t, err, core.ErrInvalidRow)
		_, err = tbl.AppendKey(nil, row.Bool(true))
		assert.ErrorIs(t, err, core.ErrInvalidRow)
	}
	tbl := prepared(t, catalog.Table{Namespace: "app", Name: "t", Type: catalog.SharedTable, PrimaryKey: "k",
		Columns: []catalog.Column{{Name: "k", Type: row.TypeString}}})
	_, err := tbl.AppendKey(nil, row.String(strings.Repeat("k", catalog.MaxKeyLen+1)))
	assert.ErrorContains(t, err, "the limit is 1024")
	for _, v := range []row.Value{row.String(""), row.Bytes(nil)} {
		empty := prepared(t, catalog.Table{Namespace: "app", Name: "t", Type: catalog.SharedTable, PrimaryKey: "k",
			Columns: []catalog.Column{{Name: "k", Type: v.Type()}}})
		_, err = empty.AppendKey(nil, v)
		assert.ErrorContains(t, err, `column "k": is the primary key and the value is empty`, "%s", v.Type())
	}
	_, _, err = tbl.DecodeKey([]byte("unterminated"))
	assert.ErrorIs(t, err, core.ErrCorrupt)

	stream := prepared(t, catalog.Table{Namespace: "app", Name: "s", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "k", Type: row.TypeString}}, Stream: catalog.StreamOptions{TTL: 1, MaxBuffer: 1}})
	_, err = stream.AppendKey(nil, row.String("x"))
	assert.ErrorIs(t, err, core.ErrWrongTableType)
	assert.Equal(t, catalog.Column{}, stream.PrimaryKeyColumn())
}

// TestAddColumn: a nullable column is appended, stored and found again after
// a reopen; the old definition stays as it was; bad columns are refused
// naming the column, and nothing is stored for them.
func TestAddColumn(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	c := open(t, b)
	_, err := c.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	old, err := c.CreateTable(ctx, messages())
	require.NoError(t, err)

	tbl, err := c.AddColumn(ctx, "app", "messages", catalog.Column{Name: "read", Type: row.TypeBool, Nullable: true})
	require.NoError(t, err)
	assert.Len(t, old.Columns, 3, "the old definition is unchanged")
	require.Len(t, tbl.Columns, 4)
	assert.Equal(t, []row.Type{row.TypeInt64, row.TypeString, row.TypeTimestamp, row.TypeBool}, tbl.Types())
	i, ok := tbl.ColumnIndex("read")
	assert.True(t, ok)
	assert.Equal(t, 3, i)
	assert.Equal(t, old.ID, tbl.ID)
	assert.Equal(t, old.Partition(), tbl.Partition())
	got, err := c.Table("app", "messages")
	require.NoError(t, err)
	assert.Same(t, tbl, got)

	for _, tc := range []struct {
		col  catalog.Column
		name string
		want error
		msg  string
	}{
		{catalog.Column{Name: "flag", Type: row.TypeBool}, "messages", core.ErrInvalidSchema, "must be nullable"},
		{catalog.Column{Name: "body", Type: row.TypeString, Nullable: true}, "messages", core.ErrInvalidSchema, "defined twice"},
		{catalog.Column{Name: "_x", Type: row.TypeString, Nullable: true}, "messages", core.ErrInvalidSchema, "reserved"},
		{catalog.Column{Name: "z", Nullable: true}, "messages", core.ErrInvalidSchema, "no valid type"},
		{catalog.Column{Name: "z", Type: row.TypeInt64, Nullable: true}, "nope", core.ErrTableNotFound, ""},
	} {
		_, err := c.AddColumn(ctx, "app", tc.name, tc.col)
		require.ErrorIs(t, err, tc.want, tc.col.Name)
		assert.Contains(t, err.Error(), tc.msg)
	}
	_, err = c.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "events", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "kind", Type: row.TypeString}}, Stream: catalog.StreamOptions{TTL: time.Hour, MaxBuffer: 10}})
	require.NoError(t, err)
	_, err = c.AddColumn(ctx, "app", "events", catalog.Column{Name: "z", Type: row.TypeInt64, Nullable: true})
	require.ErrorIs(t, err, core.ErrWrongTableType)

	reopened := open(t, b)
	got, err = reopened.Table("app", "messages")
	require.NoError(t, err)
	assert.Equal(t, tbl.Columns, got.Columns, "the new definition is stored")
}
