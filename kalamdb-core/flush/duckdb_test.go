package flush_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// duckDBCheck is the directory of the node script that runs DuckDB.
var duckDBCheck = filepath.Join("..", "..", "tools", "duckdb-check")

type duckResult struct {
	Columns []struct{ Name, Type string } `json:"columns"`
	Rows    [][]any                       `json:"rows"`
}

// duckDB runs queries with DuckDB (through @duckdb/node-api). Without node
// or the installed package the test is skipped, unless
// KALAMDB_REQUIRE_DUCKDB=1 (set by CI), which makes it fail instead.
func duckDB(t *testing.T, queries ...string) []duckResult {
	t.Helper()
	node, err := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(duckDBCheck, "node_modules", "@duckdb", "node-api"))
	if err != nil || modErr != nil {
		msg := "DuckDB check needs node and `npm ci` in tools/duckdb-check (make deps installs them)"
		if os.Getenv("KALAMDB_REQUIRE_DUCKDB") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	arg, err := json.Marshal(queries)
	require.NoError(t, err)
	cmd := exec.Command(node, "check.mjs", string(arg))
	cmd.Dir = duckDBCheck
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "duckdb: %s", stderr.String())
	var res []duckResult
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&res))
	require.Len(t, res, len(queries))
	return res
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestDuckDBReadsSegments writes user- and shared-table segments with every
// column type, nulls and tombstones, and checks that DuckDB reads exactly
// the versions our reader reads, with the expected types, zstd compression
// and column statistics.
func TestDuckDBReadsSegments(t *testing.T) {
	e := newEnv(t, func(o *flushOptions) { o.RowGroupRows = 50 })
	ut := e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	st := e.createTable("shared", catalog.SharedTable, catalog.FlushPolicy{})
	us := e.store("items")
	ss := e.store("shared")
	for _, u := range []string{"alice", "../evil", "Ünïcode"} {
		for id := int64(-60); id < 60; id++ {
			require.NoError(t, us.insert(e.ctx, u, vals(id, 0)))
		}
	}
	for id := int64(0); id < 150; id++ {
		require.NoError(t, ss.insert(e.ctx, "", vals(id, 0)))
	}
	_, err := e.m.FlushAll(e.ctx)
	require.NoError(t, err)
	for id := int64(-60); id < 60; id += 9 {
		require.NoError(t, us.delete(e.ctx, "alice", id))
		require.NoError(t, us.update(e.ctx, "../evil", id, 3))
	}
	require.NoError(t, ss.delete(e.ctx, "", 7))
	_, err = e.m.FlushAll(e.ctx)
	require.NoError(t, err)

	var queries []string
	type fileCheck struct {
		path  string
		table *catalog.Table
		user  string
	}
	var files []fileCheck
	for _, tbl := range []*catalog.Table{ut, st} {
		segs, err := e.m.Segments(context.Background(), ns, tbl.Name)
		require.NoError(t, err)
		for _, s := range segs {
			abs := filepath.Join(e.root, filepath.FromSlash(s.Path))
			files = append(files, fileCheck{path: s.Path, table: tbl, user: s.User})
			queries = append(queries,
				`SELECT CAST(id AS VARCHAR), name, score, active, hex(blob), CAST(epoch_us("at") AS VARCHAR), CAST(_seq AS VARCHAR), CAST(epoch_us(_updated) AS VARCHAR), _deleted FROM read_parquet(`+sqlString(abs)+`)`,
				`SELECT DISTINCT compression FROM parquet_metadata(`+sqlString(abs)+`)`,
				`SELECT count(*) FROM parquet_metadata(`+sqlString(abs)+`) WHERE stats_min_value IS NULL OR stats_max_value IS NULL`,
				`SELECT decode(value) FROM parquet_kv_metadata(`+sqlString(abs)+`) WHERE decode(key) = 'kalamdb.user'`,
			)
		}
	}
	require.Len(t, files, 2+2+1+2, "two segments for alice and ../evil, one for Ünïcode, two of the shared table")
	glob := filepath.Join(e.root, ns, "items", "**", "*.parquet")
	queries = append(queries, `SELECT count(*), sum(CASE WHEN _deleted THEN 1 ELSE 0 END) FROM read_parquet(`+sqlString(glob)+`)`,
		`DESCRIBE SELECT * FROM read_parquet(`+sqlString(filepath.Join(e.root, filepath.FromSlash(files[0].path)))+`)`)
	res := duckDB(t, queries...)

	var totalRows, tombs int64
	for i, f := range files {
		data, meta, stats, user := res[4*i], res[4*i+1], res[4*i+2], res[4*i+3]
		want := readSegment(t, e, f.path, f.table, f.user)
		require.Len(t, data.Rows, len(want), f.path)
		for j, w := range want {
			got := data.Rows[j]
			require.Len(t, got, 9)
			assert.Equal(t, strconv.FormatInt(w.Values[0].Int64(), 10), got[0], "%s row %d id", f.path, j)
			assert.Equal(t, w.Values[1].Str(), got[1], "name")
			if w.Values[2].IsNull() {
				assert.Nil(t, got[2], "score is null")
			} else {
				n, ok := got[2].(json.Number)
				require.True(t, ok, "score is a number: %v", got[2])
				f64, err := n.Float64()
				require.NoError(t, err)
				assert.Equal(t, w.Values[2].Float64(), f64, "score")
			}
			assert.Equal(t, w.Values[3].Bool(), got[3], "active")
			assert.Equal(t, strings.ToUpper(hex.EncodeToString(w.Values[4].Bytes())), got[4], "blob")
			assert.Equal(t, strconv.FormatInt(w.Values[5].Micros(), 10), got[5], "at")
			assert.Equal(t, strconv.FormatInt(w.Seq, 10), got[6], "_seq")
			assert.Equal(t, strconv.FormatInt(w.Updated, 10), got[7], "_updated")
			assert.Equal(t, w.Deleted, got[8], "_deleted")
			totalRows++
			if w.Deleted && f.table == ut {
				tombs++
			}
		}
		require.Len(t, meta.Rows, 1, "one codec")
		assert.Equal(t, "ZSTD", meta.Rows[0][0], "%s is zstd-compressed", f.path)
		assert.Equal(t, "0", fmt.Sprint(stats.Rows[0][0]), "%s has min/max statistics on every column chunk", f.path)
		require.Len(t, user.Rows, 1)
		assert.Equal(t, f.user, fmt.Sprint(user.Rows[0][0]), "kalamdb.user of %s", f.path)
	}
	glob2 := res[len(res)-2]
	var userRows int64
	for _, f := range files {
		if f.table == ut {
			userRows += int64(len(readSegment(t, e, f.path, f.table, f.user)))
		}
	}
	assert.Equal(t, strconv.FormatInt(userRows, 10), fmt.Sprint(glob2.Rows[0][0]), "a glob reads every user's files")
	assert.Equal(t, strconv.FormatInt(tombs, 10), fmt.Sprint(glob2.Rows[0][1]), "tombstones carried")
	assert.Positive(t, tombs)

	types := map[string]string{}
	for _, r := range res[len(res)-1].Rows {
		types[fmt.Sprint(r[0])] = fmt.Sprint(r[1])
	}
	assert.Equal(t, map[string]string{
		"id": "BIGINT", "name": "VARCHAR", "score": "DOUBLE", "active": "BOOLEAN", "blob": "BLOB",
		"at": "TIMESTAMP WITH TIME ZONE", "_seq": "BIGINT", "_updated": "TIMESTAMP WITH TIME ZONE", "_deleted": "BOOLEAN",
	}, types)
	assert.Positive(t, totalRows)
}

// readSegment reads a segment with our reader.
func readSegment(t *testing.T, e *env, p string, tbl *catalog.Table, user string) []row.Row {
	t.Helper()
	fsys := segment.DirFS(e.root)
	md, err := segment.ReadFooter(e.ctx, ref(fsys, p))
	require.NoError(t, err)
	var prefix []byte
	if tbl.Type == catalog.UserTable {
		prefix = keysString(user)
	}
	var out []row.Row
	for i := range md.RowGroups {
		g, err := segment.ReadRowGroup(e.ctx, ref(fsys, p), md, tbl, prefix, i)
		require.NoError(t, err)
		for j := range g.Len() {
			var r row.Row
			g.Row(j, &r)
			out = append(out, r)
		}
	}
	return out
}

// TestDuckDBReadsColumnsThatLeftTheirDictionary flushes one row group whose
// name, score and at columns have more distinct values than
// segment.DictionaryPageLimit holds, so they switch from dictionary to
// plain pages part-way, and checks that DuckDB reads every value as our
// reader does.
func TestDuckDBReadsColumnsThatLeftTheirDictionary(t *testing.T) {
	const n = 20_000
	e := newEnv(t, func(o *flushOptions) { o.RowGroupRows = n })
	st := e.createTable("wide", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("wide")
	batch := make([][]row.Value, 0, 1000)
	for id := int64(0); id < n; id++ {
		batch = append(batch, vals(id, 1))
		if len(batch) == cap(batch) {
			require.NoError(t, s.insert(e.ctx, "", batch...))
			batch = batch[:0]
		}
	}
	res, err := e.m.Flush(e.ctx, ns, "wide")
	require.NoError(t, err)
	require.Len(t, res.Files, 1)
	abs := sqlString(filepath.Join(e.root, filepath.FromSlash(res.Files[0])))
	md, err := segment.ReadFooter(e.ctx, ref(segment.DirFS(e.root), res.Files[0]))
	require.NoError(t, err)
	cc, err := md.RowGroup(0).ColumnChunk(md.Schema.ColumnIndexByName("name"))
	require.NoError(t, err)
	pages := map[string]bool{}
	for _, s := range cc.EncodingStats() {
		pages[s.PageType.String()+" "+s.Encoding.String()] = true
	}
	require.True(t, pages["DATA_PAGE RLE_DICTIONARY"] && pages["DATA_PAGE PLAIN"], "name has dictionary and plain data pages: %v", pages)
	out := duckDB(t,
		`SELECT CAST(id AS VARCHAR), name, CAST(score AS VARCHAR), CAST(epoch_us("at") AS VARCHAR) FROM read_parquet(`+abs+`) ORDER BY id`)
	want := readSegment(t, e, res.Files[0], st, "")
	require.Len(t, want, n)
	require.Len(t, out[0].Rows, n)
	for i, w := range want {
		got := out[0].Rows[i]
		require.Equal(t, strconv.FormatInt(w.Values[0].Int64(), 10), got[0], "row %d id", i)
		require.Equal(t, w.Values[1].Str(), got[1], "row %d name", i)
		if w.Values[2].IsNull() {
			require.Nil(t, got[2], "row %d score", i)
		} else {
			f, err := strconv.ParseFloat(fmt.Sprint(got[2]), 64)
			require.NoError(t, err)
			require.Equal(t, w.Values[2].Float64(), f, "row %d score", i)
		}
		require.Equal(t, strconv.FormatInt(w.Values[5].Micros(), 10), got[3], "row %d at", i)
	}
}

// TestDuckDBReadsSegmentsAcrossAnAddedColumn: segments written before and
// after a column was added read as one table with DuckDB's union_by_name,
// the old rows null in the new column.
func TestDuckDBReadsSegmentsAcrossAnAddedColumn(t *testing.T) {
	e, s, _ := itemsTable(t, catalog.SharedTable)
	for id := int64(1); id <= 5; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
	}
	require.NoError(t, flushItems(e))
	_, err := e.m.DB().AddColumn(e.ctx, ns, "items", catalog.Column{Name: "note", Type: row.TypeString, Nullable: true})
	require.NoError(t, err)
	for id := int64(6); id <= 8; id++ {
		require.NoError(t, s.insert(e.ctx, "", append(vals(id, 0), row.String("n"+strconv.FormatInt(id, 10)))))
	}
	require.NoError(t, flushItems(e))
	glob := sqlString(filepath.Join(e.root, ns, "items", "*.parquet"))
	out := duckDB(t, `SELECT CAST(id AS VARCHAR), note FROM read_parquet(`+glob+`, union_by_name = true) ORDER BY id`)
	require.Len(t, out[0].Rows, 8)
	for i, r := range out[0].Rows {
		id := i + 1
		assert.Equal(t, strconv.Itoa(id), r[0])
		if id <= 5 {
			assert.Nil(t, r[1], "row %d was flushed before the column existed", id)
		} else {
			assert.Equal(t, "n"+strconv.Itoa(id), r[1])
		}
	}
}

// TestDuckDBReadsTheNewestVersions runs the query docs/flush.md gives for
// reading only the newest version of each row, deleted rows left out, on
// segments that hold superseded versions and tombstones of several users.
func TestDuckDBReadsTheNewestVersions(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "flush.md"))
	require.NoError(t, err)
	var query string
	for _, block := range strings.Split(string(doc), "```sql\n")[1:] {
		if b, _, _ := strings.Cut(block, "```"); strings.Contains(b, "newest = 1") {
			query = b
		}
	}
	require.NotEmpty(t, query, "docs/flush.md has the newest-version query")
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e, s, us := itemsTable(t, typ)
			md := model{}
			for _, u := range us {
				for id := int64(1); id <= 6; id++ {
					require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
					md.set(u, id, 0)
				}
			}
			require.NoError(t, flushItems(e))
			for _, u := range us {
				require.NoError(t, s.update(e.ctx, u, 2, 1))
				require.NoError(t, s.update(e.ctx, u, 3, 1))
				require.NoError(t, s.delete(e.ctx, u, 4))
				md.set(u, 2, 1)
				md.set(u, 3, 1)
				md.del(u, 4)
			}
			require.NoError(t, flushItems(e))
			for _, u := range us {
				require.NoError(t, s.update(e.ctx, u, 3, 2))
				md.set(u, 3, 2)
			}
			require.NoError(t, flushItems(e))

			q := strings.Replace(query, "'/srv/kalamdb/data/parquet/<instance id>/app/items/**/*.parquet'",
				sqlString(filepath.Join(e.root, ns, "items", "**", "*.parquet")), 1)
			require.NotEqual(t, query, q, "the query reads the documented path")
			out := duckDB(t, "SELECT CAST(id AS VARCHAR), name FROM ("+strings.TrimSuffix(strings.TrimSpace(q), ";")+")")
			var got, want []string
			for _, r := range out[0].Rows {
				got = append(got, fmt.Sprintf("%v=%v", r[0], r[1]))
			}
			for _, u := range us {
				for id, gen := range md[u] {
					want = append(want, fmt.Sprintf("%d=%s", id, vals(id, gen)[1].Str()))
				}
			}
			assert.ElementsMatch(t, want, got)
		})
	}
}

// ref names segment p of the local file system fsys.
func ref(fsys segment.FS, p string) segment.Ref {
	return segment.Ref{Store: segment.FSStore(fsys, "test"), Name: p, Size: -1}
}
