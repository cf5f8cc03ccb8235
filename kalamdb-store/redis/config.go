package redis

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Limits of the configuration values.
const (
	// MaxKeyPrefixLen is the longest key_prefix, in bytes.
	MaxKeyPrefixLen = 64
	// MaxScanChunk is the largest scan_chunk: the number of keys one Scan
	// round trip may fetch.
	MaxScanChunk = 4096
)

// Config is the [storage.redis] section of config.toml:
//
//	[storage.redis]
//	addr          = "10.0.0.5:6379"  # host:port, or the absolute path of a unix socket
//	username      = "kalamdb"        # ACL user (Redis 6+); empty for the default user
//	password      = "s3cret"         # never printed by String or in errors
//	db            = 0                # logical database number
//	tls           = true
//	tls_ca_file   = "/etc/kalamdb/redis-ca.pem"  # optional; the system roots otherwise
//	tls_server_name = "redis.internal"          # optional; the host of addr otherwise
//	dial_timeout  = "5s"
//	read_timeout  = "3s"
//	write_timeout = "3s"
//	pool_size     = 20               # 0: 10 connections per CPU
//	key_prefix    = "kalamdb"        # lets several KalamDB instances share one Redis
//	scan_chunk    = 256              # keys fetched per Scan round trip
//
// Keys absent from the section keep the values of DefaultConfig.
type Config struct {
	// Addr is the server address: "host:port" for TCP, or an absolute path
	// ("/run/redis/redis.sock") for a unix socket.
	Addr string `toml:"addr"`
	// Username is the ACL user to authenticate as (Redis 6 and later).
	// Empty means the default user.
	Username string `toml:"username"`
	// Password authenticates the connection; empty means no AUTH. It never
	// appears in String, GoString or any error of this package.
	Password string `toml:"password"`
	// DB is the logical database (SELECT) to use, 0 or more.
	DB int `toml:"db"`
	// TLS connects over TLS.
	TLS bool `toml:"tls"`
	// TLSCAFile is a PEM file of the certificate authorities that sign the
	// server's certificate. Empty means the system roots. Requires TLS.
	TLSCAFile string `toml:"tls_ca_file"`
	// TLSServerName is the name the server's certificate must carry. Empty
	// means the host part of Addr. Requires TLS.
	TLSServerName string `toml:"tls_server_name"`
	// DialTimeout bounds establishing a connection.
	DialTimeout Duration `toml:"dial_timeout"`
	// ReadTimeout bounds waiting for each reply.
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds sending each command.
	WriteTimeout Duration `toml:"write_timeout"`
	// PoolSize is the most connections the backend keeps open; 0 means 10
	// per CPU.
	PoolSize int `toml:"pool_size"`
	// KeyPrefix is the namespace of every Redis key the backend uses. Two
	// KalamDB instances with different prefixes share one Redis database
	// without seeing each other's partitions; two with the same prefix share
	// their data. 1 to MaxKeyPrefixLen bytes of the characters allowed in a
	// partition name (see store.NewPartition).
	KeyPrefix string `toml:"key_prefix"`
	// ScanChunk is how many keys (with their values) one round trip of a
	// Scan fetches, 1 to MaxScanChunk. Larger chunks mean fewer round trips
	// and more memory per open iterator.
	ScanChunk int `toml:"scan_chunk"`
}

// DefaultConfig returns the settings used for keys absent from the
// [storage.redis] section: a server on 127.0.0.1:6379, database 0, no TLS,
// 5s to dial, 3s to read and write, 10 connections per CPU, key prefix
// "kalamdb" and 256 keys per scan round trip.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:6379",
		DialTimeout:  Duration(5 * time.Second),
		ReadTimeout:  Duration(3 * time.Second),
		WriteTimeout: Duration(3 * time.Second),
		KeyPrefix:    "kalamdb",
		ScanChunk:    256,
	}
}

// String describes c for logs, with the password redacted.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("redis.Config{addr=%q username=%q password=%q db=%d tls=%t tls_ca_file=%q tls_server_name=%q "+
		"dial_timeout=%s read_timeout=%s write_timeout=%s pool_size=%d key_prefix=%q scan_chunk=%d}",
		c.Addr, c.Username, pw, c.DB, c.TLS, c.TLSCAFile, c.TLSServerName,
		c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.PoolSize, c.KeyPrefix, c.ScanChunk)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

func invalid(key, format string, args ...any) error {
	return store.InvalidConfig(Name, key, format, args...)
}

// Validate checks every value of c, including that tls_ca_file holds PEM
// certificates; the error wraps store.ErrInvalidArgument and names the
// offending key. It does not contact the server.
func (c Config) Validate() error {
	if c.Addr == "" {
		return invalid("addr", "is empty; give host:port or the absolute path of a unix socket")
	}
	if !strings.HasPrefix(c.Addr, "/") {
		host, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return invalid("addr", "%q is not host:port or an absolute unix socket path: %v", c.Addr, err)
		}
		if host == "" {
			return invalid("addr", "%q has no host", c.Addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return invalid("addr", "%q has port %q; want 1 to 65535", c.Addr, port)
		}
	}
	if c.DB < 0 {
		return invalid("db", "%d is negative", c.DB)
	}
	if !c.TLS {
		if c.TLSCAFile != "" {
			return invalid("tls_ca_file", "is set but tls is false")
		}
		if c.TLSServerName != "" {
			return invalid("tls_server_name", "is set but tls is false")
		}
	}
	if strings.HasPrefix(c.Addr, "/") && c.TLS {
		return invalid("tls", "is true but addr %q is a unix socket", c.Addr)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}} {
		if d.v < Duration(time.Millisecond) {
			return invalid(d.key, "%s is below 1ms (write durations as strings, such as \"3s\" or \"500ms\")", d.v)
		}
	}
	if c.PoolSize < 0 {
		return invalid("pool_size", "%d is negative", c.PoolSize)
	}
	if err := validateKeyPrefix(c.KeyPrefix); err != nil {
		return err
	}
	if c.ScanChunk < 1 || c.ScanChunk > MaxScanChunk {
		return invalid("scan_chunk", "%d is outside 1 to %d", c.ScanChunk, MaxScanChunk)
	}
	_, err := c.tlsConfig()
	return err
}

func validateKeyPrefix(p string) error {
	if p == "" {
		return invalid("key_prefix", "is empty")
	}
	if len(p) > MaxKeyPrefixLen {
		return invalid("key_prefix", "is %d bytes, the limit is %d", len(p), MaxKeyPrefixLen)
	}
	// The prefix follows the partition naming rules, so that it contains
	// neither the '/' that separates it from a partition name nor the braces
	// of a hash tag.
	if err := store.ValidatePartitionName(p); err != nil {
		return invalid("key_prefix", "%q: allowed are ASCII letters, digits, '_', '-', '.' and ':'", p)
	}
	return nil
}

// tlsConfig builds the TLS settings, reading TLSCAFile.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return nil, invalid("addr", "%q is not host:port: %v", c.Addr, err)
		}
		tc.ServerName = host
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, invalid("tls_ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalid("tls_ca_file", "%q holds no PEM certificate", c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Duration is a time.Duration written in config.toml as a string that
// time.ParseDuration accepts, such as "500ms" or "3s". A bare TOML integer
// would be read as nanoseconds; Validate rejects durations below a
// millisecond, which catches it.
type Duration time.Duration

// UnmarshalText parses a duration such as "3s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"3s\" or \"500ms\": %v", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats d as time.Duration.String does.
func (d Duration) String() string { return time.Duration(d).String() }
