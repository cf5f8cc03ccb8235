package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binary is this package's kalamdb-server, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kalamdb-badger-server-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "kalamdb-server")
	build := exec.Command("go", append([]string{"build", "-o", binary}, append(raceFlag(), ".")...)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kalamdb-server:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// raceFlag returns -race when this test was built with it, so that the
// build of the binary reuses the packages the test's build compiled.
func raceFlag() []string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return []string{"-race"}
			}
		}
	}
	return nil
}

const token = "badger-example-admin-token"

// writeConfig writes a config.toml selecting the Badger backend into dir,
// with the extra TOML appended, and returns its path.
func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	doc := fmt.Sprintf(`[server]
host = "127.0.0.1"
port = 0

[storage]
backend = "badger"
parquet_dir = "parquet"

[storage.badger]
path = "badger"
%s
[[auth.users]]
id = "admin"
role = "admin"
token = %q
`, extra, token)
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	return path
}

// run runs the binary with args and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %v: %v", args, err)
	}
	if exit != nil {
		return string(out), exit.ExitCode()
	}
	return string(out), 0
}

func TestBackendsListsBadger(t *testing.T) {
	out, code := run(t, "backends")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `(?m)^badger\s+-\s+yes\s+embedded Badger`, out)
	assert.Regexp(t, `(?m)^rocksdb\s`, out, "beside the built-in backends")
}

func TestConfigCheckShowsTheBadgerSection(t *testing.T) {
	dir := t.TempDir()
	out, code := run(t, "config", "check", "--config", writeConfig(t, dir, ""))
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `storage backend "badger"`)
	assert.Contains(t, out, fmt.Sprintf("[storage.badger]\nmemtable_mb = 64\npath = '%s'\nsync_writes = true\n",
		filepath.Join(dir, "badger")), "the section with its defaults and the path resolved")

	out, code = run(t, "config", "check", "--config", writeConfig(t, dir, "memtable_mbs = 32"))
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, `storage.badger.memtable_mbs: unknown key (did you mean "memtable_mb"?)`)

	out, code = run(t, "config", "check", "--config", writeConfig(t, dir, "memtable_mb = 4"))
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "config.toml:11: storage.badger.memtable_mb: is 4; use 16 to 1024")
}

// A server on Badger keeps every row across a restart: those flushed to
// Parquet and those still in the Badger buffer (flush.on_shutdown is off,
// so the stop leaves them there).
func TestServeRestartKeepsEveryRow(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "\n[flush]\ndefault_rows = 100000\ndefault_interval_seconds = 0\non_shutdown = false\n")

	s := start(t, config)
	s.call(t, "POST", "/v1/namespaces", `{"name":"app"}`, http.StatusCreated)
	s.call(t, "POST", "/v1/namespaces/app/tables", `{"name":"notes","type":"user",
		"columns":[{"name":"id","type":"int64"},{"name":"body","type":"string"}],"primary_key":"id"}`, http.StatusCreated)
	rows := "/v1/namespaces/app/tables/notes/rows"
	want := map[float64]string{}
	insert := func(from, to int) {
		var batch []map[string]any
		for i := from; i < to; i++ {
			want[float64(i)] = fmt.Sprintf("note %d", i)
			batch = append(batch, map[string]any{"id": i, "body": want[float64(i)]})
		}
		body, err := json.Marshal(map[string]any{"rows": batch})
		require.NoError(t, err)
		s.call(t, "POST", rows, string(body), http.StatusCreated)
	}
	insert(0, 300)
	flushed := s.call(t, "POST", "/v1/namespaces/app/tables/notes/flush", "", http.StatusOK)
	require.Equal(t, 300.0, flushed["rows_flushed"])
	insert(300, 420) // stays in Badger
	s.stop(t)

	s = start(t, config)
	table := s.call(t, "GET", "/v1/namespaces/app/tables/notes", "", http.StatusOK)
	assert.Equal(t, 120.0, table["buffered_rows"], "the buffered rows came back from Badger")
	assert.GreaterOrEqual(t, table["segments"], 1.0, "the flushed rows are in Parquet")
	got := map[float64]string{}
	for after := ""; ; {
		page := s.call(t, "GET", rows+"?limit=100"+after, "", http.StatusOK)
		for _, r := range page["rows"].([]any) {
			row := r.(map[string]any)
			got[row["id"].(float64)] = row["body"].(string)
		}
		next, ok := page["next"].(string)
		if !ok {
			break
		}
		after = "&after=" + url.QueryEscape(next)
	}
	assert.Equal(t, want, got, "every row, read back after the restart")
	s.stop(t)
}

// server is a running kalamdb-server process.
type server struct {
	cmd    *exec.Cmd
	base   string
	logs   *logBuffer
	exited chan struct{}
}

// listening finds the address the server logs once it listens.
var listening = regexp.MustCompile(`msg="kalamdb-server listening" addr=(\S+)`)

// start runs `kalamdb-server serve` on config and waits until /readyz
// answers 200; the process is killed at the end of the test if it still
// runs.
func start(t *testing.T, config string) *server {
	t.Helper()
	s := &server{logs: &logBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(binary, "serve", "--config", config)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	require.NoError(t, s.cmd.Start())
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.base == "" {
			if m := listening.FindStringSubmatch(s.logs.String()); m != nil {
				s.base = "http://" + m[1]
			}
		}
		if s.base != "" {
			if resp, err := http.Get(s.base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s
				}
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("kalamdb-server exited before it was ready:\n%s", s.logs)
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "kalamdb-server not ready within a minute:\n%s", s.logs)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("kalamdb-server did not stop within a minute of SIGTERM:\n%s", s.logs)
	}
	require.Equal(t, 0, s.cmd.ProcessState.ExitCode(), "exit code; log:\n%s", s.logs)
}

// call sends a request as the admin and checks the status; it returns the
// decoded JSON body.
func (s *server) call(t *testing.T, method, path, body string, status int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	var raw bytes.Buffer
	_, err = raw.ReadFrom(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "%s %s: %s", method, path, raw.String())
	if raw.Len() > 0 {
		require.NoError(t, json.Unmarshal(raw.Bytes(), &out))
	}
	return out
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
