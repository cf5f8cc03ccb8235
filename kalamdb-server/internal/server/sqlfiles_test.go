package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// With the segments on an object store, SQL queries read copies of the
// segment files kept under the segment cache's directory, in sql-files.
func TestSQLReadsCopiesOfObjectStoreSegments(t *testing.T) {
	ctx := context.Background()
	_, url := s3test.Bucket(t)
	cache := t.TempDir()
	doc := strings.Replace(memoryConfig, `backend = "memory"`, fmt.Sprintf("backend = \"rocksdb\"\nsegments_url = %q", url), 1) +
		fmt.Sprintf("\n[storage.rocksdb]\npath = %q\n\n[storage.segment_cache]\ndir = %q\nmax_bytes = 16777216\n", t.TempDir(), cache)
	s, err := Open(ctx, loadConfig(t, doc, nil), slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(ctx) }()
	sql := func(stmt string) string {
		t.Helper()
		body, err := json.Marshal(map[string]string{"sql": stmt})
		require.NoError(t, err)
		rec := doAs(t, s.Handler(), "test-admin-token", "POST", "/v1/api/sql", string(body))
		require.Equal(t, 200, rec.Code, rec.Body.String())
		return rec.Body.String()
	}
	sql(`CREATE NAMESPACE app; CREATE SHARED TABLE app.m (id BIGINT PRIMARY KEY, w TEXT); INSERT INTO app.m VALUES (1, 'one'), (2, 'two')`)
	sql(`STORAGE FLUSH TABLE app.m`)
	sql(`INSERT INTO app.m VALUES (3, 'three')`)
	assert.Contains(t, sql(`SELECT count(*), max(w) FROM app.m`), `"rows":[[3,"two"]]`)

	var copies []string
	require.NoError(t, filepath.WalkDir(filepath.Join(cache, "sql-files"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			copies = append(copies, filepath.Base(p))
		}
		return err
	}))
	require.Len(t, copies, 1)
	assert.True(t, strings.HasSuffix(copies[0], ".parquet"), copies[0])
}
