package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// coldStart is the time of the fake clock of openFaulty's servers.
var coldStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// openFaulty opens a server whose Parquet directory goes through a
// fault-injecting file system, on a fake clock, with its flush scheduler
// stopped: the tests run its rounds themselves (roundAt) at the times they
// choose.
func openFaulty(t *testing.T, cfg *config.Config) (*Server, *faultfs.FS, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	var fsys *faultfs.FS
	cfg.Log.Access = false // the tests count the log lines of the cold tier
	s, err := open(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), backends.Default(),
		hooks{parquetFS: func(inner segment.FS) segment.FS {
			fsys = faultfs.New(inner)
			return fsys
		}, clock: clock.NewFake(coldStart)})
	require.NoError(t, err)
	s.flush.Stop()
	return s, fsys, logs
}

// roundAt sets the fake clock to coldStart+d and runs a round of the
// scheduler.
func roundAt(s *Server, d time.Duration) {
	s.hooks.clock.(*clock.Fake).Set(coldStart.Add(d))
	_, _ = s.flush.CheckPolicies(context.Background())
}

// metric returns the value of one series of GET /metrics ("" if absent).
func metric(t *testing.T, h http.Handler, series string) string {
	t.Helper()
	rec := do(t, h, "GET", "/metrics", "")
	require.Equal(t, 200, rec.Code)
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

type readiness struct {
	Status   string   `json:"status"`
	Degraded bool     `json:"degraded"`
	Problems []string `json:"problems"`
}

func ready(t *testing.T, h http.Handler) readiness {
	t.Helper()
	rec := do(t, h, "GET", "/readyz", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var r readiness
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
	return r
}

// createTable creates shared table app.m (flushed every 2 rows) and
// writes rows 1 to 3.
func createTable(t *testing.T, h http.Handler) {
	t.Helper()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	rec := do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"},{"name":"v","type":"string"}],"primary_key":"id","flush":{"rows":2,"interval_seconds":0}}`)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":1,"v":"a"},{"id":2,"v":"b"},{"id":3,"v":"c"}]}`).Code)
}

// rowCount lists app.m and counts its rows.
func rowCount(t *testing.T, h http.Handler) int {
	t.Helper()
	rec := do(t, h, "GET", "/v1/namespaces/app/tables/m/rows", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var page struct {
		Rows []map[string]any `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	return len(page.Rows)
}

const policyErrors = `kalamdb_flush_total{result="error",trigger="policy"}`

// A Parquet directory that is full: the policy flush fails, the server
// keeps serving reads and writes, /readyz and the metrics say what is
// wrong, the scheduler retries with backoff (logging the change of state
// once, then only at the retries), and the first retry after the space
// returns flushes the rows.
func TestFullParquetDirKeepsTheServerServing(t *testing.T) {
	s, fsys, logs := openFaulty(t, rocksConfig(t, t.TempDir(), t.TempDir()))
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	createTable(t, h)
	assert.Equal(t, "1", metric(t, h, "kalamdb_cold_tier_healthy"))
	assert.Equal(t, "0", metric(t, h, "kalamdb_cold_tier_last_failure_timestamp_seconds"))

	fsys.SetRule(faultfs.FailFrom(1, faultfs.NeedsSpace, syscall.ENOSPC))
	roundAt(s, 0)
	assert.Equal(t, "1", metric(t, h, policyErrors))
	assert.Equal(t, "0", metric(t, h, "kalamdb_cold_tier_healthy"))
	assert.Equal(t, "1", metric(t, h, "kalamdb_cold_tier_failing_tables"))
	assert.NotEqual(t, "0", metric(t, h, "kalamdb_cold_tier_last_failure_timestamp_seconds"))
	r := ready(t, h)
	assert.True(t, r.Degraded)
	assert.Equal(t, "degraded", r.Status)
	require.Len(t, r.Problems, 1)
	assert.Contains(t, r.Problems[0], s.flushDir)
	assert.Contains(t, r.Problems[0], "no space left on device")
	assert.Contains(t, r.Problems[0], "app.m")
	assert.Equal(t, 1, strings.Count(logs.String(), "level=ERROR"), logs.String())
	assert.Contains(t, logs.String(), "no space left on device")
	assert.Contains(t, logs.String(), "seg-") // the file it was writing

	// Reads and writes go on.
	assert.Equal(t, 3, rowCount(t, h))
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":4,"v":"d"}]}`).Code)
	assert.Equal(t, 200, do(t, h, "GET", "/v1/namespaces/app/tables/m/rows/4", "").Code)

	// Backoff: 2 s, then 4 s; nothing is tried or logged in between.
	logged := len(logs.String())
	roundAt(s, time.Second)
	assert.Equal(t, "1", metric(t, h, policyErrors), "not retried before 2 s")
	assert.Equal(t, logged, len(logs.String()), "nothing logged between retries")
	roundAt(s, 2*time.Second)
	assert.Equal(t, "2", metric(t, h, policyErrors))
	roundAt(s, 5*time.Second)
	assert.Equal(t, "2", metric(t, h, policyErrors), "not retried before 2 s + 4 s")
	roundAt(s, 6*time.Second)
	assert.Equal(t, "3", metric(t, h, policyErrors))
	assert.Equal(t, 1, strings.Count(logs.String(), "level=ERROR"), "the change of state is logged once")
	assert.Equal(t, 2, strings.Count(logs.String(), "still failing"))

	// Space again: the next retry flushes everything.
	fsys.SetRule(nil)
	roundAt(s, 14*time.Second)
	assert.Equal(t, "3", metric(t, h, policyErrors))
	assert.Equal(t, "1", metric(t, h, `kalamdb_flush_total{result="ok",trigger="policy"}`))
	assert.Equal(t, "1", metric(t, h, "kalamdb_cold_tier_healthy"))
	assert.Equal(t, "0", metric(t, h, "kalamdb_cold_tier_failing_tables"))
	assert.Equal(t, readiness{Status: "ready"}, ready(t, h))
	assert.Contains(t, logs.String(), "work again")
	rec := do(t, h, "GET", "/v1/namespaces/app/tables/m", "")
	assert.Contains(t, rec.Body.String(), `"buffered_rows":0`)
	assert.Contains(t, rec.Body.String(), `"segments":1`)
	assert.Equal(t, 4, rowCount(t, h))
}

// A panic under a policy flush is recorded like a failure, logged with its
// stack, and the server goes on.
func TestPanicInAPolicyFlushIsContained(t *testing.T) {
	s, fsys, logs := openFaulty(t, rocksConfig(t, t.TempDir(), t.TempDir()))
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	createTable(t, h)
	fsys.SetRule(func(op faultfs.Op, name string) error {
		if op == faultfs.OpCreate {
			panic("file system bug")
		}
		return nil
	})
	roundAt(s, 0)
	assert.Contains(t, logs.String(), "file system bug")
	assert.Contains(t, logs.String(), "stack=")
	assert.Contains(t, logs.String(), "faultfs")
	r := ready(t, h)
	require.Len(t, r.Problems, 1)
	assert.Contains(t, r.Problems[0], "internal error, see the server log")
	assert.Equal(t, 3, rowCount(t, h))

	fsys.SetRule(nil)
	roundAt(s, flush.RetryFirst)
	assert.Equal(t, readiness{Status: "ready"}, ready(t, h))
	assert.Contains(t, do(t, h, "GET", "/v1/namespaces/app/tables/m", "").Body.String(), `"buffered_rows":0`)
}

// A manual flush into a read-only directory answers 500 and marks the
// table failing; a manual flush that works clears it.
func TestManualFlushFailureIsRecorded(t *testing.T) {
	s, fsys, _ := openFaulty(t, rocksConfig(t, t.TempDir(), t.TempDir()))
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	createTable(t, h)
	fsys.SetRule(faultfs.FailFrom(1, faultfs.Writes, syscall.EROFS))
	rec := do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "")
	assert.Equal(t, 500, rec.Code)
	r := ready(t, h)
	require.Len(t, r.Problems, 1)
	assert.Contains(t, r.Problems[0], "read-only file system")

	fsys.SetRule(nil)
	rec = do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, readiness{Status: "ready"}, ready(t, h))
}

// Shutdown with a read-only Parquet directory: the final flush fails and
// is logged, the shutdown itself succeeds, and the rows are still in the
// backend's buffer at the next start, which flushes them.
func TestShutdownWithABrokenParquetDirKeepsTheRowsBuffered(t *testing.T) {
	cfg := rocksConfig(t, t.TempDir(), t.TempDir())
	s, fsys, logs := openFaulty(t, cfg)
	h := s.Handler()
	createTable(t, h)
	fsys.SetRule(faultfs.FailFrom(1, faultfs.Writes, syscall.EROFS))
	require.NoError(t, s.Shutdown(context.Background()))
	assert.Contains(t, logs.String(), "final flush failed")
	assert.Contains(t, logs.String(), "read-only file system")

	s, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	h = s.Handler()
	rec := do(t, h, "GET", "/v1/namespaces/app/tables/m", "")
	assert.Contains(t, rec.Body.String(), `"buffered_rows":3`)
	assert.Contains(t, rec.Body.String(), `"segments":0`)
	assert.Equal(t, 3, rowCount(t, h))
	rec = do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"rows_flushed":3`)
}

// A read-only Parquet directory holding the leftovers of an interrupted
// flush does not keep the server from starting: it warns and serves.
func TestStartsWithAReadOnlyParquetDir(t *testing.T) {
	cfg := rocksConfig(t, t.TempDir(), t.TempDir())
	cfg.Storage.SegmentGCGrace = "0s" // the leftover is garbage at once
	s, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	h := s.Handler()
	createTable(t, h)
	rec := do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	leftover := filepath.Join(s.flushDir, "app", "m", "seg-1-00000000000000000009.parquet.tmp")
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, os.WriteFile(leftover, []byte("half a segment"), 0o644))

	logs := &syncBuffer{}
	s, err = open(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), backends.Default(),
		hooks{parquetFS: func(inner segment.FS) segment.FS {
			fsys := faultfs.New(inner)
			fsys.SetRule(faultfs.FailFrom(1, faultfs.Writes, syscall.EROFS))
			return fsys
		}})
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	assert.Contains(t, logs.String(), "could not be removed")
	assert.Contains(t, logs.String(), "read-only file system")
	assert.Equal(t, 3, rowCount(t, s.Handler()))
	_, err = os.Stat(leftover)
	assert.NoError(t, err, "still there")
}
