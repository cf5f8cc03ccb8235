package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

var known = []string{"memory", "in-memory", "rocksdb"}

const minimal = `
[[auth.users]]
id = "admin"
role = "admin"
token = "s3cret-admin"
`

func parse(t *testing.T, doc string, opts Options) (*Config, error) {
	t.Helper()
	if opts.KnownSections == nil {
		opts.KnownSections = known
	}
	return Parse("test.toml", []byte(doc), opts)
}

// configErrors returns the individual errors of err, which must be Errors.
func configErrors(t *testing.T, err error) Errors {
	t.Helper()
	require.Error(t, err)
	var es Errors
	require.True(t, errors.As(err, &es), "want config.Errors, got %T: %v", err, err)
	return es
}

func TestCommittedConfigLoads(t *testing.T) {
	c, err := Load(Options{Path: filepath.Join("..", "..", "..", "config.toml"), KnownSections: known})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", c.Server.Host)
	assert.Equal(t, 8080, c.Server.Port)
	assert.Equal(t, "rocksdb", c.Storage.Backend)
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "data", "parquet"), c.Storage.ParquetDir, "relative to the file's folder")
	assert.Equal(t, []string{"path"}, c.Section("rocksdb").Keys())
	assert.Equal(t, 10000, c.Flush.DefaultRows)
	assert.Equal(t, 300, c.Flush.DefaultIntervalSeconds)
	assert.Equal(t, 8, c.Flush.CompactSegments)
	assert.Equal(t, 3600, c.Stream.DefaultTTLSeconds)
	assert.Equal(t, 100000, c.Stream.DefaultMaxBufferRows)
	require.Len(t, c.Auth.Users, 1)
	id, ok := c.UsesExampleToken()
	assert.True(t, ok)
	assert.Equal(t, "admin", id)
}

func TestDefaultsApplyToMissingKeys(t *testing.T) {
	c, err := parse(t, minimal, Options{})
	require.NoError(t, err)
	d := Defaults()
	assert.Equal(t, d.Server, c.Server)
	assert.Equal(t, d.Flush, c.Flush)
	assert.Equal(t, "rocksdb", c.Storage.Backend)
	assert.Equal(t, Origin{Kind: OriginDefault}, c.Origin("server.port"))
}

func TestUnknownKeysNameKeyAndLine(t *testing.T) {
	doc := `[server]
host = "127.0.0.1"
prot = 8080

[flush]
default_rowz = 5
` + minimal + `
[bogus]
x = 1
`
	es := configErrors(t, func() error { _, err := parse(t, doc, Options{}); return err }())
	msgs := es.Error()
	assert.Contains(t, msgs, `test.toml:3: server.prot: unknown key (did you mean "port"?)`)
	assert.Contains(t, msgs, `test.toml:6: flush.default_rowz: unknown key (did you mean "default_rows"?)`)
	assert.Contains(t, msgs, `test.toml:13: bogus: unknown key`)
	assert.Len(t, es, 3)
}

func TestUnknownKeyInUserEntry(t *testing.T) {
	doc := `[[auth.users]]
id = "a"
role = "admin"
token = "t1"

[[auth.users]]
id = "b"
rol = "user"
token = "t2"
`
	_, err := parse(t, doc, Options{})
	es := configErrors(t, err)
	require.NotEmpty(t, es)
	assert.Equal(t, "auth.users[1].rol", es[0].Key)
	assert.Equal(t, 8, es[0].Origin.Line)
	assert.Contains(t, es[0].Msg, `did you mean "role"?`)
}

func TestBadValuesNameTheKey(t *testing.T) {
	cases := []struct {
		doc  string
		key  string
		line int
		msg  string
	}{
		{"[server]\nport = \"eighty\"\n" + minimal, "server.port", 2, `must be an integer, got string "eighty"`},
		{"[server]\nport = 70000\n" + minimal, "server.port", 2, "between 0 and 65535"},
		{"[server]\nhost = 12\n" + minimal, "server.host", 2, "must be a string, got integer 12"},
		{"[flush]\ndefault_rows = 0\n" + minimal, "flush.default_rows", 2, "at least 1"},
		{"[flush]\ncompact_segments = 1\n" + minimal, "flush.compact_segments", 2, "0 (never compact) or at least 2"},
		{"[server]\ntls_cert_file = \"c.pem\"\n" + minimal, "server.tls_key_file", 0, "must be set with server.tls_cert_file"},
		{"[server]\ntls_key_file = \"k.pem\"\n" + minimal, "server.tls_cert_file", 0, "must be set with server.tls_key_file"},
		{"[log]\nlevel = \"loud\"\n" + minimal, "log.level", 2, `got "loud"`},
		{"[log]\nformat = \"xml\"\n" + minimal, "log.format", 2, "text or json"},
		{"[flush]\non_shutdown = \"yes\"\n" + minimal, "flush.on_shutdown", 2, "true or false"},
		{"[server]\nmax_body_bytes = 10\n" + minimal, "server.max_body_bytes", 2, "at least 1024"},
		{"server = 5\n" + minimal, "server", 1, "must be a table"},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			_, err := parse(t, tc.doc, Options{})
			es := configErrors(t, err)
			require.Len(t, es, 1, es.Error())
			assert.Equal(t, tc.key, es[0].Key)
			assert.Equal(t, tc.line, es[0].Origin.Line)
			assert.Contains(t, es[0].Msg, tc.msg)
		})
	}
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	_, err := parse(t, "[server]\nport = = 1\n", Options{})
	es := configErrors(t, err)
	assert.Equal(t, 2, es[0].Origin.Line)
	assert.Contains(t, es.Error(), "test.toml:2")
	assert.Contains(t, es.Error(), "invalid TOML")
}

func TestUsersValidation(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"no users", "[server]\nport = 1\n", "no users are configured"},
		{"bad role", "[[auth.users]]\nid = \"a\"\nrole = \"root\"\ntoken = \"x\"\n", `auth.users[0].role: must be "admin" or "user"; got "root"`},
		{"bad id", "[[auth.users]]\nid = \"a b\"\nrole = \"user\"\ntoken = \"x\"\n", "auth.users[0].id: must be 1 to 64"},
		{"no token", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\n", `user "a" has no token: set token, token_sha256 or token_file`},
		{"both tokens", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken = \"x\"\ntoken_sha256 = \"" + strings.Repeat("a", 64) + "\"\n", "set one of token, token_sha256 and token_file, not several"},
		{"token and file", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken = \"x\"\ntoken_file = \"/run/secrets/a\"\n", "not several"},
		{"padded token", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken = \" x \"\n", `test.toml:4: auth.users[0].token: starts or ends with white space`},
		{"missing token file", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken_file = \"no/such/file\"\n", `test.toml:4: auth.users[0].token_file: cannot read `},
		{"bad digest", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken_sha256 = \"xyz\"\n", "64 hexadecimal digits"},
		{"duplicate id", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken = \"x\"\n[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken = \"y\"\n", `user "a" is already defined by auth.users[0]`},
		{"shared token", "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken = \"x\"\n[[auth.users]]\nid = \"b\"\nrole = \"user\"\ntoken_sha256 = \"" + digestOf("x") + "\"\n", "same token as auth.users[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.doc, Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var errs Errors
			assert.ErrorAs(t, err, &errs, "configuration errors are the server's own, listed with their origins")
		})
	}
}

func TestPrecedenceFlagsOverEnvOverFile(t *testing.T) {
	doc := "[server]\nport = 1111\nhost = \"127.0.0.1\"\n[log]\nlevel = \"warn\"\n" + minimal
	env := []string{"KALAMDB_SERVER_PORT=2222", "KALAMDB_LOG_LEVEL=debug", "PATH=/bin", "KALAMDB_CONFIG=ignored.toml"}

	c, err := parse(t, doc, Options{})
	require.NoError(t, err)
	assert.Equal(t, 1111, c.Server.Port)
	assert.Equal(t, Origin{Kind: OriginFile, File: "test.toml", Line: 2}, c.Origin("server.port"))

	c, err = parse(t, doc, Options{Environ: env})
	require.NoError(t, err)
	assert.Equal(t, 2222, c.Server.Port)
	assert.Equal(t, "debug", c.Log.Level)
	assert.Equal(t, "environment variable KALAMDB_SERVER_PORT", c.Origin("server.port").String())

	c, err = parse(t, doc, Options{Environ: env, Flags: map[string]FlagValue{"server.port": {Flag: "--port", Value: "3333"}}})
	require.NoError(t, err)
	assert.Equal(t, 3333, c.Server.Port)
	assert.Equal(t, "debug", c.Log.Level, "the environment still wins over the file where no flag is given")
	assert.Equal(t, "flag --port", c.Origin("server.port").String())
}

func TestEnvAndFlagErrors(t *testing.T) {
	_, err := parse(t, minimal, Options{Environ: []string{"KALAMDB_SERVER_PORTT=1"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "environment variable KALAMDB_SERVER_PORTT: unknown configuration variable")
	assert.Contains(t, err.Error(), `did you mean "KALAMDB_SERVER_PORT"?`)

	_, err = parse(t, minimal, Options{Environ: []string{"KALAMDB_SERVER_PORT=abc"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `environment variable KALAMDB_SERVER_PORT: server.port: must be an integer, got "abc"`)

	_, err = parse(t, minimal, Options{Flags: map[string]FlagValue{"server.prt": {Flag: "--set", Value: "1"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "flag --set: server.prt: unknown key")

	_, err = parse(t, minimal, Options{Flags: map[string]FlagValue{"storage.nosuch.path": {Flag: "--set", Value: "x"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown storage backend "nosuch"`)
}

type rocksCfg struct {
	Path         string `toml:"path"`
	MaxOpenFiles int    `toml:"max_open_files"`
	SyncWrites   bool   `toml:"sync_writes"`
}

func TestBackendSectionDecodeIsStrictWithLines(t *testing.T) {
	doc := `[storage]
backend = "rocksdb"

[storage.rocksdb]
path = "/tmp/x"
max_open_filez = 10
` + minimal
	c, err := parse(t, doc, Options{})
	require.NoError(t, err, "the server does not know backend keys: the backend's Decode judges them")
	var rc rocksCfg
	err = c.Section("rocksdb").Decode(&rc)
	require.Error(t, err)
	assert.ErrorIs(t, err, store.ErrInvalidArgument, "the backend's decode error is the store's")
	assert.Contains(t, c.Section("rocksdb").Errors(err).Error(), `test.toml:6: storage.rocksdb.max_open_filez: unknown key (did you mean "max_open_files"?)`)

	doc = "[storage.rocksdb]\npath = \"/tmp/x\"\nmax_open_files = \"many\"\n" + minimal
	c, err = parse(t, doc, Options{})
	require.NoError(t, err)
	err = c.Section("rocksdb").Decode(&rc)
	require.Error(t, err)
	assert.Contains(t, c.Section("rocksdb").Errors(err).Error(), `test.toml:3: storage.rocksdb.max_open_files: must be an integer, got string "many"`)

	c, err = parse(t, minimal, Options{Flags: map[string]FlagValue{"storage.rocksdb.sync_writes": {Flag: "--set storage.rocksdb.sync_writes", Value: "yes"}}})
	require.NoError(t, err)
	err = c.Section("rocksdb").Decode(&rc)
	require.Error(t, err)
	assert.Contains(t, c.Section("rocksdb").Errors(err).Error(), `flag --set storage.rocksdb.sync_writes: storage.rocksdb.sync_writes: must be true or false, got string "yes"`)
	assert.NotContains(t, err.Error(), "rocksCfg", "no Go type names")

	doc = "[storage.rocksdb]\npath = \"/tmp/x\"\nmax_open_files = 64\n" + minimal
	c, err = parse(t, doc, Options{Environ: []string{"KALAMDB_STORAGE_ROCKSDB_MAX_OPEN_FILES=128", "KALAMDB_STORAGE_ROCKSDB_SYNC_WRITES=true"}})
	require.NoError(t, err)
	rc = rocksCfg{}
	require.NoError(t, c.Section("rocksdb").Decode(&rc))
	assert.Equal(t, rocksCfg{Path: "/tmp/x", MaxOpenFiles: 128, SyncWrites: true}, rc)

	c, err = parse(t, minimal, Options{Flags: map[string]FlagValue{"storage.rocksdb.path": {Flag: "--set", Value: "/srv/db"}}})
	require.NoError(t, err)
	rc = rocksCfg{}
	require.NoError(t, c.Section("rocksdb").Decode(&rc))
	assert.Equal(t, "/srv/db", rc.Path)

	c, err = parse(t, minimal, Options{Environ: []string{"KALAMDB_STORAGE_ROCKSDB_BOGUS=1"}})
	require.NoError(t, err)
	err = c.Section("rocksdb").Decode(&rc)
	require.Error(t, err)
	assert.Contains(t, c.Section("rocksdb").Errors(err).Error(), "environment variable KALAMDB_STORAGE_ROCKSDB_BOGUS: storage.rocksdb.bogus: unknown key")
}

func TestUnknownBackendSection(t *testing.T) {
	_, err := parse(t, "[storage.rocksbd]\npath = \"x\"\n"+minimal, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `test.toml:1: storage.rocksbd: unknown storage backend section [storage.rocksbd] (did you mean "rocksdb"?)`)
	assert.Contains(t, err.Error(), "known backends: memory, in-memory, rocksdb")
}

func TestExampleTokenDetection(t *testing.T) {
	c, err := parse(t, minimal, Options{})
	require.NoError(t, err)
	_, ok := c.UsesExampleToken()
	assert.False(t, ok)

	doc := "[[auth.users]]\nid = \"ops\"\nrole = \"admin\"\ntoken_sha256 = \"" + strings.ToUpper(digestOf(ExampleToken)) + "\"\n"
	c, err = parse(t, doc, Options{})
	require.NoError(t, err)
	id, ok := c.UsesExampleToken()
	assert.True(t, ok, "the example token is recognised through its digest too")
	assert.Equal(t, "ops", id)
}

func TestEffectiveMasksSecrets(t *testing.T) {
	doc := `[storage.rocksdb]
path = "/tmp/x"
password = "hunter2"

[[auth.users]]
id = "admin"
role = "admin"
token = "very-secret-token"

[[auth.users]]
id = "bob"
role = "user"
token_sha256 = "` + digestOf("bob-token") + `"
`
	c, err := parse(t, doc, Options{Environ: []string{"KALAMDB_SERVER_PORT=9999"}})
	require.NoError(t, err)
	out, err := c.Effective(nil)
	require.NoError(t, err)
	assert.NotContains(t, out, "very-secret-token")
	assert.NotContains(t, out, digestOf("bob-token"))
	assert.NotContains(t, out, "hunter2")
	assert.Contains(t, out, Mask)
	assert.Contains(t, out, "port = 9999")
	assert.Contains(t, out, "# server.port from environment variable KALAMDB_SERVER_PORT")
	assert.Contains(t, out, "path = '/tmp/x'")

	// The rendering is valid TOML with the same values.
	var back map[string]any
	require.NoError(t, toml.Unmarshal([]byte(out), &back))
	assert.Equal(t, int64(9999), back["server"].(map[string]any)["port"])
	users := back["auth"].(map[string]any)["users"].([]any)
	require.Len(t, users, 2)
	assert.Equal(t, Mask, users[0].(map[string]any)["token"])
	assert.Equal(t, Mask, users[1].(map[string]any)["token_sha256"])
	_, hasToken := users[1].(map[string]any)["token"]
	assert.False(t, hasToken, "the unset alternative is left out")
}

func TestLoadResolvesPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kalam.toml")
	require.NoError(t, os.WriteFile(p, []byte(minimal), 0o600))
	assert.Equal(t, p, ResolvePath(Options{Environ: []string{"KALAMDB_CONFIG=" + p}}))
	assert.Equal(t, "x.toml", ResolvePath(Options{Path: "x.toml", Environ: []string{"KALAMDB_CONFIG=" + p}}))
	assert.Equal(t, DefaultPath, ResolvePath(Options{}))

	c, err := Load(Options{Environ: []string{"KALAMDB_CONFIG=" + p}})
	require.NoError(t, err)
	assert.Equal(t, "admin", c.Auth.Users[0].ID)

	_, err = Load(Options{Path: filepath.Join(dir, "missing.toml")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not exist")
}

func TestIsLoopback(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"} {
		assert.True(t, IsLoopback(h), h)
	}
	for _, h := range []string{"0.0.0.0", "", "::", "10.0.0.1", "example.com"} {
		assert.False(t, IsLoopback(h), h)
	}
}

func TestIndexLinesHandlesNesting(t *testing.T) {
	doc := `a = 1
[t]
b.c = 2
inline = { d = 3, e = { f = 4 } }
[[arr]]
x = 1
[[arr]]
x = 2
[arr.sub]
y = 5
`
	lines := indexLines([]byte(doc))
	assert.Equal(t, 1, lines["a"])
	assert.Equal(t, 3, lines["t.b.c"])
	assert.Equal(t, 4, lines["t.inline.e.f"])
	assert.Equal(t, 6, lines["arr[0].x"])
	assert.Equal(t, 8, lines["arr[1].x"])
	assert.Equal(t, 10, lines["arr[1].sub.y"])
	assert.Equal(t, 6, lines["arr.x"])
}

// Relative paths of the file (and defaults) lead from the file's folder,
// wherever the server starts; those of the environment and flags from the
// working directory. Backend sections get the same for their path keys.
func TestRelativePathsFollowTheFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "srv")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "admin.token"), []byte("from-a-file-0123\n"), 0o600))
	doc := `[storage]
parquet_dir = "pq"

[storage.rocksdb]
path = "./db"

[[auth.users]]
id = "admin"
role = "admin"
token_file = "admin.token"
`
	file := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(file, []byte(doc), 0o600))
	c, err := Load(Options{Path: file, KnownSections: known})
	require.NoError(t, err)
	assert.Equal(t, dir, c.Dir())
	assert.Equal(t, filepath.Join(dir, "pq"), c.Storage.ParquetDir)
	assert.Equal(t, digestOf("from-a-file-0123"), c.Auth.Users[0].Digest(), "the token is the file's line, without the newline")
	var rc rocksCfg
	require.NoError(t, c.Section("rocksdb").Decode(&rc))
	assert.Equal(t, filepath.Join(dir, "db"), rc.Path)

	cwd, err := os.Getwd()
	require.NoError(t, err)
	c, err = Load(Options{Path: file, KnownSections: known,
		Environ: []string{"KALAMDB_STORAGE_PARQUET_DIR=here/pq"},
		Flags:   map[string]FlagValue{"storage.rocksdb.path": {Flag: "--set", Value: "here/db"}}})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cwd, "here", "pq"), c.Storage.ParquetDir, "an environment variable is relative to the working directory")
	rc = rocksCfg{}
	require.NoError(t, c.Section("rocksdb").Decode(&rc))
	assert.Equal(t, filepath.Join(cwd, "here", "db"), rc.Path, "so is a flag")

	// A default path is relative to the file too.
	require.NoError(t, os.WriteFile(file, []byte(minimal), 0o600))
	c, err = Load(Options{Path: file, KnownSections: known})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "data", "parquet"), c.Storage.ParquetDir)
	type withDefault struct {
		Path   string `toml:"path"`
		WALDir string `toml:"wal_dir"`
		Name   string `toml:"name"`
		Nested struct {
			CAFile string `toml:"ca_file"`
		} `toml:"tls"`
	}
	wd := withDefault{Path: "./data/x", WALDir: "/abs/wal", Name: "./not-a-path"}
	wd.Nested.CAFile = "ca.pem"
	require.NoError(t, c.Section("rocksdb").Decode(&wd))
	assert.Equal(t, filepath.Join(dir, "data", "x"), wd.Path)
	assert.Equal(t, "/abs/wal", wd.WALDir)
	assert.Equal(t, "./not-a-path", wd.Name, "only path keys are paths")
	assert.Equal(t, filepath.Join(dir, "ca.pem"), wd.Nested.CAFile)
}

func TestTokenFiles(t *testing.T) {
	dir := t.TempDir()
	user := func(file string) string {
		return "[[auth.users]]\nid = \"a\"\nrole = \"user\"\ntoken_file = \"" + file + "\"\n"
	}
	for content, want := range map[string]string{
		"":                 "is empty",
		"\n":               "is empty",
		"one\ntwo\n":       "has more than one line",
		" padded-token \n": "starts or ends with white space",
	} {
		f := filepath.Join(dir, "t")
		require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
		_, err := parse(t, user(f), Options{})
		require.Error(t, err, "%q", content)
		assert.Contains(t, err.Error(), "test.toml:4: auth.users[0].token_file: ")
		assert.Contains(t, err.Error(), want, "%q", content)
	}
	f := filepath.Join(dir, "crlf")
	require.NoError(t, os.WriteFile(f, []byte("windows-token\r\n"), 0o600))
	c, err := parse(t, user(f), Options{})
	require.NoError(t, err)
	assert.Equal(t, digestOf("windows-token"), c.Auth.Users[0].Digest())
	assert.Equal(t, len("windows-token"), c.Auth.Users[0].TokenLen())
}

// A KALAMDB_ variable that is no configuration key and names no section
// (a client's KALAMDB_TOKEN) is a warning; a near miss is still an error.
func TestForeignVariablesDoNotStopTheStart(t *testing.T) {
	c, err := parse(t, minimal, Options{Environ: []string{"KALAMDB_TOKEN=abc", "KALAMDB_URL=http://x"}})
	require.NoError(t, err)
	require.Len(t, c.Warnings(), 2)
	assert.Contains(t, c.Warnings()[0], "environment variable KALAMDB_TOKEN is not a configuration key; the server ignores it")
	for _, v := range []string{"KALAMDB_SERVER_PROT=1", "KALAMDB_SERVR_PORT=1", "KALAMDB_FLUSH_ROWS=1"} {
		_, err := parse(t, minimal, Options{Environ: []string{v}})
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), "unknown configuration variable", v)
	}
}

// A number of seconds beyond what a duration holds is refused, naming the
// key, rather than wrapped around to a short one.
func TestSecondsBeyondADurationAreRefused(t *testing.T) {
	for _, key := range []string{"server.read_timeout_seconds", "flush.default_interval_seconds", "stream.default_ttl_seconds", "stream.eviction_interval_seconds"} {
		_, err := parse(t, minimal, Options{Flags: map[string]FlagValue{key: {Flag: "--set", Value: "18446744074"}}})
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), "flag --set: "+key+": ", key)
		_, err = parse(t, minimal, Options{Flags: map[string]FlagValue{key: {Flag: "--set", Value: "9223372037"}}})
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), key+": is 9223372037; the longest duration the server can hold is 9223372036 seconds", key)
		_, err = parse(t, minimal, Options{Flags: map[string]FlagValue{key: {Flag: "--set", Value: "9223372036"}}})
		require.NoError(t, err, key)
	}
}

// A configuration file or a token file that other users may read, while it
// holds a token, is warned about, naming its mode.
func TestLooseModesAreWarned(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(file, []byte(minimal), 0o644))
	c, err := Load(Options{Path: file, KnownSections: known})
	require.NoError(t, err)
	require.Len(t, c.Warnings(), 1)
	assert.Contains(t, c.Warnings()[0], "holds tokens in clear and other users of this machine may read it (mode 0644): chmod 600 it")

	require.NoError(t, os.Chmod(file, 0o600))
	c, err = Load(Options{Path: file, KnownSections: known})
	require.NoError(t, err)
	assert.Empty(t, c.Warnings())

	tok := filepath.Join(dir, "tok")
	require.NoError(t, os.WriteFile(tok, []byte("a-token-from-a-file\n"), 0o640))
	require.NoError(t, os.WriteFile(file, []byte("[[auth.users]]\nid = \"a\"\nrole = \"admin\"\ntoken_file = \"tok\"\n"), 0o644))
	c, err = Load(Options{Path: file, KnownSections: known})
	require.NoError(t, err)
	require.Len(t, c.Warnings(), 1, "a file without tokens in clear may be read")
	assert.Contains(t, c.Warnings()[0], `token file `+tok+` of user "a" may be read by other users of this machine (mode 0640)`)
}
