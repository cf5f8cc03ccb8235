package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		in := startServer(t, b.name, options{})
		expect(t, in.call("GET", "/healthz", "", nil), 200, "")
		r := expect(t, in.call("GET", "/readyz", "", nil), 200, "")
		assert.Equal(t, b.name, r.Body["backend"])

		r = in.call("GET", "/metrics", "", nil)
		require.Equal(t, 200, r.Status)
		assertMetrics(t, string(r.Raw),
			`kalamdb_http_requests_total{method="GET",route="/readyz",status="200"}`,
			`kalamdb_storage_operations_total{backend="`+b.name+`",op="partition_exists",result="ok"}`,
			"kalamdb_storage_operation_duration_seconds_bucket",
			`kalamdb_flush_total{result="ok",trigger="manual"} 0`)
		in.stop()
		assert.Contains(t, in.logs.String(), "kalamdb-server stopped")
	})
}

// assertMetrics checks that the exposition text has each line prefix,
// without printing the whole text on failure.
func assertMetrics(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		assert.True(t, strings.Contains(text, w), "metrics lack %q", w)
	}
}

func TestMemoryBackendWarnsThatNothingSurvives(t *testing.T) {
	in := startServer(t, "memory", options{})
	assert.Contains(t, in.logs.String(), "nothing survives a restart")
	in.stop()
}

func TestSIGINTStopsCleanly(t *testing.T) {
	in := startServer(t, "rocksdb", options{})
	require.NoError(t, in.cmd.Process.Signal(syscall.SIGINT))
	in.waitExit(0)
	assert.Contains(t, in.logs.String(), "signal=interrupt")
	// The database was closed cleanly and opens again.
	in.start()
	in.stop()
}

// runBinary runs the binary to completion and returns its exit code and
// combined output.
func runBinary(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running %v: %v", args, err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestStartupRefusals(t *testing.T) {
	t.Run("misspelled key names its line", func(t *testing.T) {
		in := newInstance(t, "memory", options{extra: "\n[server.tls]\nenabled = true\n"})
		data, err := os.ReadFile(in.config)
		require.NoError(t, err)
		doc := strings.Replace(string(data), "max_body_bytes", "max_body_byte", 1)
		require.NoError(t, os.WriteFile(in.config, []byte(doc), 0o600))
		code, out := runBinary(t, nil, "serve", "--config", in.config)
		assert.Equal(t, 1, code)
		assert.Contains(t, out, in.config+`:4: server.max_body_byte: unknown key (did you mean "max_body_bytes"?)`)
		assert.Contains(t, out, "server.tls: unknown key")
	})
	t.Run("backend section key", func(t *testing.T) {
		in := newInstance(t, "rocksdb", options{})
		code, out := runBinary(t, []string{"KALAMDB_STORAGE_ROCKSDB_BLOCK_CACHE=64"}, "serve", "--config", in.config)
		assert.Equal(t, 1, code)
		assert.Contains(t, out, "environment variable KALAMDB_STORAGE_ROCKSDB_BLOCK_CACHE: storage.rocksdb.block_cache: unknown key")
	})
	t.Run("unregistered backend lists the known ones", func(t *testing.T) {
		in := newInstance(t, "cassandra", options{})
		code, out := runBinary(t, nil, "serve", "--config", in.config)
		assert.Equal(t, 1, code)
		assert.Regexp(t, `storage backend "cassandra" is not registered; known backends: (\w+, )*memory, (\w+, )*rocksdb`, out)
	})
	t.Run("example token off loopback", func(t *testing.T) {
		in := newInstance(t, "memory", options{})
		data, err := os.ReadFile(in.config)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(in.config, []byte(strings.Replace(string(data), adminToken, "change-me", 1)), 0o600))
		code, out := runBinary(t, nil, "serve", "--config", in.config, "--host", "0.0.0.0")
		assert.Equal(t, 1, code)
		assert.Contains(t, out, `refusing to listen on non-loopback address "0.0.0.0" while user "admin" still has the example token`)
		assert.NotContains(t, out, "change-me")
	})
	t.Run("flags beat the environment", func(t *testing.T) {
		in := newInstance(t, "memory", options{})
		code, out := runBinary(t, []string{"KALAMDB_SERVER_PORT=notanumber"}, "config", "check", "--config", in.config)
		assert.Equal(t, 1, code)
		assert.Contains(t, out, `environment variable KALAMDB_SERVER_PORT: server.port: must be an integer, got "notanumber"`)

		code, out = runBinary(t, []string{"KALAMDB_SERVER_PORT=7001"}, "config", "check", "--config", in.config, "--port", "7002")
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "port = 7002")
		assert.NotContains(t, out, adminToken)
		assert.NotContains(t, out, sha256Hex(bobToken))
	})
}

func TestCommittedConfigIsValid(t *testing.T) {
	code, out := runBinary(t, nil, "config", "check", "--config", "../config.toml")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `storage backend "rocksdb"`)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	assert.Contains(t, out, "path = '"+filepath.Join(root, "data", "rocksdb")+"'", "relative to the file's folder")
	assert.NotContains(t, out, "change-me")
}

// Every file and folder the server creates, its storage engine's and the
// Parquet segments alike, is for its own user alone (mode 0600 or 0700),
// whatever the umask it was started with.
func TestDataFilesArePrivate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		if b.name == "memory" {
			return // nothing on disk but a temporary folder
		}
		in := startServer(t, b.name, options{})
		setupMessages(t, in)
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(1, "private")}}), http.StatusCreated, "")
		expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
		in.stop()
		n := 0
		require.NoError(t, filepath.WalkDir(in.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == in.dir || p == in.config {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			n++
			assert.Zero(t, info.Mode().Perm()&0o077, "%s has mode %04o", p, info.Mode().Perm())
			return nil
		}))
		assert.Greater(t, n, 3, "the walk found the data")
	})
}
