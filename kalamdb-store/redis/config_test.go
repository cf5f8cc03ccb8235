package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	assert.Equal(t, "127.0.0.1:6379", c.Addr)
	assert.Equal(t, "kalamdb", c.KeyPrefix)
	assert.Equal(t, 256, c.ScanChunk)
	assert.Equal(t, Duration(5*time.Second), c.DialTimeout)
}

// TestOpenDecodesStrictly opens through a Registry, as the server does.
func TestOpenDecodesStrictly(t *testing.T) {
	r := store.NewRegistry()
	Register(r)
	require.Equal(t, []string{Name}, r.Names())
	ctx := context.Background()

	_, err := r.Open(ctx, Name, store.ConfigMap{"addr": shared.Addr, "adress": "x"})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.Contains(t, err.Error(), "adress", "the unknown key is named")

	_, err = r.Open(ctx, Name, store.ConfigMap{"addr": shared.Addr, "dial_timeout": "soon"})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.Contains(t, err.Error(), "dial_timeout")

	_, err = r.Open(ctx, Name, store.ConfigMap{"addr": shared.Addr, "dial_timeout": int64(5)})
	require.ErrorIs(t, err, store.ErrInvalidArgument, "a bare integer is nanoseconds, far too short")
	require.Contains(t, err.Error(), "dial_timeout")

	_, err = r.Open(ctx, Name, store.ConfigMap{"addr": shared.Addr, "pool_size": "many"})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.Contains(t, err.Error(), "pool_size")

	b, err := r.Open(ctx, Name, store.ConfigMap{
		"addr":          shared.Addr,
		"key_prefix":    freshPrefix(),
		"db":            int64(1),
		"dial_timeout":  "2s",
		"read_timeout":  "1500ms",
		"write_timeout": "1s",
		"pool_size":     int64(4),
		"scan_chunk":    int64(16),
	})
	require.NoError(t, err)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	v, err := b.Get(ctx, p, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	require.NoError(t, b.Close())
}

func TestOpenFromTOML(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, store.DecodeTOML([]byte(`
addr = "10.1.2.3:6380"
username = "kalam"
password = "pw"
db = 3
tls = true
tls_server_name = "redis.internal"
dial_timeout = "750ms"
read_timeout = "2s"
write_timeout = "4s"
pool_size = 12
key_prefix = "prod:eu"
scan_chunk = 1024
`), &c))
	want := Config{
		Addr: "10.1.2.3:6380", Username: "kalam", Password: "pw", DB: 3, TLS: true,
		TLSServerName: "redis.internal", DialTimeout: Duration(750 * time.Millisecond),
		ReadTimeout: Duration(2 * time.Second), WriteTimeout: Duration(4 * time.Second),
		PoolSize: 12, KeyPrefix: "prod:eu", ScanChunk: 1024,
	}
	require.Equal(t, want, c)
	require.NoError(t, c.Validate())
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	cases := []struct {
		key    string
		mutate func(*Config)
	}{
		{"addr", func(c *Config) { c.Addr = "" }},
		{"addr", func(c *Config) { c.Addr = "localhost" }},
		{"addr", func(c *Config) { c.Addr = ":6379" }},
		{"addr", func(c *Config) { c.Addr = "localhost:0" }},
		{"addr", func(c *Config) { c.Addr = "localhost:70000" }},
		{"addr", func(c *Config) { c.Addr = "localhost:redis" }},
		{"db", func(c *Config) { c.DB = -1 }},
		{"tls_ca_file", func(c *Config) { c.TLSCAFile = notPEM }},
		{"tls_ca_file", func(c *Config) { c.TLS, c.TLSCAFile = true, notPEM }},
		{"tls_server_name", func(c *Config) { c.TLSServerName = "x" }},
		{"tls", func(c *Config) { c.Addr = "/run/redis.sock"; c.TLS = true }},
		{"dial_timeout", func(c *Config) { c.DialTimeout = 0 }},
		{"read_timeout", func(c *Config) { c.ReadTimeout = Duration(-time.Second) }},
		{"write_timeout", func(c *Config) { c.WriteTimeout = 0 }},
		{"pool_size", func(c *Config) { c.PoolSize = -1 }},
		{"key_prefix", func(c *Config) { c.KeyPrefix = "" }},
		{"key_prefix", func(c *Config) { c.KeyPrefix = "has space" }},
		{"key_prefix", func(c *Config) { c.KeyPrefix = "a/b" }},
		{"key_prefix", func(c *Config) { c.KeyPrefix = "{tag}" }},
		{"key_prefix", func(c *Config) { c.KeyPrefix = strings.Repeat("k", MaxKeyPrefixLen+1) }},
		{"scan_chunk", func(c *Config) { c.ScanChunk = 0 }},
		{"scan_chunk", func(c *Config) { c.ScanChunk = MaxScanChunk + 1 }},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		c.Password = "hunter2-secret"
		tc.mutate(&c)
		err := c.Validate()
		require.ErrorIs(t, err, store.ErrInvalidArgument, "%s: %s", tc.key, c)
		require.Contains(t, err.Error(), "storage.redis."+tc.key+":", "the error names the key")
		require.NotContains(t, err.Error(), "hunter2")
		_, err = OpenWith(context.Background(), c)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "OpenWith validates: %s", tc.key)
	}

	// tls_ca_file must hold certificates.
	c := DefaultConfig()
	c.TLS, c.TLSCAFile = true, notPEM
	err := c.Validate()
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.Contains(t, err.Error(), "tls_ca_file")
	c.TLSCAFile = filepath.Join(dir, "missing.pem")
	err = c.Validate()
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.Contains(t, err.Error(), "tls_ca_file")

	// A unix socket path is a valid address.
	c = DefaultConfig()
	c.Addr = "/run/redis/redis.sock"
	require.NoError(t, c.Validate())
}

func TestPasswordIsNeverPrinted(t *testing.T) {
	const secret = "hunter2-secret"
	c := DefaultConfig()
	c.Password = secret
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(&c)} {
		require.NotContains(t, s, secret)
		require.Contains(t, s, "[redacted]")
	}

	// Nothing listens on a port that was just free.
	port, err := redistest.FreePort()
	require.NoError(t, err)
	c.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	c.DialTimeout = Duration(time.Second)
	_, err = OpenWith(context.Background(), c)
	require.Error(t, err)
	require.Contains(t, err.Error(), c.Addr, "a connection error names the address")
	require.NotContains(t, err.Error(), secret)
}

func TestAuthentication(t *testing.T) {
	const secret = "s3cret-pass"
	srv := redistest.StartT(t, redistest.Options{Password: secret})
	ctx := context.Background()
	c := DefaultConfig()
	c.Addr = srv.Addr

	_, err := OpenWith(ctx, c)
	require.Error(t, err, "no password")
	require.Contains(t, err.Error(), srv.Addr)

	c.Password = "wrong-" + secret
	_, err = OpenWith(ctx, c)
	require.Error(t, err, "wrong password")
	require.NotContains(t, err.Error(), "wrong-"+secret)

	c.Password = secret
	b, err := OpenWith(ctx, c)
	require.NoError(t, err)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	require.NoError(t, b.Close())
}

func TestUnreachableServer(t *testing.T) {
	port, err := redistest.FreePort()
	require.NoError(t, err)
	c := DefaultConfig()
	c.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	c.DialTimeout = Duration(time.Second)
	_, err = OpenWith(context.Background(), c)
	require.Error(t, err)
	require.Contains(t, err.Error(), "connect at "+c.Addr)
	require.False(t, errors.Is(err, store.ErrInvalidArgument), "a valid config that cannot connect is not invalid input")

	// The context bounds Open too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = OpenWith(ctx, c)
	require.ErrorIs(t, err, context.Canceled)
}

func TestClusterModeIsRefused(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{Cluster: true})
	c := DefaultConfig()
	c.Addr = srv.Addr
	_, err := OpenWith(context.Background(), c)
	require.ErrorIs(t, err, store.ErrUnsupported)
	require.Contains(t, err.Error(), "cluster mode")
}

// TestACLUser connects as an ACL user that may run only the commands the
// backend needs, on the keys of its prefix: the package documentation lists
// them.
func TestACLUser(t *testing.T) {
	extra := append([]string{"--user"}, strings.Fields("kalam on >kalam-pw ~app/* ~{app/* -@all +@read +@write +@scripting +ping +info")...)
	extra = append(extra, "--user")
	extra = append(extra, strings.Fields("other on >other-pw ~elsewhere/* -@all +@read +@write +@scripting +ping")...)
	srv := redistest.StartT(t, redistest.Options{Extra: extra})
	ctx := context.Background()
	c := DefaultConfig()
	c.Addr, c.Username, c.Password, c.KeyPrefix = srv.Addr, "kalam", "kalam-pw", "app"
	b, err := OpenWith(ctx, c)
	require.NoError(t, err)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Batch(ctx, []store.Operation{store.PutOp(p, []byte("a"), []byte("1")), store.PutOp(p, []byte("b"), []byte("2"))}))
	require.NoError(t, b.Delete(ctx, p, []byte("b")))
	v, err := b.Get(ctx, p, []byte("a"))
	require.NoError(t, err)
	require.Equal(t, "1", string(v))
	_, err = b.Get(ctx, p, []byte("b"))
	require.ErrorIs(t, err, store.ErrNotFound)
	it, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.True(t, it.Next())
	require.NoError(t, it.Close())
	parts, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Partition{p}, parts)
	require.NoError(t, b.DropPartition(ctx, p))
	require.NoError(t, b.Close())

	// A user whose keys are elsewhere (and who may not run INFO) connects,
	// and is refused on the first operation.
	c.Username, c.Password = "other", "other-pw"
	b, err = OpenWith(ctx, c)
	require.NoError(t, err)
	defer b.Close()
	err = b.CreatePartition(ctx, p)
	require.Error(t, err)
	require.Contains(t, err.Error(), "NOPERM")
}

// TestUnixSocket connects through a unix socket: addr is its absolute path.
func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	redistest.StartT(t, redistest.Options{Dir: dir, Extra: []string{"--unixsocket", sock, "--unixsocketperm", "700"}})
	ctx := context.Background()
	c := DefaultConfig()
	c.Addr = sock
	b, err := OpenWith(ctx, c)
	require.NoError(t, err)
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("over a unix socket")))
	v, err := b.Get(ctx, p, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "over a unix socket", string(v))
}
