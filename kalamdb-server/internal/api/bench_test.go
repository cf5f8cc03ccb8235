package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/metrics"
)

// benchAPI is the API on a backend, with the messages table, driven
// in-process (no network), to measure what the server adds per request.
func benchAPI(b *testing.B, backend store.StorageBackend) http.Handler {
	b.Helper()
	m := metrics.New()
	backend = m.InstrumentBackend("bench", backend)
	db, err := tables.Open(context.Background(), backend, tables.Options{})
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = db.Close()
		_ = backend.Close()
	})
	authn, err := auth.New([]config.User{{ID: "u", Role: config.RoleAdmin, Token: "t"}})
	require.NoError(b, err)
	a := New(Options{Logger: slog.New(slog.DiscardHandler), Auth: authn, Metrics: m, DB: db, MaxBodyBytes: 1 << 20, MaxPageRows: 1000})
	for _, req := range []struct{ path, body string }{
		{"/v1/namespaces", `{"name":"bench"}`},
		{"/v1/namespaces/bench/tables", `{"name":"messages","type":"user","columns":[{"name":"id","type":"int64"},{"name":"body","type":"string","nullable":true},{"name":"at","type":"timestamp"}],"primary_key":"id"}`},
	} {
		rec := serve(a, "POST", req.path, req.body)
		require.Equal(b, http.StatusCreated, rec.Code, rec.Body.String())
	}
	return a
}

func serve(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer t")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func rowBody(from, n int) string {
	var sb strings.Builder
	sb.WriteString(`{"rows":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":%d,"body":"message number %d, some text of a usual size","at":"2026-01-02T03:04:05Z"}`, from+i, from+i)
	}
	sb.WriteString(`]}`)
	return sb.String()
}

func benchBackends(b *testing.B, fn func(b *testing.B, h http.Handler)) {
	b.Run("memory", func(b *testing.B) { fn(b, benchAPI(b, memory.New())) })
	b.Run("rocksdb", func(b *testing.B) {
		c := rocksdb.DefaultConfig()
		c.Path = b.TempDir()
		backend, err := rocksdb.OpenWith(c)
		require.NoError(b, err)
		fn(b, benchAPI(b, backend))
	})
}

func BenchmarkInsertOneRow(b *testing.B) {
	benchBackends(b, func(b *testing.B, h http.Handler) {
		var id atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := serve(h, "POST", "/v1/namespaces/bench/tables/messages/rows", rowBody(int(id.Add(1)), 1))
				if rec.Code != http.StatusCreated {
					b.Fatal(rec.Body.String())
				}
			}
		})
	})
}

func BenchmarkInsert50Rows(b *testing.B) {
	benchBackends(b, func(b *testing.B, h http.Handler) {
		var id atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := serve(h, "POST", "/v1/namespaces/bench/tables/messages/rows", rowBody(int(id.Add(50)), 50))
				if rec.Code != http.StatusCreated {
					b.Fatal(rec.Body.String())
				}
			}
		})
	})
}

func BenchmarkGetRow(b *testing.B) {
	benchBackends(b, func(b *testing.B, h http.Handler) {
		const rows = 10000
		for i := 0; i < rows; i += 100 {
			rec := serve(h, "POST", "/v1/namespaces/bench/tables/messages/rows", rowBody(i+1, 100))
			require.Equal(b, http.StatusCreated, rec.Code)
		}
		var n atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := n.Add(7919)%rows + 1
				rec := serve(h, "GET", fmt.Sprintf("/v1/namespaces/bench/tables/messages/rows/%d", id), "")
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Body.String())
				}
			}
		})
	})
}
