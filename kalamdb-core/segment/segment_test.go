package segment_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/parquet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// newTable creates a table with a column of every type in a fresh catalog.
func newTable(t testing.TB, typ catalog.TableType, pk row.Type) *catalog.Table {
	t.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, memory.New(), catalog.Options{})
	require.NoError(t, err)
	_, err = cat.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	tbl, err := cat.CreateTable(ctx, catalog.Table{
		Namespace: "app", Name: "items", Type: typ, PrimaryKey: "id",
		Columns: []catalog.Column{
			{Name: "id", Type: pk},
			{Name: "i32", Type: row.TypeInt32, Nullable: true},
			{Name: "f", Type: row.TypeFloat64, Nullable: true},
			{Name: "b", Type: row.TypeBool, Nullable: true},
			{Name: "s", Type: row.TypeString},
			{Name: "raw", Type: row.TypeBytes, Nullable: true},
			{Name: "ts", Type: row.TypeTimestamp, Nullable: true},
		},
	})
	require.NoError(t, err)
	return tbl
}

func pkValue(typ row.Type, i int) row.Value {
	switch typ {
	case row.TypeInt32:
		return row.Int32(int32(i - 500))
	case row.TypeString:
		return row.String(fmt.Sprintf("k\x00%06d", i))
	case row.TypeBytes:
		return row.Bytes([]byte{0xFF, byte(i >> 8), byte(i), 0})
	case row.TypeTimestamp:
		return row.TimestampMicros(int64(i) * 1000)
	}
	return row.Int64(int64(i)*3 - 1000)
}

type version struct {
	key []byte
	r   row.Row
}

// versions builds n sorted versions of tbl under prefix, every 7th a
// tombstone, with nulls and edge values.
func versions(t testing.TB, tbl *catalog.Table, prefix []byte, n int) []version {
	t.Helper()
	pkType := tbl.PrimaryKeyColumn().Type
	out := make([]version, n)
	for i := range n {
		vals := []row.Value{
			pkValue(pkType, i),
			row.Int32(int32(i) * -7),
			row.Float64(float64(i) / 3),
			row.Bool(i%2 == 0),
			row.String(fmt.Sprintf("name-%d-ü", i)),
			row.Bytes([]byte{byte(i), 0, 0xFF}),
			row.Timestamp(time.Unix(int64(i), 0)),
		}
		switch i % 5 {
		case 1:
			vals[1], vals[2], vals[3], vals[5], vals[6] = row.Null(), row.Null(), row.Null(), row.Null(), row.Null()
		case 2:
			vals[2] = row.Float64(math.Inf(-1))
			vals[4] = row.String("")
			vals[5] = row.Bytes(nil)
		}
		k, err := tbl.AppendKey(append([]byte(nil), prefix...), vals[0])
		require.NoError(t, err)
		out[i] = version{key: k, r: row.Row{Seq: int64(100 + i*2), Updated: int64(1_700_000_000_000_000 + i), Deleted: i%7 == 3, Values: vals}}
	}
	return out
}

func writeSegment(t testing.TB, fsys segment.FS, tbl *catalog.Table, dir string, prefix []byte, vs []version, rg int) (segment.Spec, segment.Stats) {
	t.Helper()
	spec := segment.Spec{Dir: dir, Name: segment.FileName(tbl.ID, 1), Table: tbl, Prefix: prefix,
		Meta:    segment.Meta{TableID: tbl.ID, Namespace: tbl.Namespace, Table: tbl.Name, Segment: 1},
		Options: segment.WriteOptions{RowGroupRows: rg}}
	st, err := segment.Create(context.Background(), segment.FSStore(fsys, "test"), spec, func(w *segment.Writer) error {
		for i := range vs {
			if err := w.Append(vs[i].key, &vs[i].r); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	return spec, st
}

func readAll(t testing.TB, fsys segment.FS, spec segment.Spec) []version {
	t.Helper()
	md, err := segment.ReadFooter(context.Background(), ref(fsys, spec.Path()))
	require.NoError(t, err)
	require.NoError(t, segment.CheckFooter(md, spec.Path(), spec.Meta.TableID, spec.Meta.Segment))
	var out []version
	for i := range md.RowGroups {
		g, err := segment.ReadRowGroup(context.Background(), ref(fsys, spec.Path()), md, spec.Table, spec.Prefix, i)
		require.NoError(t, err)
		lo, hi, ok := segment.KeyRange(md, spec.Table, spec.Prefix, i)
		require.True(t, ok, "row group %d has key statistics", i)
		assert.Equal(t, lo, g.Key(0), "row group %d minimum key", i)
		assert.Equal(t, hi, g.Key(g.Len()-1), "row group %d maximum key", i)
		for j := range g.Len() {
			var r row.Row
			g.Row(j, &r)
			out = append(out, version{key: append([]byte(nil), g.Key(j)...), r: r})
		}
	}
	return out
}

func assertSameVersions(t *testing.T, want, got []version) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].key, got[i].key, "key %d", i)
		w, g := want[i].r, got[i].r
		require.Equal(t, w.Seq, g.Seq, "seq %d", i)
		require.Equal(t, w.Updated, g.Updated, "updated %d", i)
		require.Equal(t, w.Deleted, g.Deleted, "deleted %d", i)
		require.Len(t, g.Values, len(w.Values))
		for j := range w.Values {
			// Bytes(nil) and Bytes([]byte{}) are the same value.
			require.True(t, w.Values[j].Equal(g.Values[j]), "row %d column %d: want %v, got %v", i, j, w.Values[j], g.Values[j])
		}
	}
}

func TestRoundTripEveryPrimaryKeyType(t *testing.T) {
	for _, pk := range []row.Type{row.TypeInt32, row.TypeInt64, row.TypeString, row.TypeBytes, row.TypeTimestamp} {
		t.Run(pk.String(), func(t *testing.T) {
			tbl := newTable(t, catalog.SharedTable, pk)
			fsys := segment.DirFS(t.TempDir())
			vs := versions(t, tbl, nil, 1000)
			spec, st := writeSegment(t, fsys, tbl, segment.TableDir("app", "items"), nil, vs, 300)
			assert.EqualValues(t, 1000, st.Rows)
			assert.EqualValues(t, 4, st.RowGroups, "1000 rows in groups of 300")
			assert.EqualValues(t, 143, st.Tombstones)
			assert.Equal(t, vs[0].key, st.MinKey)
			assert.Equal(t, vs[999].key, st.MaxKey)
			assert.EqualValues(t, 100, st.MinSeq)
			assert.EqualValues(t, 100+999*2, st.MaxSeq)
			assertSameVersions(t, vs, readAll(t, fsys, spec))
		})
	}
}

func TestUserSegmentKeysCarryThePrefix(t *testing.T) {
	tbl := newTable(t, catalog.UserTable, row.TypeInt64)
	fsys := segment.DirFS(t.TempDir())
	prefix := keys.AppendString(nil, "bob")
	dir, err := segment.UserDir("bob")
	require.NoError(t, err)
	vs := versions(t, tbl, prefix, 50)
	spec, _ := writeSegment(t, fsys, tbl, segment.TableDir("app", "items")+"/"+dir, prefix, vs, 0)
	got := readAll(t, fsys, spec)
	assertSameVersions(t, vs, got)
	g, err := segment.ReadRowGroup(context.Background(), ref(fsys, spec.Path()), mustFooter(t, fsys, spec.Path()), tbl, prefix, 0)
	require.NoError(t, err)
	i, found := g.Search(vs[20].key)
	assert.True(t, found)
	assert.Equal(t, 20, i)
	between := append(append([]byte(nil), vs[20].key...), 0)
	i, found = g.Search(between)
	assert.False(t, found)
	assert.Equal(t, 21, i)
	i, found = g.Search(keys.AppendString(nil, "bob\x00"))
	assert.False(t, found)
	assert.Equal(t, g.Len(), i, "a key after every key of the group")
}

func mustFooter(t testing.TB, fsys segment.FS, p string) *metadataFooter {
	t.Helper()
	md, err := segment.ReadFooter(context.Background(), ref(fsys, p))
	require.NoError(t, err)
	return md
}

func TestWriterRejectsBadVersions(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	vs := versions(t, tbl, nil, 3)
	cases := map[string]func() (version, version){
		"keys out of order": func() (version, version) { return vs[1], vs[0] },
		"duplicate key":     func() (version, version) { return vs[0], vs[0] },
		"key does not match the primary key": func() (version, version) {
			v := vs[1]
			v.key = vs[2].key
			return vs[0], v
		},
		"wrong type": func() (version, version) {
			v := vs[1]
			v.r.Values = append([]row.Value(nil), v.r.Values...)
			v.r.Values[4] = row.Int64(1)
			return vs[0], v
		},
		"null in a non-nullable column": func() (version, version) {
			v := vs[1]
			v.r.Values = append([]row.Value(nil), v.r.Values...)
			v.r.Values[4] = row.Null()
			return vs[0], v
		},
		"too few values": func() (version, version) {
			v := vs[1]
			v.r.Values = v.r.Values[:3]
			return vs[0], v
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			fsys := segment.DirFS(root)
			a, b := mk()
			spec := segment.Spec{Dir: "app/items", Name: segment.FileName(tbl.ID, 9), Table: tbl,
				Meta: segment.Meta{TableID: tbl.ID, Segment: 9}}
			_, err := segment.Create(context.Background(), segment.FSStore(fsys, "test"), spec, func(w *segment.Writer) error {
				if err := w.Append(a.key, &a.r); err != nil {
					return err
				}
				return w.Append(b.key, &b.r)
			})
			require.Error(t, err)
			assert.True(t, errorsIsAny(err, core.ErrInvalidArgument, core.ErrInvalidRow), "error %v", err)
			assertNoFiles(t, root)
		})
	}
}

func errorsIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errorsIs(err, target) {
			return true
		}
	}
	return false
}

// assertNoFiles fails if any regular file exists below root.
func assertNoFiles(t *testing.T, root string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			t.Errorf("file left behind: %s", p)
		}
		return nil
	}))
}

func TestCreateWritesNothingForAnEmptySegment(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	root := t.TempDir()
	st, err := segment.Create(context.Background(), segment.FSStore(segment.DirFS(root), "test"), segment.Spec{Dir: "app/items", Name: segment.FileName(tbl.ID, 1), Table: tbl}, func(*segment.Writer) error { return nil })
	require.NoError(t, err)
	assert.Zero(t, st.Rows)
	assertNoFiles(t, root)
}

func TestCreateRejectsBadNames(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	fsys := segment.DirFS(t.TempDir())
	for _, spec := range []segment.Spec{
		{Dir: "app/items", Name: "x.csv", Table: tbl},
		{Dir: "app/items", Name: "a/b.parquet", Table: tbl},
		{Dir: "../escape", Name: "a.parquet", Table: tbl},
		{Dir: "/abs", Name: "a.parquet", Table: tbl},
		{Dir: "app/./items", Name: "a.parquet", Table: tbl},
	} {
		_, err := segment.Create(context.Background(), segment.FSStore(fsys, "test"), spec, func(*segment.Writer) error { return nil })
		assert.ErrorIs(t, err, segment.ErrBadPath, "%s/%s", spec.Dir, spec.Name)
	}
}

func TestStreamTablesHaveNoSegments(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, memory.New(), catalog.Options{})
	require.NoError(t, err)
	_, err = cat.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	st, err := cat.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "ev", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "x", Type: row.TypeInt64}}, Stream: catalog.StreamOptions{TTL: time.Hour, MaxBuffer: 10}})
	require.NoError(t, err)
	_, err = segment.NewWriter(&bytes.Buffer{}, st, nil, segment.Meta{}, segment.WriteOptions{})
	assert.ErrorIs(t, err, core.ErrWrongTableType)
}

func TestCorruptFilesAreErrorsNotPanics(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeString)
	root := t.TempDir()
	fsys := segment.DirFS(root)
	vs := versions(t, tbl, nil, 2000)
	spec, _ := writeSegment(t, fsys, tbl, "app/items", nil, vs, 0)
	p := filepath.Join(root, filepath.FromSlash(spec.Path()))
	orig, err := os.ReadFile(p)
	require.NoError(t, err)

	// Not Parquet at all, and truncated.
	for name, data := range map[string][]byte{"garbage": []byte("not a parquet file at all"), "truncated": orig[:len(orig)/2], "empty": nil} {
		require.NoError(t, os.WriteFile(p, data, 0o644))
		_, err := segment.ReadFooter(context.Background(), ref(fsys, spec.Path()))
		assert.ErrorIs(t, err, core.ErrCorrupt, name)
	}
	// Damaged column data with an intact footer: every flipped byte in the
	// data section is a corrupt error or, when it hits something unchecked
	// (a value, say), a successful read, never a panic.
	md := func() *metadataFooter {
		require.NoError(t, os.WriteFile(p, orig, 0o644))
		return mustFooter(t, fsys, spec.Path())
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	corrupt := 0
	for range 200 {
		data := append([]byte(nil), orig...)
		pos := 4 + rng.IntN(len(orig)/2)
		data[pos] ^= byte(1 + rng.IntN(255))
		require.NoError(t, os.WriteFile(p, data, 0o644))
		_, err := segment.ReadRowGroup(context.Background(), ref(fsys, spec.Path()), md, tbl, nil, 0)
		if err != nil {
			require.ErrorIs(t, err, core.ErrCorrupt)
			corrupt++
		}
	}
	assert.Positive(t, corrupt, "some damage is detected")
}

func TestColumnsAddedLaterReadAsNull(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, memory.New(), catalog.Options{})
	require.NoError(t, err)
	_, err = cat.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	cols := []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "a", Type: row.TypeString}}
	v1, err := cat.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "t1", Type: catalog.SharedTable, PrimaryKey: "id", Columns: cols})
	require.NoError(t, err)
	v2, err := cat.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "t2", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: append(append([]catalog.Column(nil), cols...), catalog.Column{Name: "extra", Type: row.TypeInt32, Nullable: true})})
	require.NoError(t, err)
	retyped, err := cat.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "t3", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "a", Type: row.TypeInt64}}})
	require.NoError(t, err)

	fsys := segment.DirFS(t.TempDir())
	k, _ := v1.AppendKey(nil, row.Int64(7))
	vs := []version{{key: k, r: row.Row{Seq: 1, Values: []row.Value{row.Int64(7), row.String("x")}}}}
	spec, _ := writeSegment(t, fsys, v1, "app/t", nil, vs, 0)
	md := mustFooter(t, fsys, spec.Path())

	g, err := segment.ReadRowGroup(ctx, ref(fsys, spec.Path()), md, v2, nil, 0)
	require.NoError(t, err)
	var r row.Row
	g.Row(0, &r)
	require.Len(t, r.Values, 3)
	assert.Equal(t, "x", r.Values[1].Str())
	assert.True(t, r.Values[2].IsNull())

	_, err = segment.ReadRowGroup(ctx, ref(fsys, spec.Path()), md, retyped, nil, 0)
	assert.ErrorIs(t, err, core.ErrCorrupt, "a column whose type changed")
}

func TestCheckFooter(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	fsys := segment.DirFS(t.TempDir())
	spec, _ := writeSegment(t, fsys, tbl, "app/items", nil, versions(t, tbl, nil, 5), 0)
	md := mustFooter(t, fsys, spec.Path())
	require.NoError(t, segment.CheckFooter(md, spec.Path(), tbl.ID, 1))
	assert.ErrorIs(t, segment.CheckFooter(md, spec.Path(), tbl.ID, 2), core.ErrCorrupt)
	assert.ErrorIs(t, segment.CheckFooter(md, spec.Path(), tbl.ID+1, 1), core.ErrCorrupt)
	v, ok := segment.FooterMeta(md, segment.MetaPrimaryKey)
	assert.True(t, ok)
	assert.Equal(t, "id", v)
}

func TestCacheReadsEachFooterOnce(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	fsys := segment.DirFS(t.TempDir())
	spec, _ := writeSegment(t, fsys, tbl, "app/items", nil, versions(t, tbl, nil, 1000), 100)
	ctx := context.Background()

	c := segment.NewCache(8, 1<<30, 1<<30)
	for range 3 {
		for i := range 10 {
			g, err := c.RowGroup(ctx, ref(fsys, spec.Path()), tbl, nil, i)
			require.NoError(t, err)
			require.Equal(t, 100, g.Len())
		}
	}
	st := c.Stats()
	assert.EqualValues(t, 1, st.FooterReads)
	assert.EqualValues(t, 10, st.GroupMisses)
	assert.EqualValues(t, 20, st.GroupHits)
	assert.Positive(t, st.GroupBytes)

	c.Forget(spec.Path())
	assert.Zero(t, c.Stats().GroupBytes)
	_, err := c.RowGroup(ctx, ref(fsys, spec.Path()), tbl, nil, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 2, c.Stats().FooterReads, "a forgotten footer is read again")

	// A row-group budget of zero caches footers only.
	c = segment.NewCache(8, 0, 0)
	for range 2 {
		_, err := c.RowGroup(ctx, ref(fsys, spec.Path()), tbl, nil, 3)
		require.NoError(t, err)
	}
	st = c.Stats()
	assert.EqualValues(t, 1, st.FooterReads)
	assert.EqualValues(t, 2, st.GroupMisses)
	assert.Zero(t, st.GroupBytes)
}

func TestFileNames(t *testing.T) {
	name := segment.FileName(12, 345)
	assert.Equal(t, "seg-12-00000000000000000345.parquet", name)
	tid, seg, ok := segment.ParseFileName(name)
	assert.True(t, ok)
	assert.EqualValues(t, 12, tid)
	assert.EqualValues(t, 345, seg)
	for _, bad := range []string{"seg-12-345.parquet", "seg-12-00000000000000000345.parquet.tmp", "x.parquet", "seg--00000000000000000345.parquet", "seg-012-00000000000000000345.parquet"} {
		_, _, ok := segment.ParseFileName(bad)
		assert.False(t, ok, bad)
	}
	assert.True(t, strings.HasSuffix(segment.FileName(1, 1)+segment.TempExt, segment.TempExt))
}

// The primary key and _seq are unique within a segment: they are written
// without a dictionary, every other column with one (but booleans, which
// Parquet never dictionary-encodes).
func TestDictionaryEncodingSkipsUniqueColumns(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	fsys := segment.DirFS(t.TempDir())
	spec, _ := writeSegment(t, fsys, tbl, segment.TableDir("app", "items"), nil, versions(t, tbl, nil, 500), 0)
	md := mustFooter(t, fsys, spec.Path())
	rg := md.RowGroup(0)
	seen := 0
	for leaf := range md.Schema.NumColumns() {
		name := md.Schema.Column(leaf).Name()
		if md.Schema.Column(leaf).PhysicalType() == parquet.Types.Boolean {
			continue
		}
		cc, err := rg.ColumnChunk(leaf)
		require.NoError(t, err)
		unique := name == tbl.PrimaryKey || name == catalog.ColumnSeq
		assert.Equal(t, !unique, cc.HasDictionaryPage(), "column %s", name)
		if unique {
			seen++
		}
	}
	assert.Equal(t, 2, seen)
}

// A column whose distinct values outgrow segment.DictionaryPageLimit within
// a row group switches to plain encoding part-way; one of few distinct
// values keeps its dictionary to the end. Both read back exactly.
func TestDictionaryFallsBackToPlain(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	fsys := segment.DirFS(t.TempDir())
	vs := versions(t, tbl, nil, 20_000) // column s: 20,000 distinct strings of ~14 bytes
	spec, st := writeSegment(t, fsys, tbl, segment.TableDir("app", "items"), nil, vs, 0)
	require.EqualValues(t, 1, st.RowGroups)
	md := mustFooter(t, fsys, spec.Path())
	dataEncodings := func(name string) map[parquet.Encoding]bool {
		leaf := md.Schema.ColumnIndexByName(name)
		require.GreaterOrEqual(t, leaf, 0, name)
		cc, err := md.RowGroup(0).ColumnChunk(leaf)
		require.NoError(t, err)
		require.True(t, cc.HasDictionaryPage(), name)
		out := map[parquet.Encoding]bool{}
		for _, s := range cc.EncodingStats() {
			if s.PageType.String() != "DICTIONARY_PAGE" {
				out[s.Encoding] = true
			}
		}
		return out
	}
	dict := func(e map[parquet.Encoding]bool) bool {
		return e[parquet.Encodings.RLEDict] || e[parquet.Encodings.PlainDict]
	}
	s := dataEncodings("s")
	assert.True(t, dict(s) && s[parquet.Encodings.Plain], "column s starts with its dictionary and falls back to plain: %v", s)
	raw := dataEncodings("raw")
	assert.True(t, dict(raw) && !raw[parquet.Encodings.Plain], "column raw (256 distinct values) keeps its dictionary: %v", raw)
	assertSameVersions(t, vs, readAll(t, fsys, spec))
	assert.Less(t, int64(segment.DictionaryPageLimit), int64(20_000*14), "the test needs column s to outgrow the limit")
}
