package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func loadConfig(t *testing.T, doc string, flags map[string]config.FlagValue) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(doc), config.Options{KnownSections: backends.Default().Names(), Flags: flags})
	require.NoError(t, err)
	return cfg
}

const memoryConfig = `
[server]
host = "127.0.0.1"
port = 0
shutdown_timeout_seconds = 20

[storage]
backend = "memory"

[[auth.users]]
id = "admin"
role = "admin"
token = "test-admin-token"
`

func TestCheckRefusesUnknownBackendListingKnownNames(t *testing.T) {
	cfg := loadConfig(t, memoryConfig, map[string]config.FlagValue{"storage.backend": {Flag: "--backend", Value: "cassandra"}})
	_, err := Check(cfg, backends.Default())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `flag --backend: storage.backend: storage backend "cassandra" is not registered; known backends: `+strings.Join(backends.Default().Registry().Names(), ", "))
	assert.Contains(t, err.Error(), "in-memory")

	_, err = Open(context.Background(), cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.Error(t, err)
}

func TestCheckAcceptsAlias(t *testing.T) {
	cfg := loadConfig(t, strings.Replace(memoryConfig, `backend = "memory"`, `backend = "in-memory"`, 1), nil)
	name, err := Check(cfg, backends.Default())
	require.NoError(t, err)
	assert.Equal(t, "memory", name)
}

func TestCheckRefusesExampleTokenOffLoopback(t *testing.T) {
	doc := strings.Replace(memoryConfig, "test-admin-token", config.ExampleToken, 1)
	cfg := loadConfig(t, doc, nil)
	_, err := Check(cfg, backends.Default())
	require.NoError(t, err, "the example token is fine on loopback")

	for _, host := range []string{"0.0.0.0", "10.1.2.3", "::"} {
		cfg = loadConfig(t, doc, map[string]config.FlagValue{"server.host": {Flag: "--host", Value: host}})
		_, err = Check(cfg, backends.Default())
		require.Error(t, err, host)
		assert.Contains(t, err.Error(), "refusing to listen on non-loopback address")
		assert.Contains(t, err.Error(), `user "admin"`)
		assert.NotContains(t, err.Error(), config.ExampleToken, "the token itself is never printed")
	}

	cfg = loadConfig(t, memoryConfig, map[string]config.FlagValue{"server.host": {Flag: "--host", Value: "0.0.0.0"}})
	_, err = Check(cfg, backends.Default())
	assert.NoError(t, err, "a real token may listen anywhere")

	short := strings.Replace(memoryConfig, "test-admin-token", "tiny", 1)
	_, err = Check(loadConfig(t, short, nil), backends.Default())
	assert.NoError(t, err, "a short token is fine on loopback")
	_, err = Check(loadConfig(t, short, map[string]config.FlagValue{"server.host": {Flag: "--host", Value: "0.0.0.0"}}), backends.Default())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `test.toml:13: auth.users[0].token: the token of user "admin" is 4 characters; on a non-loopback address (server.host "0.0.0.0") tokens need at least 16`)
	assert.NotContains(t, err.Error(), "tiny")
}

func TestCheckValidatesEveryBackendSection(t *testing.T) {
	doc := memoryConfig + "\n[storage.rocksdb]\npath = \"x\"\nblock_cache_mb = 0\n"
	cfg := loadConfig(t, doc, nil)
	_, err := Check(cfg, backends.Default())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.toml:17: storage.rocksdb.block_cache_mb:")

	doc = memoryConfig + "\n[storage.memory]\nsize = 1\n"
	cfg = loadConfig(t, doc, nil)
	_, err = Check(cfg, backends.Default())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.toml:16: storage.memory.size: unknown key; known keys: max_batch_ops, max_batch_bytes")

	doc = memoryConfig + "\n[storage.memory]\n[storage.in-memory]\n"
	cfg = loadConfig(t, doc, nil)
	_, err = Check(cfg, backends.Default())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `both configure backend "memory"`)
}

func TestMemoryBackendWarnsLoudly(t *testing.T) {
	logs := &syncBuffer{}
	s, err := Open(context.Background(), loadConfig(t, memoryConfig, nil), slog.New(slog.NewTextHandler(logs, nil)), backends.Default())
	require.NoError(t, err)
	require.NoError(t, s.Shutdown(context.Background()))
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "nothing survives a restart")
}

func TestRocksDBBackendOpensFromItsSection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	logs := &syncBuffer{}
	s, err := Open(context.Background(), rocksConfig(t, dir, t.TempDir()), slog.New(slog.NewTextHandler(logs, nil)), backends.Default())
	require.NoError(t, err)
	assert.True(t, s.Backend().Capabilities().Durable)
	require.NoError(t, s.Shutdown(context.Background()))
	_, err = os.Stat(dir)
	assert.NoError(t, err, "the database was created where the section says")
	assert.NotContains(t, logs.String(), "nothing survives")
}

// blocker holds requests to /block until released, so that a test has a
// request in flight while the server shuts down.
type blocker struct {
	next     http.Handler
	entered  chan struct{}
	released chan struct{}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/block" {
		b.next.ServeHTTP(w, r)
		return
	}
	b.entered <- struct{}{}
	<-b.released
	w.WriteHeader(http.StatusAccepted)
}

type running struct {
	server  *Server
	addr    string
	signals chan os.Signal
	forced  chan struct{}
	done    chan error
	logs    *syncBuffer
	block   *blocker
}

// startServer opens and runs a server on a free loopback port.
func startServer(t *testing.T, doc string) *running {
	t.Helper()
	r := &running{logs: &syncBuffer{}}
	s, err := Open(context.Background(), loadConfig(t, doc, nil), slog.New(slog.NewTextHandler(r.logs, nil)), backends.Default())
	require.NoError(t, err)
	r.server = s
	r.block = &blocker{next: s.http.Handler, entered: make(chan struct{}, 1), released: make(chan struct{})}
	s.http.Handler = r.block
	a, err := s.Listen()
	require.NoError(t, err)
	r.addr = a.String()
	r.signals = make(chan os.Signal, 2)
	r.forced = make(chan struct{}, 1)
	r.done = make(chan error, 1)
	go func() { r.done <- s.Run(context.Background(), r.signals, func() { r.forced <- struct{}{} }) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return r
}

// startBlocked sends a request that the server holds until released.
func (r *running) startBlocked(t *testing.T) chan *http.Response {
	t.Helper()
	got := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get("http://" + r.addr + "/block")
		if err != nil {
			got <- nil
			return
		}
		_ = resp.Body.Close()
		got <- resp
	}()
	select {
	case <-r.block.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	return got
}

// A request being handled when the signal comes is finished before the
// server stops; readiness turns to 503 and new connections are refused.
func TestGracefulShutdownFinishesRequestsInFlight(t *testing.T) {
	r := startServer(t, memoryConfig)
	resp, err := http.Get("http://" + r.addr + "/readyz")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, resp.Body.Close())

	got := r.startBlocked(t)
	r.signals <- syscall.SIGTERM
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-r.done:
		t.Fatalf("server stopped with a request in flight: %v", err)
	default:
	}
	close(r.block.released)
	resp = <-got
	require.NotNil(t, resp, "the request in flight got no response")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)

	require.NoError(t, <-r.done)
	assert.Empty(t, r.forced)
	assert.Contains(t, r.logs.String(), "kalamdb-server stopped")
}

func TestSecondSignalForcesExit(t *testing.T) {
	r := startServer(t, memoryConfig)
	got := r.startBlocked(t)
	r.signals <- os.Interrupt
	r.signals <- os.Interrupt
	select {
	case <-r.forced:
	case <-time.After(10 * time.Second):
		t.Fatal("a second signal did not force the exit")
	}
	assert.Contains(t, r.logs.String(), "second signal")
	close(r.block.released)
	<-got
	require.NoError(t, <-r.done)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func rocksConfig(t *testing.T, dbDir, parquetDir string) *config.Config {
	t.Helper()
	doc := strings.Replace(memoryConfig, `backend = "memory"`, `backend = "rocksdb"`+"\nparquet_dir = \""+parquetDir+"\"", 1) +
		"\n[storage.rocksdb]\npath = \"" + dbDir + "\"\n"
	return loadConfig(t, doc, nil)
}

// Two databases given the same storage.parquet_dir each use their own
// directory under it, so neither's recovery touches the other's segments.
func TestEachDatabaseHasItsOwnParquetDir(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	parquet := t.TempDir()
	db1, db2 := t.TempDir(), t.TempDir()

	write := func(dbDir string, body string) string {
		s, err := Open(context.Background(), rocksConfig(t, dbDir, parquet), log, backends.Default())
		require.NoError(t, err)
		h := s.Handler()
		if rec := do(t, h, "GET", "/v1/namespaces/app", ""); rec.Code == 404 {
			require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
			require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"},{"name":"v","type":"string"}],"primary_key":"id"}`).Code)
		}
		require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", body).Code)
		rec := do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "")
		require.Equal(t, 200, rec.Code, rec.Body.String())
		dir := s.flushDir
		require.NoError(t, s.Shutdown(context.Background()))
		return dir
	}
	dir1 := write(db1, `{"rows":[{"id":1,"v":"first"}]}`)
	dir2 := write(db2, `{"rows":[{"id":1,"v":"second"}]}`)
	assert.NotEqual(t, dir1, dir2)
	assert.Equal(t, parquet, filepath.Dir(dir1))
	assert.Equal(t, parquet, filepath.Dir(dir2))
	write(db1, `{"rows":[{"id":2,"v":"first again"}]}`)

	s, err := Open(context.Background(), rocksConfig(t, db1, parquet), log, backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	rec := do(t, s.Handler(), "GET", "/v1/namespaces/app/tables/m/rows", "")
	require.Equal(t, 200, rec.Code)
	assert.Contains(t, rec.Body.String(), `"v":"first"`)
	assert.Contains(t, rec.Body.String(), `"v":"first again"`)
	assert.NotContains(t, rec.Body.String(), "second")
	assert.Equal(t, dir1, s.flushDir, "a database finds its directory again")
}

func TestMemoryBackendUsesATemporaryParquetDir(t *testing.T) {
	logs := &syncBuffer{}
	s, err := Open(context.Background(), loadConfig(t, memoryConfig, nil), slog.New(slog.NewTextHandler(logs, nil)), backends.Default())
	require.NoError(t, err)
	dir := s.tempParquet
	require.NotEmpty(t, dir)
	_, err = os.Stat(dir)
	require.NoError(t, err)
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":1}]}`).Code)
	require.NoError(t, s.Shutdown(context.Background()))
	assert.NotContains(t, logs.String(), "flushed at shutdown", "nothing is flushed into a folder about to be removed")
	rec := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Contains(t, rec.Body.String(), `kalamdb_flush_total{result="ok",trigger="shutdown"} 0`)
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "the temporary directory is removed at shutdown")
}

func do(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return doAs(t, h, "test-admin-token", method, path, body)
}

// doAs is do with the token of another user.
func doAs(t *testing.T, h http.Handler, token, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// GET …/tables/{t} of a user table shows each caller their own buffered
// rows and segments, never another user's; POST …/columns answers the
// same way.
func TestTableStatsAreTheCallersOwn(t *testing.T) {
	doc := memoryConfig + `
[[auth.users]]
id = "bob"
role = "user"
token = "test-bob-token"

[[auth.users]]
id = "carol"
role = "user"
token = "test-carol-token"
`
	s, err := Open(context.Background(), loadConfig(t, doc, nil), slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`).Code)
	rows := "/v1/namespaces/app/tables/m/rows"
	require.Equal(t, 201, do(t, h, "POST", rows, `{"rows":[{"id":1},{"id":2},{"id":3}]}`).Code)
	require.Equal(t, 201, doAs(t, h, "test-bob-token", "POST", rows, `{"rows":[{"id":1}]}`).Code)
	require.Equal(t, 200, do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "").Code)
	require.Equal(t, 201, doAs(t, h, "test-bob-token", "POST", rows, `{"rows":[{"id":2},{"id":3}]}`).Code)

	for token, want := range map[string]string{
		"test-admin-token": `"buffered_rows":0,"segments":1`,
		"test-bob-token":   `"buffered_rows":2,"segments":1`,
		"test-carol-token": `"buffered_rows":0,"segments":0`,
	} {
		rec := doAs(t, h, token, "GET", "/v1/namespaces/app/tables/m", "")
		require.Equal(t, 200, rec.Code)
		assert.Contains(t, rec.Body.String(), want, token)
	}
	rec := do(t, h, "POST", "/v1/namespaces/app/tables/m/columns", `{"name":"note","type":"string","nullable":true}`)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"buffered_rows":0,"segments":1`, "POST …/columns answers the table as GET does")

	// The figures are counted once per statsTTL, however often they are asked.
	s.stats.ttl = time.Hour
	require.Equal(t, 201, doAs(t, h, "test-bob-token", "POST", rows, `{"rows":[{"id":4}]}`).Code)
	rec = doAs(t, h, "test-bob-token", "GET", "/v1/namespaces/app/tables/m", "")
	assert.Contains(t, rec.Body.String(), `"buffered_rows":2,`, "kept figures")
	s.stats.ttl = 0
	rec = doAs(t, h, "test-bob-token", "GET", "/v1/namespaces/app/tables/m", "")
	assert.Contains(t, rec.Body.String(), `"buffered_rows":3,`, "counted again once the TTL has passed")
}

// The scheduler flushes a table once its row limit of versions has been
// written, and not before; a restart counts what the buffer holds.
func TestFlushPolicyByRows(t *testing.T) {
	dbDir, parquet := t.TempDir(), t.TempDir()
	s, err := Open(context.Background(), rocksConfig(t, dbDir, parquet), slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	rec := do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"rows":10,"interval_seconds":0}}`)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	due := func() bool {
		d, err := s.flush.Due(context.Background(), "app", "m")
		require.NoError(t, err)
		return d
	}
	segments := func() int {
		segs, err := s.flush.Segments(context.Background(), "app", "m")
		require.NoError(t, err)
		return len(segs)
	}

	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":1},{"id":2},{"id":3}]}`).Code)
	assert.False(t, due(), "3 of 10 rows written")
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":4},{"id":5},{"id":6},{"id":7},{"id":8},{"id":9},{"id":10}]}`).Code)

	// The scheduler, running on its own, flushes once the limit is reached.
	// A flush lists its segment before it removes the rows from the buffer
	// and takes the count when it ends: wait for the whole flush.
	waitFor(t, func() bool {
		rec = do(t, h, "GET", "/v1/namespaces/app/tables/m", "")
		return segments() == 1 && !due() && strings.Contains(rec.Body.String(), `"buffered_rows":0`)
	})
	assert.Contains(t, rec.Body.String(), `"segments":1`)
}

// After a policy flush, a table with [flush] compact_segments small
// segments is compacted into one.
func TestPolicyFlushesAreCompacted(t *testing.T) {
	cfg := rocksConfig(t, t.TempDir(), t.TempDir())
	cfg.Flush.CompactSegments = 2
	s, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	rec := do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"rows":2,"interval_seconds":0}}`)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	segments := func() []flush.Segment {
		segs, err := s.flush.Segments(context.Background(), "app", "m")
		require.NoError(t, err)
		return segs
	}

	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":1},{"id":2}]}`).Code)
	waitFor(t, func() bool { return len(segments()) == 1 })
	require.Len(t, segments(), 1, "one segment: nothing to compact")
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":3},{"id":4}]}`).Code)
	waitFor(t, func() bool {
		segs := segments()
		return len(segs) == 1 && segs[0].Rows == 4
	})
	rec = do(t, h, "GET", "/v1/namespaces/app/tables/m/rows", "")
	require.Equal(t, 200, rec.Code)
	for _, id := range []string{`"id":1`, `"id":2`, `"id":3`, `"id":4`} {
		assert.Contains(t, rec.Body.String(), id)
	}
}

// Rows buffered before a restart count towards the flush policy after it:
// the scheduler flushes them without a new write.
func TestBufferedRowsCountAfterARestart(t *testing.T) {
	dbDir, parquet := t.TempDir(), t.TempDir()
	cfg := rocksConfig(t, dbDir, parquet)
	cfg.Flush.OnShutdown = false
	s, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	s.flush.Stop()
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"rows":2,"interval_seconds":0}}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":1},{"id":2}]}`).Code)
	require.NoError(t, s.Shutdown(context.Background()))

	s, err = Open(context.Background(), cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	waitFor(t, func() bool {
		segs, err := s.flush.Segments(context.Background(), "app", "m")
		require.NoError(t, err)
		return len(segs) == 1
	})
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kalamdb test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile, pool
}

// With server.tls_cert_file and server.tls_key_file the server speaks
// HTTPS only: a client that trusts the certificate is served, a plain
// HTTP request is refused.
func TestServesHTTPS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	doc := strings.Replace(memoryConfig, "port = 0\n", fmt.Sprintf("port = 0\ntls_cert_file = %q\ntls_key_file = %q\n", certFile, keyFile), 1)
	r := startServer(t, doc)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Get("https://" + r.addr + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.NotNil(t, resp.TLS)
	assert.Contains(t, r.logs.String(), "url=https://"+r.addr)

	resp, err = http.Get("http://" + r.addr + "/healthz")
	if err == nil {
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to the HTTPS port")
	}

	// A missing or mismatched key pair fails at Open, naming the keys.
	other, _, _ := selfSigned(t)
	for _, c := range [][2]string{{certFile, filepath.Join(t.TempDir(), "missing.pem")}, {other, keyFile}} {
		doc := strings.Replace(memoryConfig, "port = 0\n", fmt.Sprintf("port = 0\ntls_cert_file = %q\ntls_key_file = %q\n", c[0], c[1]), 1)
		_, err := Open(context.Background(), loadConfig(t, doc, nil), slog.New(slog.DiscardHandler), backends.Default())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "server.tls_cert_file")
		assert.Contains(t, err.Error(), "loading the certificate")
	}
}

// With its Redis server down, the server answers 503 STORAGE_UNAVAILABLE
// (not a 500) to the requests that need the backend, /readyz says not
// ready, each change of state is logged once, and everything works again
// once Redis is back on its address.
func TestRedisOutageIs503(t *testing.T) {
	dir := t.TempDir()
	srv, err := redistest.Start(redistest.Options{Dir: dir, Persistent: true})
	require.NoError(t, err)
	doc := strings.Replace(memoryConfig, `backend = "memory"`, fmt.Sprintf("backend = \"redis\"\nparquet_dir = %q\n\n[storage.redis]\naddr = %q\ndial_timeout = \"300ms\"", t.TempDir(), srv.Addr), 1)
	logs := &syncBuffer{}
	s, err := Open(context.Background(), loadConfig(t, doc, nil), slog.New(slog.NewTextHandler(logs, nil)), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":1}]}`).Code)
	require.NoError(t, srv.Stop())

	for _, req := range [][3]string{
		{"GET", "/v1/namespaces/app/tables/m/rows", ""},
		{"GET", "/v1/namespaces/app/tables/m/rows/1", ""},
		{"POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":2}]}`},
		{"DELETE", "/v1/namespaces/app/tables/m/rows/1", ""},
	} {
		rec := do(t, h, req[0], req[1], req[2])
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "%v: %s", req, rec.Body.String())
		assert.Contains(t, rec.Body.String(), `"code":"STORAGE_UNAVAILABLE"`, "%v", req)
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	}
	assert.Equal(t, http.StatusServiceUnavailable, do(t, h, "GET", "/readyz", "").Code)
	assert.Equal(t, http.StatusServiceUnavailable, do(t, h, "GET", "/readyz", "").Code)
	assert.Equal(t, 1, strings.Count(logs.String(), "storage backend is unavailable"), logs.String())
	assert.NotContains(t, logs.String(), "level=ERROR")

	port := srv.Addr[strings.LastIndexByte(srv.Addr, ':')+1:]
	var p int
	_, err = fmt.Sscan(port, &p)
	require.NoError(t, err)
	redistest.StartT(t, redistest.Options{Dir: dir, Persistent: true, Port: p})
	assert.Equal(t, http.StatusOK, do(t, h, "GET", "/readyz", "").Code)
	rec := do(t, h, "GET", "/v1/namespaces/app/tables/m/rows", "")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `"id":1`)
	assert.Equal(t, 1, strings.Count(logs.String(), "storage backend answers again"), logs.String())
}

// A memory-backend server removes the temporary Parquet directories that
// servers killed before it (kill -9) could not, and no other.
func TestStaleTemporaryParquetDirsAreRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	mk := func(name, owner string) string {
		dir := filepath.Join(tmp, name)
		require.NoError(t, os.MkdirAll(dir, 0o700))
		if owner != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, tempOwnerFile), []byte(owner), 0o600))
		}
		return dir
	}
	stale := mk(tempParquetPattern+"stale", fmt.Sprint(dead.Process.Pid))
	alive := mk(tempParquetPattern+"alive", fmt.Sprint(os.Getpid()))
	foreign := mk(tempParquetPattern+"foreign", "")
	other := mk("something-else", fmt.Sprint(dead.Process.Pid))

	logs := &syncBuffer{}
	s, err := Open(context.Background(), loadConfig(t, memoryConfig, nil), slog.New(slog.NewTextHandler(logs, nil)), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	_, err = os.Stat(stale)
	assert.True(t, os.IsNotExist(err), "the directory of a dead server is removed")
	for _, d := range []string{alive, foreign, other, s.tempParquet} {
		_, err := os.Stat(d)
		assert.NoError(t, err, "%s is kept", d)
	}
	assert.Contains(t, logs.String(), "removed a temporary Parquet directory left by a server that is gone")
	assert.True(t, strings.HasPrefix(s.tempParquet, tmp))
}

// Inserts racing a DROP TABLE get 201 before it and 404 after it, never a
// 500 (such as a segment file removed under an insert's uniqueness check).
func TestInsertsRacingADropAreNever500(t *testing.T) {
	s, err := Open(context.Background(), rocksConfig(t, t.TempDir(), t.TempDir()), slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	for round := range 5 {
		def := `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"rows":100000,"interval_seconds":0}}`
		require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", def).Code)
		for f := range 3 { // segments for the uniqueness checks to read
			var rows []string
			for i := range 50 {
				rows = append(rows, fmt.Sprintf(`{"id":%d}`, f*1000+i))
			}
			require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[`+strings.Join(rows, ",")+`]}`).Code)
			require.Equal(t, 200, do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "").Code)
		}
		var wg sync.WaitGroup
		statuses := make(chan int, 4000)
		stop := make(chan struct{})
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					code := do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", fmt.Sprintf(`{"rows":[{"id":%d}]}`, 100000+w*10000+i)).Code
					statuses <- code
					if code == 404 || i > 500 {
						return
					}
				}
			})
		}
		require.Equal(t, 204, do(t, h, "DELETE", "/v1/namespaces/app/tables/m", "").Code, "round %d", round)
		close(stop)
		wg.Wait()
		close(statuses)
		for code := range statuses {
			require.Contains(t, []int{201, 404}, code, "round %d", round)
		}
	}
}
