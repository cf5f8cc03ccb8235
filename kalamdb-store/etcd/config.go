package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Limits of the configuration values.
const (
	// MaxPrefixLen is the longest prefix, in bytes.
	MaxPrefixLen = 64
	// DefaultMaxTxnOps is etcd's default --max-txn-ops: the most
	// operations of each branch of one transaction.
	DefaultMaxTxnOps = 128
	// DefaultMaxRequestBytes is etcd's default --max-request-bytes: the
	// largest request it accepts, 1.5 MiB.
	DefaultMaxRequestBytes = 1572864
	// MinMaxRequestBytes is the smallest max_request_bytes accepted: room
	// for the reserve of a batch of max_txn_ops / 2 operations (see
	// Capabilities) and some data.
	MinMaxRequestBytes = 1 << 20
	// MaxScanChunk is the largest scan_chunk.
	MaxScanChunk = 10000
)

// Config is the [storage.etcd] section of config.toml:
//
//	[storage.etcd]
//	endpoints       = ["http://10.0.0.5:2379", "http://10.0.0.6:2379", "http://10.0.0.7:2379"]
//	prefix          = "kalamdb"   # every key of this database lives under it
//	dial_timeout    = "5s"
//	request_timeout = "5s"
//	username        = "kalamdb"   # etcd authentication; empty for none
//	password        = "s3cret"    # never printed by String or in errors
//	tls_ca_file     = "/etc/kalamdb/etcd-ca.pem"    # https endpoints: the CA (system roots otherwise)
//	tls_cert_file   = "/etc/kalamdb/etcd-client.pem" # a client certificate, with tls_key_file
//	tls_key_file    = "/etc/kalamdb/etcd-client-key.pem"
//	max_txn_ops       = 128      # the servers' --max-txn-ops
//	max_request_bytes = 1572864  # the servers' --max-request-bytes
//	scan_chunk      = 256         # keys read per scan round trip
//
// Keys absent from the section keep the values of DefaultConfig. Relative
// paths of the keys ending in _file are resolved by the server against the
// configuration file's folder.
type Config struct {
	// Endpoints are the client URLs of the cluster's members,
	// "http://host:port" or "https://host:port"; the client spreads its
	// requests over them and moves to another when one fails. All use the
	// same scheme.
	Endpoints []string `toml:"endpoints"`
	// Prefix is the namespace of every etcd key of this database, so that
	// one cluster holds several databases: two KalamDB instances with
	// different prefixes do not see each other's partitions, two with the
	// same prefix share them. 1 to MaxPrefixLen bytes of the characters
	// allowed in a partition name (see store.NewPartition).
	Prefix string `toml:"prefix"`
	// DialTimeout bounds connecting to the cluster when the backend opens.
	DialTimeout Duration `toml:"dial_timeout"`
	// RequestTimeout bounds each request (and each round trip of a scan):
	// past it the operation fails with store.ErrUnavailable, whether the
	// cluster has lost its quorum, its leader, or the network.
	RequestTimeout Duration `toml:"request_timeout"`
	// Username and Password authenticate with etcd's own users, when the
	// cluster has authentication enabled. The password never appears in
	// String, GoString or any error of this package.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// TLSCAFile is a PEM file of the certificate authorities that sign the
	// members' certificates; empty means the system roots. Requires https
	// endpoints.
	TLSCAFile string `toml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are a client certificate and its key, for
	// a cluster that asks clients for one (--client-cert-auth). Both or
	// neither; they require https endpoints.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
	// MaxTxnOps is the servers' --max-txn-ops (128 by default): the most
	// operations of each branch of a transaction. A Batch holds at most
	// half as many (Capabilities.MaxBatchOps): each of its operations
	// becomes up to two of the transaction's. Raise it with the servers'.
	MaxTxnOps int `toml:"max_txn_ops"`
	// MaxRequestBytes is the servers' --max-request-bytes (1.5 MiB by
	// default): the largest request. Capabilities.MaxBatchBytes is what is
	// left of it for keys and values once the layout's own bytes are
	// reserved. Raise it with the servers'.
	MaxRequestBytes int `toml:"max_request_bytes"`
	// ScanChunk is how many keys one round trip of a Scan reads, 1 to
	// MaxScanChunk.
	ScanChunk int `toml:"scan_chunk"`
}

// DefaultConfig returns the settings used for keys absent from the
// [storage.etcd] section: one member on 127.0.0.1:2379, prefix "kalamdb",
// 5s to connect and 5s per request, no authentication, etcd's default
// transaction limits (128 operations, 1.5 MiB) and 256 keys per scan round
// trip.
func DefaultConfig() Config {
	return Config{
		Endpoints:       []string{"http://127.0.0.1:2379"},
		Prefix:          "kalamdb",
		DialTimeout:     Duration(5 * time.Second),
		RequestTimeout:  Duration(5 * time.Second),
		MaxTxnOps:       DefaultMaxTxnOps,
		MaxRequestBytes: DefaultMaxRequestBytes,
		ScanChunk:       256,
	}
}

// String describes c for logs, with the password redacted.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("etcd.Config{endpoints=%q prefix=%q dial_timeout=%s request_timeout=%s username=%q password=%q "+
		"tls_ca_file=%q tls_cert_file=%q tls_key_file=%q max_txn_ops=%d max_request_bytes=%d scan_chunk=%d}",
		c.Endpoints, c.Prefix, c.DialTimeout, c.RequestTimeout, c.Username, pw,
		c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile, c.MaxTxnOps, c.MaxRequestBytes, c.ScanChunk)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

func invalid(key, format string, args ...any) error {
	return store.InvalidConfig(Name, key, format, args...)
}

// Validate checks every value of c, including that the TLS files hold what
// they should; the error wraps store.ErrInvalidArgument and names the
// offending key. It does not contact the cluster.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return invalid("endpoints", "is empty; give the client URLs of the cluster's members, such as [\"http://127.0.0.1:2379\"]")
	}
	scheme := ""
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" {
			return invalid("endpoints", "%q is not a client URL such as \"http://127.0.0.1:2379\" or \"https://etcd1:2379\"", ep)
		}
		if u.Path != "" && u.Path != "/" {
			return invalid("endpoints", "%q has a path; give scheme, host and port only", ep)
		}
		if scheme != "" && u.Scheme != scheme {
			return invalid("endpoints", "mixes http and https; every endpoint uses the same scheme")
		}
		scheme = u.Scheme
	}
	if err := validatePrefix(c.Prefix); err != nil {
		return err
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"dial_timeout", c.DialTimeout}, {"request_timeout", c.RequestTimeout}} {
		if d.v < Duration(time.Millisecond) {
			return invalid(d.key, "%s is below 1ms (write durations as strings, such as \"5s\" or \"500ms\")", d.v)
		}
	}
	if c.Password != "" && c.Username == "" {
		return invalid("password", "is set but username is empty")
	}
	if scheme != "https" {
		for _, f := range []struct{ key, v string }{{"tls_ca_file", c.TLSCAFile}, {"tls_cert_file", c.TLSCertFile}, {"tls_key_file", c.TLSKeyFile}} {
			if f.v != "" {
				return invalid(f.key, "is set but the endpoints are http, not https")
			}
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return invalid("tls_cert_file", "and tls_key_file go together: set both or neither")
	}
	if c.MaxTxnOps < 2*store.MinBatchOps {
		return invalid("max_txn_ops", "%d is below %d: a batch holds half of it, and callers count on %d operations at once (store.MinBatchOps); give the servers' --max-txn-ops (128 by default)",
			c.MaxTxnOps, 2*store.MinBatchOps, store.MinBatchOps)
	}
	if c.MaxRequestBytes < MinMaxRequestBytes {
		return invalid("max_request_bytes", "%d is below %d; give the servers' --max-request-bytes (%d by default)",
			c.MaxRequestBytes, MinMaxRequestBytes, DefaultMaxRequestBytes)
	}
	if limits(c).MaxBatchBytes < store.MaxKeySize+1 {
		return invalid("max_request_bytes", "%d leaves no room for a key and a value in a batch of %d operations (max_txn_ops / 2); raise it or lower max_txn_ops",
			c.MaxRequestBytes, c.MaxTxnOps/2)
	}
	if c.ScanChunk < 1 || c.ScanChunk > MaxScanChunk {
		return invalid("scan_chunk", "%d is outside 1 to %d", c.ScanChunk, MaxScanChunk)
	}
	_, err := c.tlsConfig()
	return err
}

func validatePrefix(p string) error {
	if p == "" {
		return invalid("prefix", "is empty")
	}
	if len(p) > MaxPrefixLen {
		return invalid("prefix", "is %d bytes, the limit is %d", len(p), MaxPrefixLen)
	}
	// The prefix follows the partition naming rules, so that it holds no
	// '/', which separates it from the rest of a key: no prefix is then a
	// prefix of another's keys.
	if err := store.ValidatePartitionName(p); err != nil {
		return invalid("prefix", "%q: allowed are ASCII letters, digits, '_', '-', '.' and ':'", p)
	}
	return nil
}

// tlsConfig builds the TLS settings of https endpoints, reading the files.
func (c Config) tlsConfig() (*tls.Config, error) {
	if len(c.Endpoints) == 0 || !strings.HasPrefix(c.Endpoints[0], "https://") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
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
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, invalid("tls_cert_file", "with tls_key_file: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Duration is a time.Duration written in config.toml as a string that
// time.ParseDuration accepts, such as "500ms" or "5s". A bare TOML integer
// would be read as nanoseconds; Validate rejects durations below a
// millisecond, which catches it.
type Duration time.Duration

// UnmarshalText parses a duration such as "5s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"5s\" or \"500ms\": %v", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats d as time.Duration.String does.
func (d Duration) String() string { return time.Duration(d).String() }
