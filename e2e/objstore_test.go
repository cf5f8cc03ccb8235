package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
}
