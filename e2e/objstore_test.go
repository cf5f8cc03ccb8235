package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "gocloud.dev/blob/s3blob" // the bucketObjects URLs

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

// TestSegmentsOnS3 runs the real binary with storage.segments_url on an S3
// bucket of a moto server: it flushes, changes flushed rows, compacts,
// restarts with an empty disk cache and reads everything back from the
// bucket.
func TestSegmentsOnS3(t *testing.T) {
	_, url := s3test.Bucket(t)
	in := startServer(t, "rocksdb", options{segmentsURL: url, env: s3test.Env()})
	assert.Contains(t, in.logs.String(), "segments in an object store")
	assert.NotContains(t, in.logs.String(), "AWS_SECRET", "no credentials in the log")
	setupMessages(t, in)
	var rows []any
	for i := 1; i <= 40; i++ {
		rows = append(rows, msg(i, fmt.Sprintf("row %d", i)))
	}
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": rows}), http.StatusCreated, "")
	expect(t, in.call("POST", rowsPath, bobToken, map[string]any{"rows": []any{msg(1, "bob")}}), http.StatusCreated, "")
	r := expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
	assert.Equal(t, 41.0, r.Body["rows_flushed"])
	expect(t, in.call("PATCH", rowsPath+"/5", aliceToken, `{"body":"changed after flush"}`), http.StatusOK, "")
	expect(t, in.call("DELETE", rowsPath+"/6", aliceToken, nil), http.StatusNoContent, "")
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(7, "dup")}}), http.StatusConflict, "DUPLICATE_KEY")
	expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
	expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/compact", adminToken, nil), http.StatusOK, "")
	want := []int{}
	for i := 1; i <= 40; i++ {
		if i != 6 {
			want = append(want, i)
		}
	}
	assert.Equal(t, want, ids(listAll(t, in, rowsPath, aliceToken, 7)))

	in.stop()
	cache := filepath.Join(in.dir, "segment-cache")
	require.NoError(t, os.RemoveAll(cache))
	in.start(s3test.Env()...)
	assert.Equal(t, want, ids(listAll(t, in, rowsPath, aliceToken, 7)), "every row read back from the bucket")
	r = expect(t, in.call("GET", rowsPath+"/5", aliceToken, nil), http.StatusOK, "")
	assert.Equal(t, "changed after flush", r.Body["body"])
	expect(t, in.call("GET", rowsPath+"/6", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
	assert.Equal(t, []int{1}, ids(listAll(t, in, rowsPath, bobToken, 7)))

	resp, err := http.Get(in.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, err = io.Copy(&b, resp.Body)
	require.NoError(t, err)
	assert.Regexp(t, `kalamdb_object_store_requests_total\{op="get"\} [1-9]`, b.String(), "reads went to the bucket")
	assert.Regexp(t, `kalamdb_segment_disk_cache_blocks_total\{result="miss"\} [1-9]`, b.String())
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	assert.NotEmpty(t, entries, "the disk cache filled again")

	require.NotEmpty(t, bucketObjects(t, url), "the segments are in the bucket")
	expect(t, in.call("DELETE", "/v1/namespaces/app/tables/messages", adminToken, nil), http.StatusNoContent, "")
	assert.Empty(t, bucketObjects(t, url), "dropping the table removed its objects")
}

// bucketObjects lists the objects of the bucket at url.
func bucketObjects(t *testing.T, url string) []string {
	t.Helper()
	st, b, err := objstore.Open(context.Background(), url, objstore.Options{})
	require.NoError(t, err)
	defer b.Close()
	var names []string
	require.NoError(t, st.List(context.Background(), "", func(o segment.ObjectInfo) error {
		names = append(names, o.Name)
		return nil
	}))
	return names
}

// proxiedBucket creates a bucket on the moto server and returns a
// fault-injecting proxy in front of the server and the bucket's URL
// through it.
func proxiedBucket(t *testing.T) (*s3test.Proxy, string) {
	t.Helper()
	srv, u := s3test.Bucket(t)
	p := s3test.NewProxy(srv.Endpoint)
	t.Cleanup(p.Close)
	return p, strings.Replace(u, url.QueryEscape(srv.Endpoint), url.QueryEscape(p.URL), 1)
}

// failAll makes every request through the proxy fail (an outage).
func failAll(int, *http.Request) s3test.Fault { return s3test.Fail }

// metricValue returns the value of the sample named by the exposition
// line prefix series, or -1 when /metrics has none.
func metricValue(t *testing.T, in *instance, series string) float64 {
	t.Helper()
	r := expect(t, in.call("GET", "/metrics", "", nil), http.StatusOK, "")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindSubmatch(r.Raw)
	if m == nil {
		return -1
	}
	var v float64
	_, err := fmt.Sscan(string(m[1]), &v)
	require.NoError(t, err)
	return v
}

// waitFor polls cond until it holds; it fails t after about a minute.
// The wait is for the server's retry, whose first delay is 2 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

// TestObjectStoreOutage runs the real binary against a bucket behind a
// proxy that fails every request: writes to the buffer still succeed, a
// flush fails with 503 STORAGE_UNAVAILABLE and shows in the log and the
// metrics, the flush is retried once the store is back, and a read that
// needs a segment not in the disk cache (an insert's uniqueness check of
// a key in a segment's range included) answers 503 STORAGE_UNAVAILABLE,
// never 500, until the store answers again.
func TestObjectStoreOutage(t *testing.T) {
	p, u := proxiedBucket(t)
	in := startServer(t, "rocksdb", options{segmentsURL: u, env: s3test.Env()})
	setupMessages(t, in)

	p.SetRule(failAll)
	var rows []any
	for i := 1; i <= 20; i++ {
		rows = append(rows, msg(i, fmt.Sprintf("row %d", i)))
	}
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": rows}), http.StatusCreated, "")
	expect(t, in.call("PATCH", rowsPath+"/3", aliceToken, `{"body":"changed in the outage"}`), http.StatusOK, "")
	r := expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE")
	assert.NotEmpty(t, r.Header.Get("Retry-After"))
	assert.Contains(t, r.ErrorMessage(), "the object store of the Parquet segments cannot be reached")
	require.Positive(t, p.Requests(), "the flush went to the store")
	assert.Equal(t, 1.0, metricValue(t, in, `kalamdb_flush_total{result="error",trigger="manual"}`))
	assert.Equal(t, 1.0, metricValue(t, in, "kalamdb_cold_tier_failing_tables"))
	assert.Contains(t, in.logs.String(), "cold tier: writing the table's Parquet segments failed")
	expect(t, in.call("GET", "/readyz", "", nil), http.StatusOK, "")
	want := make([]int, 20)
	for i := range want {
		want[i] = i + 1
	}
	assert.Equal(t, want, ids(listAll(t, in, rowsPath, aliceToken, 7)), "the buffer still answers reads")

	p.SetRule(nil)
	waitFor(t, "the retried flush succeeds", func() bool {
		return metricValue(t, in, "kalamdb_cold_tier_failing_tables") == 0
	})
	assert.Positive(t, metricValue(t, in, `kalamdb_flush_total{result="ok",trigger="policy"}`), "the scheduler retried the flush")
	assert.Contains(t, in.logs.String(), "cold tier: the table's flushes work again")

	in.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(in.dir, "segment-cache")))
	in.start(s3test.Env()...)
	p.SetRule(failAll)
	r = expect(t, in.call("GET", rowsPath+"/3", aliceToken, nil), http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE")
	assert.NotEmpty(t, r.Header.Get("Retry-After"))
	expect(t, in.call("GET", rowsPath+"?limit=5", aliceToken, nil), http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE")
	assert.NotContains(t, in.logs.String(), "request failed", "no read answered 500")
	assert.Contains(t, in.logs.String(), "the object store of the segments is unavailable")
	// An insert checks that its key is unique: a key outside every
	// segment's key range needs no segment, one inside needs the segment.
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(100, "in the outage")}}), http.StatusCreated, "")
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(7, "dup?")}}), http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE")
	assert.NotContains(t, in.logs.String(), "storage backend is unavailable", "the backend works: the log names the object store")

	p.SetRule(nil)
	r = expect(t, in.call("GET", rowsPath+"/3", aliceToken, nil), http.StatusOK, "")
	assert.Equal(t, "changed in the outage", r.Body["body"])
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(7, "dup")}}), http.StatusConflict, "DUPLICATE_KEY")
	assert.Equal(t, append(want, 100), ids(listAll(t, in, rowsPath, aliceToken, 7)))
}

// A server whose bucket cannot be reached refuses to start, says why, and
// prints no credentials.
func TestRefusesToStartWithoutItsBucket(t *testing.T) {
	p, u := proxiedBucket(t)
	p.SetRule(failAll)
	in := newInstance(t, "rocksdb", options{segmentsURL: u})
	env := append(s3test.Env(), "AWS_SECRET_ACCESS_KEY=a-very-secret-key")
	code, out := runBinary(t, env, "serve", "--config", in.config)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "storage.segments_url: the object store cannot be reached")
	assert.NotContains(t, out, "a-very-secret-key")
	assert.Positive(t, p.Requests(), "the check went to the store")
}
