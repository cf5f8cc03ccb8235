package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/backends"
)

func run(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Environ: environ,
		Signals: func() (<-chan os.Signal, func()) { return make(chan os.Signal), func() {} },
		Exit:    func(int) { t.Fatal("unexpected exit") }}
	code = Main(args, env)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kalamdb.toml")
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o600))
	return p
}

const goodConfig = `[server]
port = 9000

[storage]
backend = "memory"

[[auth.users]]
id = "admin"
role = "admin"
token = "a-very-secret-token"
`

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, "version")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^kalamdb-server dev .*go1\.\d+`, out)
}

func TestBackendsListsRegisteredNames(t *testing.T) {
	code, out, _ := run(t, nil, "backends")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^memory\s+in-memory\s+no\s+`, out)
	assert.Regexp(t, `(?m)^rocksdb\s+-\s+yes\s+`, out)
	assert.Regexp(t, `(?m)^pebble\s+-\s+yes\s+`, out)
}

func TestConfigCheckPrintsEffectiveConfigMasked(t *testing.T) {
	p := writeConfig(t, goodConfig)
	code, out, errOut := run(t, []string{"KALAMDB_SERVER_PORT=9100"}, "config", "check", "--config", p, "--log-level", "debug")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, p+" is valid")
	assert.Contains(t, out, "port = 9100")
	assert.Contains(t, out, "level = 'debug'")
	assert.Contains(t, out, "# log.level from flag --log-level")
	assert.Contains(t, out, "# server.port from environment variable KALAMDB_SERVER_PORT")
	assert.NotContains(t, out, "a-very-secret-token")

	// KALAMDB_CONFIG names the file when --config is absent.
	code, out, _ = run(t, []string{"KALAMDB_CONFIG=" + p}, "config", "check")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "port = 9000")
}

func TestConfigCheckReportsErrorsWithLines(t *testing.T) {
	p := writeConfig(t, "[server]\nprot = 1\n"+goodConfig[len("[server]\n"):])
	code, _, errOut := run(t, nil, "config", "check", "--config", p)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "invalid configuration")
	assert.Contains(t, errOut, p+`:2: server.prot: unknown key (did you mean "port"?)`)

	code, _, errOut = run(t, nil, "config", "check", "--config", p+".missing")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "does not exist")
}

func TestServeRefusesUnknownBackend(t *testing.T) {
	p := writeConfig(t, goodConfig)
	code, _, errOut := run(t, nil, "serve", "--config", p, "--backend", "nosuch")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `storage backend "nosuch" is not registered; known backends: `+strings.Join(backends.Registry().Names(), ", "))
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := run(t, nil, "frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unknown command")

	code, _, errOut = run(t, nil, "serve", "--nope")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unknown flag")

	p := writeConfig(t, goodConfig)
	code, _, errOut = run(t, nil, "config", "check", "--config", p, "--set", "novalue")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want section.key=value")
}
