package sql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
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
func (f *fixture) fill(b *testing.B, from, n int) {
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
	b.Run("rest", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			do(b, c, "GET", fmt.Sprintf("%s/v1/namespaces/app/tables/m/rows/%d", srv.URL, i%10_000), "", http.StatusOK)
		}
	})
	b.Run("sql", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			do(b, c, "POST", srv.URL+"/v1/api/sql", fmt.Sprintf(`{"sql":"SELECT * FROM app.m WHERE id = $1","params":[%d]}`, i%10_000), http.StatusOK)
		}
	})
}

// BenchmarkInsertOne: one row, REST against SQL.
func BenchmarkInsertOne(b *testing.B) {
	_, srv, _ := benchServer(b)
	c := srv.Client()
	var next atomic.Int64
	b.Run("rest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do(b, c, "POST", srv.URL+"/v1/namespaces/app/tables/m/rows", fmt.Sprintf(`{"rows":[{"id":%d,"x":1.5,"y":3}]}`, next.Add(1)), http.StatusCreated)
		}
	})
	b.Run("sql", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do(b, c, "POST", srv.URL+"/v1/api/sql", fmt.Sprintf(`{"sql":"INSERT INTO app.m (id, x, y) VALUES ($1, 1.5, 3)","params":[%d]}`, next.Add(1)), http.StatusOK)
		}
	})
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
	b.Run("sql", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do(b, c, "POST", srv.URL+"/v1/api/sql", fmt.Sprintf(`{"sql":"`+q+`"}`, "app.m"), http.StatusOK)
		}
	})
	b.Run("duckdb-parquet", func(b *testing.B) {
		conn, err := duckdb.NewConnector("", nil)
		require.NoError(b, err)
		db := sql.OpenDB(conn)
		defer db.Close()
		files, err := filepath.Glob(filepath.Join(dir, "*", "*", "*.parquet"))
		require.NoError(b, err)
		if len(files) == 0 {
			files, err = filepath.Glob(filepath.Join(dir, "**", "*.parquet"))
			require.NoError(b, err)
		}
		require.NotEmpty(b, files)
		from := "read_parquet(['" + strings.Join(files, "','") + "'])"
		var n int64
		var avg float64
		require.NoError(b, db.QueryRowContext(context.Background(), fmt.Sprintf(q, from)).Scan(&n, &avg))
		require.Equal(b, int64(100_000), n)
		b.ReportAllocs()
		for b.Loop() {
			if err := db.QueryRowContext(context.Background(), fmt.Sprintf(q, from)).Scan(&n, &avg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
