package etcd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
}

// TestValidateNamesTheKey: every bad value is refused with
// ErrInvalidArgument and an error that names its key.
func TestValidateNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	cases := []struct {
		key  string
		edit func(*Config)
	}{
		{"endpoints", func(c *Config) { c.Endpoints = nil }},
		{"endpoints", func(c *Config) { c.Endpoints = []string{"127.0.0.1:2379"} }},
		{"endpoints", func(c *Config) { c.Endpoints = []string{"http://127.0.0.1"} }},
		{"endpoints", func(c *Config) { c.Endpoints = []string{"tcp://127.0.0.1:2379"} }},
		{"endpoints", func(c *Config) { c.Endpoints = []string{"http://127.0.0.1:2379/v3"} }},
		{"endpoints", func(c *Config) { c.Endpoints = []string{"http://a:2379", "https://b:2379"} }},
		{"prefix", func(c *Config) { c.Prefix = "" }},
		{"prefix", func(c *Config) { c.Prefix = "a/b" }},
		{"prefix", func(c *Config) { c.Prefix = strings.Repeat("p", MaxPrefixLen+1) }},
		{"dial_timeout", func(c *Config) { c.DialTimeout = 5 }},
		{"request_timeout", func(c *Config) { c.RequestTimeout = 0 }},
		{"password", func(c *Config) { c.Password = "x" }},
		{"tls_ca_file", func(c *Config) { c.TLSCAFile = notPEM }},
		{"tls_ca_file", func(c *Config) { c.Endpoints = []string{"https://a:2379"}; c.TLSCAFile = notPEM }},
		{"tls_ca_file", func(c *Config) {
			c.Endpoints = []string{"https://a:2379"}
			c.TLSCAFile = filepath.Join(dir, "missing.pem")
		}},
		{"tls_cert_file", func(c *Config) { c.Endpoints = []string{"https://a:2379"}; c.TLSCertFile = notPEM }},
		{"tls_cert_file", func(c *Config) {
			c.Endpoints = []string{"https://a:2379"}
			c.TLSCertFile, c.TLSKeyFile = notPEM, notPEM
		}},
		{"max_txn_ops", func(c *Config) { c.MaxTxnOps = 15 }},
		{"max_request_bytes", func(c *Config) { c.MaxRequestBytes = 1000 }},
		{"scan_chunk", func(c *Config) { c.ScanChunk = 0 }},
		{"scan_chunk", func(c *Config) { c.ScanChunk = MaxScanChunk + 1 }},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		require.ErrorIs(t, err, store.ErrInvalidArgument, "%s: %v", tc.key, c)
		assert.ErrorContains(t, err, "storage.etcd."+tc.key+": ", "the error names the key")
		_, err = OpenWith(context.Background(), c)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "OpenWith validates first")
	}
}

// TestDecodeSection: the section decodes strictly over the defaults,
// durations as strings.
func TestDecodeSection(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, store.ConfigMap{
		"endpoints":       []any{"http://10.0.0.5:2379", "http://10.0.0.6:2379"},
		"prefix":          "prod",
		"request_timeout": "750ms",
		"max_txn_ops":     256,
	}.Decode(&c))
	require.NoError(t, c.Validate())
	assert.Equal(t, []string{"http://10.0.0.5:2379", "http://10.0.0.6:2379"}, c.Endpoints)
	assert.Equal(t, "prod", c.Prefix)
	assert.Equal(t, Duration(750*time.Millisecond), c.RequestTimeout)
	assert.Equal(t, Duration(5*time.Second), c.DialTimeout, "a key left out keeps its default")
	assert.Equal(t, 128, limits(c).MaxBatchOps)

	err := store.ConfigMap{"request_timeout": "soon"}.Decode(&c)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "request_timeout")
	err = store.ConfigMap{"endpoint": "http://a:2379"}.Decode(&c)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "endpoint")
}

// TestPasswordNeverPrinted: String, GoString and errors leave the password
// out.
func TestPasswordNeverPrinted(t *testing.T) {
	c := DefaultConfig()
	c.Username, c.Password = "kalamdb", "hunter2-secret"
	for _, s := range []string{c.String(), c.GoString(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		assert.NotContains(t, s, "hunter2")
		assert.Contains(t, s, "[redacted]")
	}
	c.Endpoints = []string{"bad"}
	assert.NotContains(t, c.Validate().Error(), "hunter2")
}
