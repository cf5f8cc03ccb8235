package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// fileServer is a server run from a configuration file that the test
// rewrites and reloads with SIGHUP.
type fileServer struct {
	*running
	file  string
	level *slog.LevelVar
}

func startFromFile(t *testing.T, doc string) *fileServer {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.toml")
	require.NoError(t, os.WriteFile(file, []byte(doc), 0o600))
	load := func() (*config.Config, error) {
		return config.Load(config.Options{Path: file, KnownSections: backends.Default().Names()})
	}
	cfg, err := load()
	require.NoError(t, err)
	r := &running{logs: &syncBuffer{}, signals: make(chan os.Signal, 2), forced: make(chan struct{}, 1), done: make(chan error, 1)}
	log, level := NewLogger(cfg.Log, r.logs)
	s, err := Open(context.Background(), cfg, log, backends.Default())
	require.NoError(t, err)
	s.ReloadWith(load, level)
	a, err := s.Listen()
	require.NoError(t, err)
	r.addr = a.String()
	go func() { r.done <- s.Run(context.Background(), r.signals, func() { r.forced <- struct{}{} }) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return &fileServer{running: r, file: file, level: level}
}

// reload rewrites the file, sends SIGHUP and waits for the outcome to be
// logged (want is the message).
func (f *fileServer) reload(t *testing.T, doc, want string) {
	t.Helper()
	before := strings.Count(f.logs.String(), want)
	require.NoError(t, os.WriteFile(f.file, []byte(doc), 0o600))
	f.signals <- syscall.SIGHUP
	waitFor(t, func() bool { return strings.Count(f.logs.String(), want) > before })
}

func (f *fileServer) status(t *testing.T, client *http.Client, scheme, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", scheme+"://"+f.addr+"/v1/namespaces", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

const reloadBase = `
[server]
port = 0

[storage]
backend = "memory"

[log]
level = "info"

[[auth.users]]
id = "admin"
role = "admin"
token = "admin-token-0123456789"
`

// SIGHUP reloads the users (a rotated token, a new user) and the log level,
// logs what changed and what needs a restart, and keeps serving; a file
// with a problem changes nothing and says why.
func TestSIGHUPReloadsUsers(t *testing.T) {
	doc := reloadBase + "\n[[auth.users]]\nid = \"bob\"\nrole = \"user\"\ntoken = \"bob-token-1\"\n"
	f := startFromFile(t, doc)
	c := http.DefaultClient
	require.Equal(t, 200, f.status(t, c, "http", "bob-token-1"))
	require.Equal(t, 401, f.status(t, c, "http", "carol-token"))

	rotated := strings.Replace(reloadBase, `level = "info"`, `level = "debug"`, 1) +
		"\n[[auth.users]]\nid = \"bob\"\nrole = \"user\"\ntoken = \"bob-token-2\"\n" +
		"\n[[auth.users]]\nid = \"carol\"\nrole = \"user\"\ntoken = \"carol-token\"\n"
	rotated = strings.Replace(rotated, "port = 0", "port = 0\nmax_page_rows = 10", 1)
	f.reload(t, rotated, "configuration reloaded")
	assert.Equal(t, 401, f.status(t, c, "http", "bob-token-1"), "the old token is gone")
	assert.Equal(t, 200, f.status(t, c, "http", "bob-token-2"))
	assert.Equal(t, 200, f.status(t, c, "http", "carol-token"))
	assert.Equal(t, slog.LevelDebug, f.level.Level())
	logs := f.logs.String()
	assert.Contains(t, logs, "users_added=[carol] users_removed=[] users_changed=[bob] log.level=debug")
	assert.Contains(t, logs, `msg="configuration changes that need a restart were not applied" keys=server.max_page_rows`)
	for _, tok := range []string{"bob-token-1", "bob-token-2", "carol-token"} {
		assert.NotContains(t, logs, tok, "no token is logged")
	}

	f.reload(t, rotated+"\n[flush]\nrowz = 5\n", "configuration reload failed; nothing changed")
	assert.Contains(t, f.logs.String(), `flush.rowz: unknown key`)
	assert.Equal(t, 200, f.status(t, c, "http", "carol-token"), "a bad file changes nothing")

	f.reload(t, strings.Replace(rotated, `token = "carol-token"`, `token = "bob-token-2"`, 1), "configuration reload failed; nothing changed")
	assert.Equal(t, 200, f.status(t, c, "http", "carol-token"), "a file that Check refuses changes nothing")

	f.signals <- syscall.SIGTERM
	require.NoError(t, <-f.done)
	assert.Empty(t, f.forced)
}

// SIGHUP reloads the TLS certificate: new connections get the new one.
func TestSIGHUPReloadsTLSCertificate(t *testing.T) {
	certFile, keyFile, poolA := selfSigned(t)
	doc := strings.Replace(reloadBase, "port = 0", fmt.Sprintf("port = 0\ntls_cert_file = %q\ntls_key_file = %q", certFile, keyFile), 1)
	f := startFromFile(t, doc)
	client := func(pool *x509.CertPool) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	require.Equal(t, 200, f.status(t, client(poolA), "https", "admin-token-0123456789"))

	newCert, newKey, poolB := selfSigned(t)
	for from, to := range map[string]string{newCert: certFile, newKey: keyFile} {
		data, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, data, 0o600))
	}
	f.reload(t, doc, "configuration reloaded")
	assert.Contains(t, f.logs.String(), "tls_certificate=reloaded")
	assert.Equal(t, 200, f.status(t, client(poolB), "https", "admin-token-0123456789"))
	_, err := client(poolA).Get("https://" + f.addr + "/healthz")
	require.Error(t, err, "the old certificate is no longer served")

	// A key pair that does not load changes nothing.
	require.NoError(t, os.WriteFile(keyFile, []byte("not a key"), 0o600))
	f.reload(t, doc, "configuration reload failed; nothing changed")
	assert.Equal(t, 200, f.status(t, client(poolB), "https", "admin-token-0123456789"))
}
