// Package e2e drives the real kalamdb-server binary over HTTP: it builds the
// binary once, starts it on a free loopback port with a temporary
// configuration (once per storage backend), waits for /readyz, and checks
// the API from the outside, restarts and crashes included.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

// binary is the kalamdb-server built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kalamdb-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "kalamdb-server")
	build := exec.Command("go", "build", "-o", binary, "./kalamdb-server/cmd/kalamdb-server")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building kalamdb-server:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := s3test.Run(m) // stops the S3 test server, if a test started one
	os.RemoveAll(dir)
	os.Exit(code)
}

// Tokens of the users every test configuration defines.
const (
	adminToken = "e2e-admin-token-0123456789"
	aliceToken = "e2e-alice-token-0123456789"
	bobToken   = "e2e-bob-token-0123456789"
)

// backendCase is one storage backend the suite runs on.
type backendCase struct {
	name    string
	durable bool
}

var allBackends = []backendCase{{"memory", false}, {"rocksdb", true}, {"pebble", true}, {"bbolt", true}}

// forEachBackend runs fn as one subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backendCase)) {
	for _, b := range allBackends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// instance is one kalamdb-server process and the files it uses.
type instance struct {
	t       *testing.T
	backend string
	dir     string // holds config.toml and the data
	config  string
	base    string // http://127.0.0.1:<port> of the running process
	cmd     *exec.Cmd
	logs    *logBuffer
	exited  chan struct{}
	waitErr error
}

// logBuffer collects the process output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// options adjust the configuration of a test server.
type options struct {
	extra   string // appended TOML
	storage string // more keys of the [storage] section
	flush   string // the [flush] section body
	env     []string
	// segmentsURL, when set, replaces parquet_dir with storage.segments_url
	// and a segment cache in the instance's directory.
	segmentsURL string
}

// newInstance writes a configuration for backend in a fresh directory. The
// server is not started.
func newInstance(t *testing.T, backend string, o options) *instance {
	t.Helper()
	dir := t.TempDir()
	// Port 0: the server binds a free port and logs it, so no other
	// process can take the port between choosing and binding it.
	in := &instance{t: t, backend: backend, dir: dir, config: filepath.Join(dir, "config.toml")}
	flush := o.flush
	if flush == "" {
		flush = "default_rows = 100000\ndefault_interval_seconds = 0\n"
	}
	segments := fmt.Sprintf("parquet_dir = %q", filepath.Join(dir, "parquet"))
	if o.segmentsURL != "" {
		segments = fmt.Sprintf("segments_url = %q\n%s\n[storage.segment_cache]\ndir = %q\nmax_bytes = 67108864", o.segmentsURL, o.storage, filepath.Join(dir, "segment-cache"))
	} else {
		segments += "\n" + o.storage
	}
	doc := fmt.Sprintf(`[server]
host = "127.0.0.1"
port = 0
max_body_bytes = 1048576
shutdown_timeout_seconds = 20

[storage]
backend = %q
%s

[storage.rocksdb]
path = %q

[storage.pebble]
path = %q

[storage.bbolt]
path = %q

[flush]
%s
[log]
level = "debug"

[[auth.users]]
id = "admin"
role = "admin"
token = %q

[[auth.users]]
id = "alice"
role = "user"
token = %q

[[auth.users]]
id = "bob"
role = "user"
token_sha256 = %q
%s`, backend, segments, filepath.Join(dir, "rocksdb"), filepath.Join(dir, "pebble"), filepath.Join(dir, "bbolt.db"), flush, adminToken, aliceToken, sha256Hex(bobToken), o.extra)
	require.NoError(t, os.WriteFile(in.config, []byte(doc), 0o600))
	return in
}

// startServer starts a server on backend and waits until it is ready.
func startServer(t *testing.T, backend string, o options) *instance {
	t.Helper()
	in := newInstance(t, backend, o)
	in.start(o.env...)
	return in
}

// start runs the binary and waits for /readyz; the process is killed at
// the end of the test if still running.
func (in *instance) start(env ...string) {
	in.t.Helper()
	in.launch(env...)
	in.waitReady()
}

// launch runs the binary without waiting for readiness.
func (in *instance) launch(env ...string) {
	in.t.Helper()
	// Keep-alive connections to an earlier process are dead; a request must
	// not be sent on one (a POST would not be retried).
	httpClient.CloseIdleConnections()
	in.logs = &logBuffer{}
	in.exited = make(chan struct{})
	cmd := exec.Command(binary, "serve", "--config", in.config)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = in.logs, in.logs
	require.NoError(in.t, cmd.Start())
	in.cmd = cmd
	go func() {
		in.waitErr = cmd.Wait()
		close(in.exited)
	}()
	in.t.Cleanup(func() {
		if in.running() {
			_ = cmd.Process.Kill()
			<-in.exited
		}
		if in.t.Failed() {
			in.t.Logf("server log (%s):\n%s", in.backend, in.logs.String())
		}
	})
}

// cleanEnv is the test's environment without KALAMDB_ variables, so that
// the developer's shell cannot change what the server under test reads.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KALAMDB_") {
			env = append(env, kv)
		}
	}
	return env
}

func (in *instance) running() bool {
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// listenRE finds the address the server logs once it listens.
var listenRE = regexp.MustCompile(`msg="kalamdb-server listening" addr=(\S+)`)

// waitReady waits for the server to log its address, then polls /readyz
// until it answers 200, failing if the process exits first or 30 seconds
// pass.
func (in *instance) waitReady() {
	in.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	in.base = ""
	for in.base == "" {
		if m := listenRE.FindStringSubmatch(in.logs.String()); m != nil {
			in.base = "http://" + m[1]
			break
		}
		select {
		case <-in.exited:
			in.t.Fatalf("kalamdb-server exited before it listened (%v):\n%s", in.waitErr, in.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("kalamdb-server did not listen within 30s:\n%s", in.logs.String())
		}
	}
	for {
		resp, err := client.Get(in.base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-in.exited:
			in.t.Fatalf("kalamdb-server exited before it was ready (%v):\n%s", in.waitErr, in.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("kalamdb-server not ready after 30s:\n%s", in.logs.String())
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop() {
	in.t.Helper()
	require.NoError(in.t, in.cmd.Process.Signal(syscall.SIGTERM))
	in.waitExit(0)
}

// crash kills the process with SIGKILL: no shutdown code runs.
func (in *instance) crash() {
	in.t.Helper()
	require.NoError(in.t, in.cmd.Process.Kill())
	select {
	case <-in.exited:
	case <-time.After(30 * time.Second):
		in.t.Fatal("kalamdb-server did not die on SIGKILL")
	}
}

// waitExit waits for the process to exit with code.
func (in *instance) waitExit(code int) {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(60 * time.Second):
		in.t.Fatalf("kalamdb-server did not exit:\n%s", in.logs.String())
	}
	require.Equal(in.t, code, in.cmd.ProcessState.ExitCode(), "exit code; log:\n%s", in.logs.String())
}

// reply is a decoded response.
type reply struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// ErrorCode returns error.code of an error envelope, or "".
func (r reply) ErrorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// ErrorMessage returns error.message of an error envelope, or "".
func (r reply) ErrorMessage() string {
	e, _ := r.Body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call sends a request; body is marshalled to JSON unless it is a string
// or []byte (sent as is). A JSON content type is set when there is a body.
func (in *instance) call(method, path, token string, body any, headers ...string) reply {
	in.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(in.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, in.base+path, rd)
	require.NoError(in.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := httpClient.Do(req)
	require.NoError(in.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(in.t, err)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(in.t, json.Unmarshal(raw, &r.Body), "response is not JSON: %s", raw)
	}
	return r
}

// expect checks the status of r and, for errors, that the envelope has
// code; it returns r for further checks.
func expect(t *testing.T, r reply, status int, code string) reply {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Raw)
	if code != "" {
		require.Equal(t, code, r.ErrorCode(), "body: %s", r.Raw)
		require.NotEmpty(t, r.ErrorMessage(), "body: %s", r.Raw)
	}
	return r
}
