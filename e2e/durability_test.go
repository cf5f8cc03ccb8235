package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// snapshot is everything a user can read back from the test tables.
type snapshot struct {
	Alice, Bob, Shared, Events []map[string]any
	Tables                     []any
}

func takeSnapshot(t *testing.T, in *instance) snapshot {
	t.Helper()
	r := expect(t, in.call("GET", "/v1/namespaces/app/tables", adminToken, nil), http.StatusOK, "")
	return snapshot{
		Alice:  listAll(t, in, rowsPath, aliceToken, 7),
		Bob:    listAll(t, in, rowsPath, bobToken, 7),
		Shared: listAll(t, in, "/v1/namespaces/app/tables/settings/rows", aliceToken, 7),
		Events: listAll(t, in, "/v1/namespaces/app/tables/events/rows", aliceToken, 7),
		Tables: r.Body["tables"].([]any),
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	in := startServer(t, "rocksdb", options{})
	setupMessages(t, in)
	expect(t, in.call("POST", "/v1/namespaces/app/tables", adminToken, `{"name":"settings","type":"shared","columns":[{"name":"key","type":"string"},{"name":"value","type":"bytes","nullable":true}],"primary_key":"key"}`), http.StatusCreated, "")
	expect(t, in.call("POST", "/v1/namespaces/app/tables", adminToken, `{"name":"events","type":"stream","columns":[{"name":"kind","type":"string"}],"ttl_seconds":86400}`), http.StatusCreated, "")

	var rows []any
	for i := 1; i <= 50; i++ {
		rows = append(rows, msg(i, fmt.Sprintf("alice %d", i)))
	}
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": rows}), http.StatusCreated, "")
	expect(t, in.call("POST", rowsPath, bobToken, map[string]any{"rows": []any{msg(1, "bob 1")}}), http.StatusCreated, "")
	expect(t, in.call("PATCH", rowsPath+"/10", aliceToken, `{"body":"patched"}`), http.StatusOK, "")
	expect(t, in.call("DELETE", rowsPath+"/20", aliceToken, nil), http.StatusNoContent, "")
	expect(t, in.call("POST", "/v1/namespaces/app/tables/settings/rows", bobToken, `{"rows":[{"key":"k","value":"AAE="}]}`), http.StatusCreated, "")
	expect(t, in.call("POST", "/v1/namespaces/app/tables/events/rows", aliceToken, `{"rows":[{"kind":"login"},{"kind":"logout"}]}`), http.StatusCreated, "")

	before := takeSnapshot(t, in)
	require.Len(t, before.Alice, 49)
	maxSeq := 0.0
	for _, r := range before.Alice {
		maxSeq = max(maxSeq, r["_seq"].(float64))
	}

	in.stop()
	in.start()

	after := takeSnapshot(t, in)
	assert.Equal(t, before, after, "a restart changes nothing a user can read")
	// flush.on_shutdown (the default) moved the buffer to Parquet.
	// Each user sees their own figures.
	for _, token := range []string{aliceToken, bobToken} {
		r := expect(t, in.call("GET", "/v1/namespaces/app/tables/messages", token, nil), http.StatusOK, "")
		assert.Equal(t, 0.0, r.Body["buffered_rows"])
		assert.GreaterOrEqual(t, r.Body["segments"], 1.0, "a segment of the user's own")
	}

	// Sequence numbers keep increasing across the restart.
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(100, "after restart")}}), http.StatusCreated, "")
	r := expect(t, in.call("GET", rowsPath+"/100", aliceToken, nil), http.StatusOK, "")
	assert.Greater(t, r.Body["_seq"].(float64), maxSeq)
	// Keys are still unique across the restart.
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(1, "dup")}}), http.StatusConflict, "DUPLICATE_KEY")
	in.stop()
}

// writeOutcome is what one writer learned about one insert request.
type writeOutcome struct {
	ids   []int
	acked bool // 201 received
}

// TestKill9KeepsAcknowledgedRows kills the server with SIGKILL while
// clients insert, restarts it, and checks that every acknowledged row is
// there, that each request in doubt was applied entirely or not at all, and
// that nothing else appeared.
func TestKill9KeepsAcknowledgedRows(t *testing.T) {
	for _, b := range allBackends {
		if b.durable { // nothing survives a restart of the others
			t.Run(b.name, func(t *testing.T) { kill9KeepsAcknowledgedRows(t, b.name) })
		}
	}
}

func kill9KeepsAcknowledgedRows(t *testing.T, backend string) {
	in := startServer(t, backend, options{})
	expect(t, in.call("POST", "/v1/namespaces", adminToken, `{"name":"app"}`), http.StatusCreated, "")
	// A small flush policy, so that the scheduler moves rows to Parquet
	// while the writers write: acknowledged rows live in both tiers.
	expect(t, in.call("POST", "/v1/namespaces/app/tables", adminToken, strings.Replace(messagesDef, `"rows":10000`, `"rows":200`, 1)), http.StatusCreated, "")

	const writers = 4
	var (
		nextID   atomic.Int64
		ackedN   atomic.Int64
		mu       sync.Mutex
		outcomes []writeOutcome
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	stop := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				size := 1
				if n%2 == 1 {
					size = 5 // bulk requests test all-or-nothing
				}
				o := writeOutcome{}
				var rows []any
				for range size {
					id := int(nextID.Add(1))
					o.ids = append(o.ids, id)
					rows = append(rows, msg(id, fmt.Sprintf("writer %d", w)))
				}
				body, _ := json.Marshal(map[string]any{"rows": rows})
				req, _ := http.NewRequest("POST", in.base+rowsPath, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+aliceToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					o.acked = resp.StatusCode == http.StatusCreated
					if !o.acked {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if err != nil {
					return // the server is gone
				}
				ackedN.Add(int64(len(o.ids)))
			}
		}(w)
	}
	// Let the writers get going and the scheduler flush at least once, then
	// kill the server under them.
	deadline := time.Now().Add(60 * time.Second)
	for {
		require.True(t, time.Now().Before(deadline), "writers made no progress, or nothing was flushed")
		if ackedN.Load() >= 500 {
			r := in.call("GET", "/v1/namespaces/app/tables/messages", aliceToken, nil)
			if segs, _ := r.Body["segments"].(float64); segs >= 1 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.crash()
	close(stop)
	wg.Wait()

	in.start()
	present := map[int]int{}
	for _, r := range listAll(t, in, rowsPath, aliceToken, 1000) {
		present[int(r["id"].(float64))]++
	}
	sent := map[int]bool{}
	acked, doubtful, doubtfulApplied := 0, 0, 0
	for _, o := range outcomes {
		n := 0
		for _, id := range o.ids {
			sent[id] = true
			n += present[id]
		}
		if o.acked {
			acked++
			assert.Equal(t, len(o.ids), n, "acknowledged rows %v are missing after kill -9", o.ids)
			continue
		}
		doubtful++
		if n > 0 {
			doubtfulApplied++
		}
		assert.True(t, n == 0 || n == len(o.ids), "request %v in flight at the kill was half applied (%d of %d rows)", o.ids, n, len(o.ids))
	}
	for id, c := range present {
		assert.Equal(t, 1, c, "row %d listed %d times", id, c)
		assert.True(t, sent[id], "row %d was never sent", id)
	}
	r := expect(t, in.call("GET", "/v1/namespaces/app/tables/messages", aliceToken, nil), http.StatusOK, "")
	t.Logf("%d acknowledged requests, %d in doubt at the kill (%d of them applied), %d rows after restart, %v segments",
		acked, doubtful, doubtfulApplied, len(present), r.Body["segments"])
	require.Greater(t, acked, 100)
	in.stop()
}

// TestDatabasesShareAParquetDirSafely switches backends without changing
// storage.parquet_dir: each database keeps its segments in its own
// directory under it, so neither deletes the other's flushed rows.
func TestDatabasesShareAParquetDirSafely(t *testing.T) {
	a := startServer(t, "rocksdb", options{})
	setupMessages(t, a)
	expect(t, a.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(1, "rocksdb")}}), http.StatusCreated, "")
	expect(t, a.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
	a.stop()

	// The same configuration with one line changed: storage.backend.
	data, err := os.ReadFile(a.config)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(a.config, []byte(strings.Replace(string(data), `backend = "rocksdb"`, `backend = "pebble"`, 1)), 0o600))
	a.start()
	setupMessages(t, a)
	expect(t, a.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(1, "pebble")}}), http.StatusCreated, "")
	expect(t, a.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
	a.stop()

	// Back to RocksDB: its flushed row is still there.
	require.NoError(t, os.WriteFile(a.config, data, 0o600))
	a.start()
	r := expect(t, a.call("GET", rowsPath+"/1", aliceToken, nil), http.StatusOK, "")
	assert.Equal(t, "rocksdb", r.Body["body"])
	a.stop()

	dirs, err := os.ReadDir(filepath.Join(a.dir, "parquet"))
	require.NoError(t, err)
	n := 0
	for _, d := range dirs {
		if d.IsDir() {
			n++
		}
	}
	assert.Equal(t, 2, n, "one directory per database")
}
