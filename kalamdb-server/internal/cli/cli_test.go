package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
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
	assert.Contains(t, errOut, `storage backend "nosuch" is not registered; known backends: `+strings.Join(backends.Default().Registry().Names(), ", "))
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

func TestVersionFlag(t *testing.T) {
	code, out, _ := run(t, nil, "--version")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^kalamdb-server dev .*go1\.\d+`, out)

	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "v1.2.3", "0123456789ab"
	_, out, _ = run(t, nil, "version")
	assert.Regexp(t, `^kalamdb-server v1\.2\.3 commit 0123456789ab go1\.\d+`, out, "the stamp the Makefile sets")
}

// Every problem comes out at once: the backend sections' and the unknown
// backend's with the file's own, in words and not in Go.
func TestConfigProblemsComeOutTogether(t *testing.T) {
	doc := strings.Replace(goodConfig, `backend = "memory"`, "backend = \"cassandra\"\nparquet_dirr = \"x\"", 1) +
		"\n[storage.rocksdb]\nblock_cache_mb = 0\n"
	p := writeConfig(t, doc)
	code, _, errOut := run(t, nil, "config", "check", "--config", p, "--set", "storage.rocksdb.sync_writes=yes")
	assert.Equal(t, 1, code)
	for _, want := range []string{
		p + `:6: storage.parquet_dirr: unknown key (did you mean "parquet_dir"?)`,
		`storage.backend: storage backend "cassandra" is not registered`,
		`flag --set storage.rocksdb.sync_writes: storage.rocksdb.sync_writes: must be true or false, got string "yes"`,
	} {
		assert.Contains(t, errOut, want)
	}

	code, _, errOut = run(t, nil, "config", "check", "--config", writeConfig(t, goodConfig), "--port", "abc")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `flag --port: server.port: must be an integer, got "abc"`)
	assert.NotContains(t, errOut, "strconv")
}

// config check shows the selected backend's section with its defaults and
// its paths resolved against the file's folder, even when the file has no
// such section; a client's KALAMDB_TOKEN is a warning, not an error.
func TestConfigCheckShowsTheBackendAndItsPaths(t *testing.T) {
	p := writeConfig(t, goodConfig)
	dir := filepath.Dir(p)
	code, out, errOut := run(t, []string{"KALAMDB_TOKEN=abc"}, "config", "check", "--config", p, "--backend", "pebble")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `storage backend "pebble"`)
	assert.Contains(t, out, "# relative paths of the file lead from "+dir)
	assert.Contains(t, out, "# warning: environment variable KALAMDB_TOKEN is not a configuration key")
	assert.Contains(t, out, "[storage.pebble]\n")
	assert.Contains(t, out, "path = '"+filepath.Join(dir, "data", "pebble")+"'")
	assert.Contains(t, out, "parquet_dir = '"+filepath.Join(dir, "data", "parquet")+"'")
}

// A backend from outside the built-in list, given through Env.Backends, is
// listed, checked and opened like the others.
func TestExtraBackendIsLinkedIn(t *testing.T) {
	extra := backends.Backend{Name: "mykv", Durable: true, Summary: "a third party's engine",
		Register: func(r *store.Registry) {
			r.Register("mykv", func(_ context.Context, cfg store.Config) (store.StorageBackend, error) {
				if err := cfg.Decode(&mykvConfig{}); err != nil {
					return nil, err
				}
				return memory.New(), nil
			})
		},
		Decode: backends.DecodeWith(func() mykvConfig { return mykvConfig{Path: "./data/mykv"} })}
	set, err := backends.NewSet(append(backends.Builtin(), extra)...)
	require.NoError(t, err)
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Backends: set,
		Signals: func() (<-chan os.Signal, func()) { return make(chan os.Signal), func() {} },
		Exit:    func(int) { t.Fatal("unexpected exit") }}
	require.Equal(t, 0, Main([]string{"backends"}, env), errb.String())
	assert.Regexp(t, `(?m)^mykv\s+-\s+yes\s+a third party's engine$`, out.String())

	out.Reset()
	p := writeConfig(t, goodConfig)
	require.Equal(t, 0, Main([]string{"config", "check", "--config", p, "--backend", "mykv"}, env), errb.String())
	assert.Contains(t, out.String(), `storage backend "mykv"`)
	assert.Contains(t, out.String(), "[storage.mykv]\npath = '"+filepath.Join(filepath.Dir(p), "data", "mykv")+"'")

	errb.Reset()
	assert.Equal(t, 1, Main([]string{"config", "check", "--config", p, "--backend", "mykv", "--set", "storage.mykv.pth=x"}, env))
	assert.Contains(t, errb.String(), `storage.mykv.pth: unknown key (did you mean "path"?)`)
}

type mykvConfig struct {
	Path string `toml:"path"`
}
