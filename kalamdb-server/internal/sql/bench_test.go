package sql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
)

// The benchmarks compare the SQL endpoint with the REST API and with DuckDB
// reading the Parquet segments itself, in one run, over HTTP on loopback.

// benchServer is a fixture with a cold tier served over HTTP, holding shared
// table app.m (id BIGINT key, x DOUBLE, y INT).
func benchServer(b *testing.B) (*fixture, *httptest.Server, string) {
	b.Helper()
	be := memory.New()
	b.Cleanup(func() { _ = be.Close() })
	dir := b.TempDir()
	f := newFixtureOnDir(b, be, dir)
	f.ok(b, adminToken, `CREATE NAMESPACE app; CREATE SHARED TABLE app.m (id BIGINT PRIMARY KEY, x DOUBLE, y INT) WITH (FLUSH_POLICY = 'rows:100000000,interval:0')`)
	srv := httptest.NewServer(f.api)
	b.Cleanup(srv.Close)
	return f, srv, dir
}

// fill inserts rows [from, from+n) into app.m.
func (f *fixture) fill(b testing.TB, from, n int) {
	b.Helper()
	for start := from; start < from+n; start += 5000 {
		end := min(start+5000, from+n)
		f.ok(b, adminToken, fmt.Sprintf(`INSERT INTO app.m SELECT i, i * 0.5, i %% 100 FROM range(%d, %d) t(i)`, start, end))
	}
}

func do(b *testing.B, c *http.Client, method, url, body string, want int) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
}

// BenchmarkPointLookup: a row by primary key, REST against SQL.
func BenchmarkPointLookup(b *testing.B) {
	f, srv, _ := benchServer(b)
	f.fill(b, 0, 10_000)
	c := srv.Client()
	rest := func(b *testing.B, i int) {
		do(b, c, "GET", fmt.Sprintf("%s/v1/namespaces/app/tables/m/rows/%d", srv.URL, i%10_000), "", http.StatusOK)
	}
	sql := func(b *testing.B, i int) {
		do(b, c, "POST", srv.URL+"/v1/api/sql", fmt.Sprintf(`{"sql":"SELECT * FROM app.m WHERE id = $1","params":[%d]}`, i%10_000), http.StatusOK)
	}
	compare(b, rest, sql)
}

// BenchmarkInsertOne: one row, REST against SQL.
func BenchmarkInsertOne(b *testing.B) {
	_, srv, _ := benchServer(b)
	c := srv.Client()
	var next atomic.Int64
	rest := func(b *testing.B, _ int) {
		do(b, c, "POST", srv.URL+"/v1/namespaces/app/tables/m/rows", fmt.Sprintf(`{"rows":[{"id":%d,"x":1.5,"y":3}]}`, next.Add(1)), http.StatusCreated)
	}
	sql := func(b *testing.B, _ int) {
		do(b, c, "POST", srv.URL+"/v1/api/sql", fmt.Sprintf(`{"sql":"INSERT INTO app.m (id, x, y) VALUES ($1, 1.5, 3)","params":[%d]}`, next.Add(1)), http.StatusOK)
	}
	compare(b, rest, sql)
}

// compare runs rest and sql as sub-benchmarks of their own, each reporting
// cpu-ns/op (the CPU time of the whole process, server and client, per
// request), which waiting for a CPU does not inflate; and "paired", which
// runs them in turn in blocks of 20 requests, alternating which goes first,
// and reports the median over the rounds of sql's time over rest's
// ("sql/rest"): a change of load moves both sides of a round alike.
func compare(b *testing.B, rest, sql func(*testing.B, int)) {
	side := func(op func(*testing.B, int)) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			start, n := processCPU(), 0
			for i := 0; b.Loop(); i++ {
				op(b, i)
				n++
			}
			b.ReportMetric(float64(processCPU()-start)/float64(n), "cpu-ns/op")
		}
	}
	b.Run("rest", side(rest))
	b.Run("sql", side(sql))
	b.Run("paired", func(b *testing.B) {
		const block = 20
		var ratios []float64
		i := 0
		timed := func(op func(*testing.B, int)) time.Duration {
			t := time.Now()
			for range block {
				op(b, i)
				i++
			}
			return time.Since(t)
		}
		for round := 0; b.Loop(); round++ {
			var r, s time.Duration
			if round%2 == 0 {
				r, s = timed(rest), timed(sql)
			} else {
				s, r = timed(sql), timed(rest)
			}
			ratios = append(ratios, float64(s)/float64(r))
		}
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], "sql/rest")
	})
}

// processCPU is the CPU time of the whole process, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAggregate: count and average over 20 segments of 10,000 rows,
// through the SQL endpoint against DuckDB reading the same Parquet files
// directly.
func BenchmarkAggregate(b *testing.B) {
	f, srv, dir := benchServer(b)
	for s := 0; s < 20; s++ {
		f.fill(b, s*10_000, 10_000)
		f.ok(b, adminToken, `STORAGE FLUSH TABLE app.m`)
	}
	const q = `SELECT count(*), avg(x) FROM %s WHERE y > 49`
	c := srv.Client()
	query := func(url, q string) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				do(b, c, "POST", url+"/v1/api/sql", `{"sql":"`+q+`"}`, http.StatusOK)
			}
		}
	}
	b.Run("sql", query(srv.URL, fmt.Sprintf(q, "app.m")))
	// Every version through the merge of the newest per key, which the
	// segments' key ranges make needless here.
	b.Run("sql-merged", func(b *testing.B) {
		f.e.dedupeAlways = true
		defer func() { f.e.dedupeAlways = false }()
		query(srv.URL, fmt.Sprintf(q, "app.m"))(b)
	})
	// Rows of one segment: by a key range, whose other segments the
	// endpoint leaves out; by a column's range, whose other row groups the
	// engine's Parquet reader skips by their statistics.
	b.Run("sql-key-range", query(srv.URL, `SELECT count(*), avg(x) FROM app.m WHERE id >= 190000 AND y > 49`))
	b.Run("sql-x-range", query(srv.URL, `SELECT count(*), avg(x) FROM app.m WHERE x >= 95000 AND y > 49`))
	// The same rows by an expression, which no statistics answer.
	b.Run("sql-x-expr", query(srv.URL, `SELECT count(*), avg(x) FROM app.m WHERE x + 0 >= 95000 AND y > 49`))
	// An engine that copies every row through the table layer, as without
	// Options.Segments.
	copier := newFixtureWith(b, f.db, nil)
	csrv := httptest.NewServer(copier.api)
	b.Cleanup(csrv.Close)
	b.Run("sql-copy", query(csrv.URL, fmt.Sprintf(q, "app.m")))
	// DuckDB on its own, reading the segment files: with the endpoint's
	// engine the only one that keeps their footers (parquet_metadata_cache)
	// unless cached is set.
	files, err := filepath.Glob(filepath.Join(dir, "*", "*", "*.parquet"))
	require.NoError(b, err)
	b.Run("duckdb-parquet", direct(files, q, false))
	b.Run("duckdb-parquet-cached", direct(files, q, true))
	// The endpoint and DuckDB on its own in turn.
	b.Run("paired", paired(c, srv.URL, files, q))
	// Ten rows of one segment updated since the flush: that segment is
	// merged with the buffer, the other 19 read as they are.
	f.ok(b, adminToken, `UPDATE app.m SET x = x + 1 WHERE id >= 50000 AND id < 50010`)
	b.Run("sql-updated", query(srv.URL, fmt.Sprintf(q, "app.m")))
}

// BenchmarkAggregateOnObjectStore is BenchmarkAggregate's query with the
// segments on an object store (a file:// bucket behind the disk cache):
// through the endpoint, which reads its copies of the segment files once
// they are copied (warm), and through an engine that copies every row.
func BenchmarkAggregateOnObjectStore(b *testing.B) {
	ctx := context.Background()
	be := memory.New()
	b.Cleanup(func() { _ = be.Close() })
	m, err := flush.Open(ctx, be, flush.Options{Store: objectStoreOf(b, false), CompactSegments: flush.NeverCompact})
	require.NoError(b, err)
	b.Cleanup(func() { _, _ = m.Close(ctx) })
	mirrorDir := filepath.Join(b.TempDir(), "sql-files")
	f := newFixtureWith(b, m.DB(), m, func(o *Options) { o.Segments, o.SegmentFiles = m, mirrorDir })
	f.ok(b, adminToken, `CREATE NAMESPACE app; CREATE SHARED TABLE app.m (id BIGINT PRIMARY KEY, x DOUBLE, y INT) WITH (FLUSH_POLICY = 'rows:100000000,interval:0')`)
	srv := httptest.NewServer(f.api)
	b.Cleanup(srv.Close)
	for s := 0; s < 20; s++ {
		f.fill(b, s*10_000, 10_000)
		f.ok(b, adminToken, `STORAGE FLUSH TABLE app.m`)
	}
	const q = `SELECT count(*), avg(x) FROM %s WHERE y > 49`
	c := srv.Client()
	// Warm: every segment file copied.
	do(b, c, "POST", srv.URL+"/v1/api/sql", fmt.Sprintf(`{"sql":"`+q+`"}`, "app.m"), http.StatusOK)
	files, err := filepath.Glob(filepath.Join(mirrorDir, "*", "*", "*.parquet"))
	require.NoError(b, err)
	query := func(url string) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				do(b, c, "POST", url+"/v1/api/sql", fmt.Sprintf(`{"sql":"`+q+`"}`, "app.m"), http.StatusOK)
			}
		}
	}
	b.Run("sql", query(srv.URL))
	copier := newFixtureWith(b, f.db, nil)
	csrv := httptest.NewServer(copier.api)
	b.Cleanup(csrv.Close)
	b.Run("sql-copy", query(csrv.URL))
	b.Run("duckdb-parquet", direct(files, q, false))
	b.Run("paired", paired(c, srv.URL, files, q))
}

// reference returns a run of query q (a format whose %s is the relation)
// by DuckDB on its own over the 20 segment files of BenchmarkAggregate,
// keeping their footers between runs when cached is set.
func reference(b *testing.B, files []string, q string, cached bool) func() {
	conn, err := duckdb.NewConnector("", nil)
	require.NoError(b, err)
	db := sql.OpenDB(conn)
	b.Cleanup(func() { _ = db.Close() })
	if cached {
		_, err := db.Exec(`SET parquet_metadata_cache = true`)
		require.NoError(b, err)
	}
	require.Len(b, files, 20)
	query := fmt.Sprintf(q, "read_parquet(['"+strings.Join(files, "','")+"'])")
	var n int64
	var avg float64
	require.NoError(b, db.QueryRowContext(context.Background(), query).Scan(&n, &avg))
	require.Equal(b, int64(100_000), n)
	return func() {
		if err := db.QueryRowContext(context.Background(), query).Scan(&n, &avg); err != nil {
			b.Fatal(err)
		}
	}
}

// direct is the sub-benchmark of reference.
func direct(files []string, q string, cached bool) func(b *testing.B) {
	return func(b *testing.B) {
		run := reference(b, files, q, cached)
		b.ReportAllocs()
		for b.Loop() {
			run()
		}
	}
}

// paired runs q over app.m through the endpoint at url and by DuckDB on its
// own over files in turn, in blocks of 5 queries, alternating which goes
// first, and reports the median over the rounds of the endpoint's time
// over DuckDB's ("sql/duckdb"), which a change of load moves less than the
// ratio of separate runs.
func paired(c *http.Client, url string, files []string, q string) func(b *testing.B) {
	return func(b *testing.B) {
		run := reference(b, files, q, false)
		body := fmt.Sprintf(`{"sql":"`+q+`"}`, "app.m")
		const block = 5
		timed := func(op func()) time.Duration {
			t := time.Now()
			for range block {
				op()
			}
			return time.Since(t)
		}
		endpoint := func() { do(b, c, "POST", url+"/v1/api/sql", body, http.StatusOK) }
		var ratios []float64
		for round := 0; b.Loop(); round++ {
			var e, d time.Duration
			if round%2 == 0 {
				e, d = timed(endpoint), timed(run)
			} else {
				d, e = timed(run), timed(endpoint)
			}
			ratios = append(ratios, float64(e)/float64(d))
		}
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], "sql/duckdb")
	}
}
