package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// The instrumented wrapper must be invisible: it passes the whole storage
// contract on top of the memory backend.
func TestInstrumentedBackendConformance(t *testing.T) {
	m := New()
	storetest.Run(t, storetest.Harness{
		Name: "instrumented-memory",
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			return m.InstrumentBackend("memory", memory.New()), nil
		},
	})
}

func TestInstrumentedBackendCounts(t *testing.T) {
	m := New()
	b := m.InstrumentBackend("memory", memory.New())
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	p := store.MustPartition("t")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	_, err := b.Get(ctx, p, []byte("k"))
	require.NoError(t, err)
	_, err = b.Get(ctx, p, []byte("missing"))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.Get(ctx, store.MustPartition("nope"), []byte("k"))
	require.ErrorIs(t, err, store.ErrPartitionNotFound)
	it, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	for it.Next() {
	}
	require.NoError(t, it.Close())

	assert.Equal(t, 1.0, testutil.ToFloat64(m.storageOps.WithLabelValues("memory", "put", "ok")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.storageOps.WithLabelValues("memory", "get", "ok")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.storageOps.WithLabelValues("memory", "get", "not_found")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.storageOps.WithLabelValues("memory", "get", "error")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.storageOps.WithLabelValues("memory", "scan", "ok")))
	assert.Equal(t, 0.0, testutil.ToFloat64(m.storageOps.WithLabelValues("memory", "scan_iterate", "error")))
}

type failingIter struct{ store.Iterator }

func (failingIter) Next() bool   { return false }
func (failingIter) Err() error   { return errors.New("disk on fire") }
func (failingIter) Close() error { return nil }

func TestIteratorFailureIsCountedOnce(t *testing.T) {
	m := New()
	it := &instrumentedIter{Iterator: failingIter{}, m: &opMetrics{failed: m.storageOps.WithLabelValues("x", "scan_iterate", "error")}}
	assert.False(t, it.Next())
	assert.False(t, it.Next())
	assert.Equal(t, 1.0, testutil.ToFloat64(m.storageOps.WithLabelValues("x", "scan_iterate", "error")))
}

func TestHTTPAndFlushMetricsAreExposed(t *testing.T) {
	m := New()
	r := m.Route("/v1/namespaces", "GET")
	r.Begin()(200)
	r.Begin()(401)
	r.Begin()(418)
	m.ObserveFlush("manual", 42, 3*time.Millisecond, nil)
	m.ObserveFlush("policy", 0, time.Millisecond, errors.New("boom"))
	m.BufferedRows(func() float64 { return 7 })
	m.ObserveCompaction("policy", 3, 10, 5*time.Millisecond, nil)
	m.ObserveCompaction("policy", 0, 0, time.Millisecond, nil) // nothing merged: not counted
	m.ObserveCompaction("manual", 0, 0, time.Millisecond, errors.New("boom"))

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	text := string(body)
	for _, want := range []string{
		`kalamdb_http_requests_total{method="GET",route="/v1/namespaces",status="200"} 1`,
		`kalamdb_http_requests_total{method="GET",route="/v1/namespaces",status="401"} 1`,
		`kalamdb_http_requests_total{method="GET",route="/v1/namespaces",status="418"} 1`,
		`kalamdb_http_request_duration_seconds_count{method="GET",route="/v1/namespaces"} 3`,
		`kalamdb_flush_total{result="ok",trigger="manual"} 1`,
		`kalamdb_flush_total{result="error",trigger="policy"} 1`,
		`kalamdb_flush_rows_total 42`,
		`kalamdb_flush_duration_seconds_count 1`,
		`kalamdb_buffered_rows 7`,
		`kalamdb_compaction_total{result="ok",trigger="policy"} 1`,
		`kalamdb_compaction_total{result="error",trigger="manual"} 1`,
		`kalamdb_compaction_total{result="ok",trigger="manual"} 0`,
		`kalamdb_compaction_segments_merged_total 3`,
		`kalamdb_compaction_versions_dropped_total 10`,
		`kalamdb_compaction_duration_seconds_count 1`,
		`go_goroutines`,
	} {
		assert.True(t, strings.Contains(text, want), "missing %q", want)
	}
	assert.Equal(t, 0.0, testutil.ToFloat64(m.httpInFlight))
}

func TestColdTierGauges(t *testing.T) {
	m := New()
	failing, last := 0, time.Time{}
	m.ColdTier(func() int { return failing }, func() time.Time { return last })
	expect := func(healthy, tables, at string) {
		t.Helper()
		assert.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(
			"# HELP kalamdb_cold_tier_healthy 1 while every table's last flush and compaction to Parquet succeeded, 0 while one fails (its rows stay buffered; see the log).\n"+
				"# TYPE kalamdb_cold_tier_healthy gauge\nkalamdb_cold_tier_healthy "+healthy+"\n"+
				"# HELP kalamdb_cold_tier_failing_tables Tables whose last flush or compaction to Parquet failed; the scheduler retries them with backoff.\n"+
				"# TYPE kalamdb_cold_tier_failing_tables gauge\nkalamdb_cold_tier_failing_tables "+tables+"\n"+
				"# HELP kalamdb_cold_tier_last_failure_timestamp_seconds Unix time of the latest failed flush or compaction to Parquet; 0 when none since start.\n"+
				"# TYPE kalamdb_cold_tier_last_failure_timestamp_seconds gauge\nkalamdb_cold_tier_last_failure_timestamp_seconds "+at+"\n"),
			"kalamdb_cold_tier_healthy", "kalamdb_cold_tier_failing_tables", "kalamdb_cold_tier_last_failure_timestamp_seconds"))
	}
	expect("1", "0", "0")
	failing, last = 2, time.Unix(1767323045, 500_000_000)
	expect("0", "2", "1.7673230455e+09")
}

func TestSegmentCacheCounters(t *testing.T) {
	m := New()
	st := segment.CacheStats{FooterReads: 3, GroupHits: 10, GroupMisses: 2, GroupBytes: 4096, KeyHits: 7, KeyMisses: 1, KeyBytes: 512}
	m.SegmentCache(func() segment.CacheStats { return st })
	assert.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP kalamdb_segment_cache_bytes Memory held by the cached row groups and key indexes.
# TYPE kalamdb_segment_cache_bytes gauge
kalamdb_segment_cache_bytes{cache="key_index"} 512
kalamdb_segment_cache_bytes{cache="row_group"} 4096
# HELP kalamdb_segment_cache_footer_reads_total Parquet footers read from files (a miss of the footer cache).
# TYPE kalamdb_segment_cache_footer_reads_total counter
kalamdb_segment_cache_footer_reads_total 3
# HELP kalamdb_segment_cache_lookups_total Lookups of decoded row groups (scans, reads of a row) and key indexes (lookups of a key, such as the uniqueness check of an insert) in the segment cache, by result.
# TYPE kalamdb_segment_cache_lookups_total counter
kalamdb_segment_cache_lookups_total{cache="key_index",result="hit"} 7
kalamdb_segment_cache_lookups_total{cache="key_index",result="miss"} 1
kalamdb_segment_cache_lookups_total{cache="row_group",result="hit"} 10
kalamdb_segment_cache_lookups_total{cache="row_group",result="miss"} 2
`), "kalamdb_segment_cache_bytes", "kalamdb_segment_cache_footer_reads_total", "kalamdb_segment_cache_lookups_total"))
	st.FooterReads = 4
	assert.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP kalamdb_segment_cache_footer_reads_total Parquet footers read from files (a miss of the footer cache).
# TYPE kalamdb_segment_cache_footer_reads_total counter
kalamdb_segment_cache_footer_reads_total 4
`), "kalamdb_segment_cache_footer_reads_total"), "read again at each scrape")
}
