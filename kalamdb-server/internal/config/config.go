// Package config loads kalamdb-server's configuration: config.toml, then
// KALAMDB_<SECTION>_<KEY> environment variables, then command-line flags,
// over built-in defaults (a later source wins).
//
// Loading is strict. An unknown or misspelled key is an error that names the
// key and where it came from (the file and line, the environment variable or
// the flag); a bad value names its key the same way. Nothing is ignored
// silently.
//
// The [storage.<backend>] sections belong to the storage backends: the server
// does not know their keys. Load keeps them as Sections, each of which is a
// store.Config whose strict Decode reports unknown keys and bad values with
// their line numbers too.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// DefaultPath is the configuration file used when neither --config nor
// KALAMDB_CONFIG names one.
const DefaultPath = "config.toml"

// EnvConfigPath is the environment variable that names the configuration
// file when --config is not given.
const EnvConfigPath = "KALAMDB_CONFIG"

// EnvPrefix starts every environment variable that sets a configuration key:
// KALAMDB_<SECTION>_<KEY>, for example KALAMDB_SERVER_PORT.
const EnvPrefix = "KALAMDB_"

// ExampleToken is the token of the committed example config.toml. The server
// refuses to listen on a non-loopback address while any user still has it.
const ExampleToken = "change-me"

// Config is the whole effective configuration of the server.
type Config struct {
	Server  Server  `toml:"server"`
	Storage Storage `toml:"storage"`
	Flush   Flush   `toml:"flush"`
	Stream  Stream  `toml:"stream"`
	Log     Log     `toml:"log"`
	Auth    Auth    `toml:"auth"`

	// origins records where each key that was set came from, by dotted
	// path ("server.port", "auth.users[0].role").
	origins map[string]Origin
	// knownSections are the backend names [storage.<name>] may use.
	knownSections []string
	// dir is the absolute directory of the configuration file: relative
	// paths of the file (and the defaults) are relative to it.
	dir string
	// warnings are problems that do not stop the server (see Warnings).
	warnings []string
}

// Server is the [server] section: where and how the HTTP API listens.
type Server struct {
	// Host is the address to listen on; a non-loopback host is refused
	// while a user still has ExampleToken.
	Host string `toml:"host"`
	// Port is the TCP port; 0 picks a free one (logged at start).
	Port int `toml:"port"`
	// MaxBodyBytes is the largest request body accepted; a larger one is
	// answered with 413.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// MaxPageRows caps the limit parameter of row listings.
	MaxPageRows int `toml:"max_page_rows"`
	// MaxPageBytes bounds a page of a row listing by the size of its rows:
	// a page ends early (with next) once its rows take that many bytes; a
	// single larger row still comes alone.
	MaxPageBytes int `toml:"max_page_bytes"`
	// ReadTimeoutSeconds bounds reading one whole request.
	ReadTimeoutSeconds int `toml:"read_timeout_seconds"`
	// WriteTimeoutSeconds bounds writing one response.
	WriteTimeoutSeconds int `toml:"write_timeout_seconds"`
	// IdleTimeoutSeconds closes keep-alive connections idle that long.
	IdleTimeoutSeconds int `toml:"idle_timeout_seconds"`
	// MaxConnections bounds the connections open at once; one beyond it is
	// closed as soon as it is accepted.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerClient bounds the connections open at once from one
	// client address.
	MaxConnectionsPerClient int `toml:"max_connections_per_client"`
	// ShutdownTimeoutSeconds is how long a graceful shutdown waits for
	// requests in flight before closing their connections.
	ShutdownTimeoutSeconds int `toml:"shutdown_timeout_seconds"`
	// TLSCertFile and TLSKeyFile, both set, make the server speak HTTPS
	// (TLS 1.2 and later) with that certificate chain and private key, in
	// PEM files; both empty (the default) serve plain HTTP.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
}

// TLS reports whether the server is configured for HTTPS.
func (s Server) TLS() bool { return s.TLSCertFile != "" }

// Relative paths. A path in the configuration file (and a default path) is
// relative to the folder of the file, wherever the server is started from,
// so that `serve --config /srv/kalamdb/config.toml` finds the same data from
// any working directory. A path given in an environment variable or a flag
// is relative to the working directory, as on any command line. Load makes
// every path absolute: the effective configuration, `config check` and the
// start log show where the data is. The keys that hold paths are the
// server's own (storage.parquet_dir, server.tls_cert_file,
// server.tls_key_file, auth.users[].token_file) and, in the backend
// sections, every key called path or ending in _path, _dir or _file.

// IsPathKey reports whether a backend-section key holds a file-system path:
// "path", or a name ending in "_path", "_dir" or "_file".
func IsPathKey(key string) bool {
	return key == "path" || strings.HasSuffix(key, "_path") || strings.HasSuffix(key, "_dir") || strings.HasSuffix(key, "_file")
}

// Dir returns the absolute folder of the configuration file, against which
// its relative paths were resolved.
func (c *Config) Dir() string { return c.dir }

// Warnings returns the problems found that do not stop the server, such as
// environment variables starting with KALAMDB_ that are no configuration
// key; the server logs them at start.
func (c *Config) Warnings() []string { return c.warnings }

// resolvePath makes the path at key absolute: against the configuration
// file's folder when it came from the file or is a default, against the
// working directory when it came from the environment or a flag.
func (c *Config) resolvePath(key string, p *string) {
	*p = resolvePath(*p, c.Origin(key), c.dir)
}

func resolvePath(p string, o Origin, dir string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if o.Kind == OriginEnv || o.Kind == OriginFlag || dir == "" {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	return filepath.Join(dir, p)
}

// Storage is the [storage] section. Its sub-tables, [storage.<backend>], are
// the backends' own settings and are kept in Sections.
type Storage struct {
	// Backend names the storage backend (a registered name or alias).
	Backend string `toml:"backend"`
	// ParquetDir is where flushed Parquet segments are written: the
	// shorthand of SegmentsURL = "file://<dir>".
	ParquetDir string `toml:"parquet_dir"`
	// SegmentsURL is where flushed segments live: file:///<dir>, or an
	// object store (s3://, gs://, azblob://), whose credentials come from
	// its standard chain. Empty means ParquetDir.
	SegmentsURL string `toml:"segments_url"`
	// SegmentGCGrace is how old a segment object that no manifest records
	// must be for the server to remove it as garbage at start (a Go
	// duration: "1h").
	SegmentGCGrace string `toml:"segment_gc_grace"`
	// LeaseTTL is how long the lease of a table's flush, compaction or
	// stream eviction lasts, unless renewed, on a backend several servers
	// share (a Go duration: "15s"); embedded backends take no lease.
	LeaseTTL string `toml:"lease_ttl"`
	// SegmentCache is the local disk cache of segments read from an
	// object store.
	SegmentCache SegmentCache `toml:"segment_cache"`
	// Sections holds every [storage.<name>] table, by name.
	Sections map[string]*Section `toml:"-"`
}

// Flush is the [flush] section: the default flush policy of new tables.
type Flush struct {
	// DefaultRows flushes a table once it buffers that many rows.
	DefaultRows int `toml:"default_rows"`
	// DefaultIntervalSeconds flushes a table that long after its last flush.
	DefaultIntervalSeconds int `toml:"default_interval_seconds"`
	// OnShutdown flushes every table's buffer during a graceful shutdown.
	OnShutdown bool `toml:"on_shutdown"`
	// CompactSegments merges a user's (or shared table's) small Parquet
	// segments once it has that many, after a policy flush; 0 never
	// compacts.
	CompactSegments int `toml:"compact_segments"`
}

// Stream is the [stream] section: the defaults of new stream tables.
type Stream struct {
	// DefaultTTLSeconds evicts stream rows older than that.
	DefaultTTLSeconds int `toml:"default_ttl_seconds"`
	// DefaultMaxBufferRows evicts the oldest rows beyond that many.
	DefaultMaxBufferRows int `toml:"default_max_buffer_rows"`
	// DefaultMaxBufferBytes evicts the oldest rows beyond that many bytes
	// (keys and encoded rows, as the storage backend holds them).
	DefaultMaxBufferBytes int64 `toml:"default_max_buffer_bytes"`
	// EvictionIntervalSeconds is how often expired stream rows are removed.
	EvictionIntervalSeconds int `toml:"eviction_interval_seconds"`
}

// Log is the [log] section.
type Log struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `toml:"level"`
	// Format is "text" or "json".
	Format string `toml:"format"`
	// Access logs a line for every request (method, route, status,
	// duration, user id, client address) at info level.
	Access bool `toml:"access"`
}

// Auth is the [auth] section: the users allowed to call the API.
type Auth struct {
	Users []User `toml:"users"`
}

// User is one [[auth.users]] entry. Exactly one of Token, TokenSHA256 and
// TokenFile is set.
type User struct {
	// ID identifies the user; user tables keep each user's rows apart by it.
	ID string `toml:"id"`
	// Role is "admin" or "user".
	Role string `toml:"role"`
	// Token is the bearer token, in clear.
	Token string `toml:"token"`
	// TokenSHA256 is the hex SHA-256 of the bearer token.
	TokenSHA256 string `toml:"token_sha256"`
	// TokenFile is a file holding the bearer token (one line; a final
	// newline is not part of it), such as a secret mounted under
	// /run/secrets. It is read when the configuration is loaded (and
	// reloaded).
	TokenFile string `toml:"token_file"`

	// fileToken is the token read from TokenFile.
	fileToken string
}

// The roles a user can have.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Defaults returns the configuration used for every key that no source
// sets. It has no users: a configuration without users is refused.
func Defaults() *Config {
	return &Config{
		Server: Server{
			Host:                    "127.0.0.1",
			Port:                    8080,
			MaxBodyBytes:            8 << 20,
			MaxPageRows:             1000,
			MaxPageBytes:            8 << 20,
			MaxConnections:          4096,
			MaxConnectionsPerClient: 256,
			ReadTimeoutSeconds:      30,
			WriteTimeoutSeconds:     60,
			IdleTimeoutSeconds:      120,
			ShutdownTimeoutSeconds:  30,
		},
		Storage: Storage{
			Backend:        "rocksdb",
			ParquetDir:     "./data/parquet",
			SegmentGCGrace: "1h",
			LeaseTTL:       "15s",
			SegmentCache:   SegmentCache{Dir: "./data/segment-cache", MaxBytes: 1 << 30},
			Sections:       map[string]*Section{},
		},
		Flush:  Flush{DefaultRows: 10000, DefaultIntervalSeconds: 300, OnShutdown: true, CompactSegments: 8},
		Stream: Stream{DefaultTTLSeconds: 3600, DefaultMaxBufferRows: 100000, DefaultMaxBufferBytes: 64 << 20, EvictionIntervalSeconds: 10},
		Log:    Log{Level: "info", Format: "text", Access: true},
	}
}

// Origin says where a configuration value came from.
type Origin struct {
	// Kind is OriginDefault, OriginFile, OriginEnv or OriginFlag.
	Kind OriginKind
	// File and Line locate a value read from the configuration file.
	File string
	Line int
	// Name is the environment variable or flag that set the value.
	Name string
}

// OriginKind is the kind of source of a configuration value.
type OriginKind int

// The sources of configuration values, weakest first.
const (
	OriginDefault OriginKind = iota
	OriginFile
	OriginEnv
	OriginFlag
)

// String renders the origin for error messages: "config.toml:12",
// "environment variable KALAMDB_SERVER_PORT", "flag --port", "default".
func (o Origin) String() string {
	switch o.Kind {
	case OriginFile:
		if o.Line > 0 {
			return fmt.Sprintf("%s:%d", o.File, o.Line)
		}
		return o.File
	case OriginEnv:
		return "environment variable " + o.Name
	case OriginFlag:
		return "flag " + o.Name
	}
	return "default"
}

// Origin returns where the value at path ("server.port") came from.
func (c *Config) Origin(path string) Origin {
	if o, ok := c.origins[path]; ok {
		return o
	}
	return Origin{Kind: OriginDefault}
}

// Error is a configuration error: what is wrong with which key, and where the
// key was set.
type Error struct {
	// Key is the dotted key ("server.port"); empty for a file-level error.
	Key string
	// Origin is where the key was set.
	Origin Origin
	// Msg says what is wrong.
	Msg string
}

// Error implements error: "config.toml:3: server.port: must be …".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Origin.Kind != OriginDefault {
		b.WriteString(e.Origin.String())
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, in source order.
type Errors []*Error

// Error joins the messages, one per line.
func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Options are the sources Load reads besides the defaults.
type Options struct {
	// Path is the configuration file. Empty means KALAMDB_CONFIG, then
	// DefaultPath.
	Path string
	// Environ is the environment, as os.Environ returns it. Nil means
	// no environment variables at all (not the process environment).
	Environ []string
	// Flags are key overrides from the command line, by dotted key, with
	// the flag that set each one: {"server.port": {"--port", "9000"}}.
	Flags map[string]FlagValue
	// KnownSections lists the [storage.<name>] sections that may appear
	// (the registered backend names and aliases); any other sub-table of
	// [storage] is an unknown key. Nil accepts every name.
	KnownSections []string
}

// FlagValue is one command-line override.
type FlagValue struct {
	// Flag is how the user wrote it, for messages ("--port").
	Flag string
	// Value is the text given.
	Value string
}

// ResolvePath returns the configuration file Load reads for opts: Path,
// else $KALAMDB_CONFIG, else DefaultPath.
func ResolvePath(opts Options) string {
	if opts.Path != "" {
		return opts.Path
	}
	for _, kv := range opts.Environ {
		if v, ok := strings.CutPrefix(kv, EnvConfigPath+"="); ok && v != "" {
			return v
		}
	}
	return DefaultPath
}

// Load reads the configuration: defaults, then the file, then the
// environment, then flags, and validates the result. Every problem is
// reported, each naming its key and where it was set; the error is then of
// type Errors, and the configuration is returned too, with the problem keys
// left at their defaults, so that a caller can check it further and report
// everything at once. Without a configuration (nil), the file could not be
// read or is not TOML.
func Load(opts Options) (*Config, error) {
	path := ResolvePath(opts)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("configuration file %s does not exist (set another with --config or %s)", path, EnvConfigPath)
		}
		return nil, fmt.Errorf("reading configuration file: %w", err)
	}
	c, err := Parse(path, data, opts)
	if c != nil {
		c.warnLooseModes(path)
	}
	return c, err
}

// warnLooseModes adds a warning for a configuration file, or a token file,
// that other users of the machine may read while it holds a token.
func (c *Config) warnLooseModes(path string) {
	clear := false
	for _, u := range c.Auth.Users {
		clear = clear || u.Token != ""
	}
	if fi, err := os.Stat(path); err == nil && clear && fi.Mode().Perm()&0o077 != 0 {
		c.warnings = append(c.warnings, fmt.Sprintf("configuration file %s holds tokens in clear and other users of this machine may read it (mode %04o): chmod 600 it, or give the tokens as token_sha256 or token_file", path, fi.Mode().Perm()))
	}
	for _, u := range c.Auth.Users {
		if u.TokenFile == "" {
			continue
		}
		if fi, err := os.Stat(u.TokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			c.warnings = append(c.warnings, fmt.Sprintf("token file %s of user %q may be read by other users of this machine (mode %04o): chmod 600 it", u.TokenFile, u.ID, fi.Mode().Perm()))
		}
	}
}

// Parse is Load on a file already read: name is used in messages, and its
// folder is where relative paths of the file lead.
func Parse(name string, data []byte, opts Options) (*Config, error) {
	c := Defaults()
	c.origins = map[string]Origin{}
	c.knownSections = opts.KnownSections
	if dir, err := filepath.Abs(filepath.Dir(name)); err == nil {
		c.dir = dir
	}
	var errs Errors

	doc, err := parseDocument(name, data)
	if err != nil {
		return nil, err
	}
	errs = append(errs, c.applyFile(name, doc, opts.KnownSections)...)
	errs = append(errs, c.applyEnv(opts.Environ)...)
	errs = append(errs, c.applyFlags(opts.Flags)...)
	c.resolvePath("storage.parquet_dir", &c.Storage.ParquetDir)
	c.resolvePath("storage.segment_cache.dir", &c.Storage.SegmentCache.Dir)
	c.resolvePath("server.tls_cert_file", &c.Server.TLSCertFile)
	c.resolvePath("server.tls_key_file", &c.Server.TLSKeyFile)
	for i := range c.Auth.Users {
		c.resolvePath(fmt.Sprintf("auth.users[%d].token_file", i), &c.Auth.Users[i].TokenFile)
	}
	for _, s := range c.Storage.Sections {
		s.dir = c.dir
	}
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

// Listen returns host:port.
func (s Server) Listen() string {
	return net.JoinHostPort(s.Host, fmt.Sprint(s.Port))
}

// IsLoopback reports whether host only accepts connections from this
// machine: "localhost" or a loopback IP. An empty host or an unspecified
// address (0.0.0.0, ::) listens on every interface and is not loopback.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// MaxSeconds is the largest number of seconds a duration holds (about 292
// years): every *_seconds value, of the configuration or of a request, is
// refused beyond it rather than wrapped around.
const MaxSeconds = math.MaxInt64 / int64(time.Second)

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

var hexSHA256 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func (c *Config) errAt(path, format string, args ...any) *Error {
	return &Error{Key: path, Origin: c.Origin(path), Msg: fmt.Sprintf(format, args...)}
}

// validate checks every value; the errors name the key and its origin.
func (c *Config) validate() Errors {
	var errs Errors
	add := func(e *Error) { errs = append(errs, e) }

	if c.Server.Host == "" {
		add(c.errAt("server.host", "must not be empty (use 127.0.0.1 for this machine only, 0.0.0.0 for every interface)"))
	}
	if c.Server.Port < 0 || c.Server.Port > 65535 {
		add(c.errAt("server.port", "must be between 0 and 65535, got %d", c.Server.Port))
	}
	if c.Server.MaxBodyBytes < 1024 {
		add(c.errAt("server.max_body_bytes", "must be at least 1024, got %d", c.Server.MaxBodyBytes))
	}
	if c.Server.MaxPageRows < 1 {
		add(c.errAt("server.max_page_rows", "must be at least 1, got %d", c.Server.MaxPageRows))
	}
	if c.Server.MaxConnections < 1 {
		add(c.errAt("server.max_connections", "must be at least 1, got %d", c.Server.MaxConnections))
	}
	if c.Server.MaxConnectionsPerClient < 1 || c.Server.MaxConnectionsPerClient > c.Server.MaxConnections {
		add(c.errAt("server.max_connections_per_client", "must be from 1 to server.max_connections (%d), got %d", c.Server.MaxConnections, c.Server.MaxConnectionsPerClient))
	}
	if c.Server.MaxPageBytes < 1024 {
		add(c.errAt("server.max_page_bytes", "must be at least 1024, got %d", c.Server.MaxPageBytes))
	}
	for _, k := range []struct {
		path string
		v    int
	}{
		{"server.read_timeout_seconds", c.Server.ReadTimeoutSeconds},
		{"server.write_timeout_seconds", c.Server.WriteTimeoutSeconds},
		{"server.idle_timeout_seconds", c.Server.IdleTimeoutSeconds},
		{"server.shutdown_timeout_seconds", c.Server.ShutdownTimeoutSeconds},
		{"stream.eviction_interval_seconds", c.Stream.EvictionIntervalSeconds},
	} {
		if k.v < 1 {
			add(c.errAt(k.path, "must be at least 1, got %d", k.v))
		}
	}
	for _, k := range []struct {
		path string
		v    int
	}{
		{"server.read_timeout_seconds", c.Server.ReadTimeoutSeconds},
		{"server.write_timeout_seconds", c.Server.WriteTimeoutSeconds},
		{"server.idle_timeout_seconds", c.Server.IdleTimeoutSeconds},
		{"server.shutdown_timeout_seconds", c.Server.ShutdownTimeoutSeconds},
		{"stream.eviction_interval_seconds", c.Stream.EvictionIntervalSeconds},
		{"stream.default_ttl_seconds", c.Stream.DefaultTTLSeconds},
		{"flush.default_interval_seconds", c.Flush.DefaultIntervalSeconds},
	} {
		if int64(k.v) > MaxSeconds {
			add(c.errAt(k.path, "is %d; the longest duration the server can hold is %d seconds (about 292 years)", k.v, MaxSeconds))
		}
	}
	if strings.TrimSpace(c.Storage.Backend) == "" {
		add(c.errAt("storage.backend", "must name a storage backend"))
	}
	if c.Storage.ParquetDir == "" {
		add(c.errAt("storage.parquet_dir", "must not be empty"))
	}
	errs = append(errs, c.validateSegments()...)
	if (c.Server.TLSCertFile == "") != (c.Server.TLSKeyFile == "") {
		key, other := "server.tls_key_file", "server.tls_cert_file"
		if c.Server.TLSKeyFile != "" {
			key, other = other, key
		}
		add(c.errAt(key, "must be set with %s (both for HTTPS, neither for HTTP)", other))
	}
	if c.Flush.CompactSegments < 0 || c.Flush.CompactSegments == 1 {
		add(c.errAt("flush.compact_segments", "must be 0 (never compact) or at least 2, got %d", c.Flush.CompactSegments))
	}
	if c.Flush.DefaultRows < 1 {
		add(c.errAt("flush.default_rows", "must be at least 1, got %d", c.Flush.DefaultRows))
	}
	if c.Flush.DefaultIntervalSeconds < 0 {
		add(c.errAt("flush.default_interval_seconds", "must be 0 (no timed flush) or more, got %d", c.Flush.DefaultIntervalSeconds))
	}
	if c.Stream.DefaultTTLSeconds < 1 {
		add(c.errAt("stream.default_ttl_seconds", "must be at least 1, got %d", c.Stream.DefaultTTLSeconds))
	}
	if c.Stream.DefaultMaxBufferRows < 1 {
		add(c.errAt("stream.default_max_buffer_rows", "must be at least 1, got %d", c.Stream.DefaultMaxBufferRows))
	}
	if c.Stream.DefaultMaxBufferBytes < 1 {
		add(c.errAt("stream.default_max_buffer_bytes", "must be at least 1, got %d", c.Stream.DefaultMaxBufferBytes))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add(c.errAt("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add(c.errAt("log.format", "must be text or json; got %q", c.Log.Format))
	}

	if len(c.Auth.Users) == 0 {
		add(&Error{Key: "auth.users", Msg: "no users are configured: add at least one [[auth.users]] entry with id, role and token (or token_sha256, or token_file)"})
	}
	ids := map[string]int{}
	tokens := map[string]int{}
	for i, u := range c.Auth.Users {
		p := fmt.Sprintf("auth.users[%d]", i)
		if !userIDPattern.MatchString(u.ID) {
			add(c.errAt(p+".id", "must be 1 to 64 letters, digits or '_', '.', '@', '-'; got %q", u.ID))
		} else if j, dup := ids[u.ID]; dup {
			add(c.errAt(p+".id", "user %q is already defined by auth.users[%d]", u.ID, j))
		} else {
			ids[u.ID] = i
		}
		switch u.Role {
		case RoleAdmin, RoleUser:
		default:
			add(c.errAt(p+".role", "must be %q or %q; got %q", RoleAdmin, RoleUser, u.Role))
		}
		set := 0
		for _, v := range []string{u.Token, u.TokenSHA256, u.TokenFile} {
			if v != "" {
				set++
			}
		}
		if u.TokenFile != "" && set == 1 {
			tok, msg := readTokenFile(u.TokenFile)
			if msg != "" {
				add(c.errAt(p+".token_file", "%s", msg))
				continue
			}
			c.Auth.Users[i].fileToken, u.fileToken = tok, tok
		}
		switch {
		case set > 1:
			add(c.errAt(p+".token", "set one of token, token_sha256 and token_file, not several"))
		case set == 0:
			add(c.errAt(p, "user %q has no token: set token, token_sha256 or token_file", u.ID))
		case u.TokenSHA256 != "" && !hexSHA256.MatchString(u.TokenSHA256):
			add(c.errAt(p+".token_sha256", "must be 64 hexadecimal digits (the SHA-256 of the token)"))
		case u.Token != "" && strings.TrimSpace(u.Token) != u.Token:
			add(c.errAt(p+".token", "starts or ends with white space, which a client cannot send in an Authorization header; remove it"))
		default:
			d := u.Digest()
			if j, dup := tokens[d]; dup {
				add(c.errAt(p, "user %q has the same token as auth.users[%d]; every user needs their own token", u.ID, j))
			} else {
				tokens[d] = i
			}
		}
	}
	for name, s := range c.Storage.Sections {
		if name == "" {
			add(&Error{Key: "storage", Origin: s.origin, Msg: "empty backend section name"})
		}
	}
	return errs
}

// readTokenFile reads a token file: its one line, without the final
// newline. It returns what is wrong, or "".
func readTokenFile(path string) (string, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	tok := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	switch {
	case tok == "":
		return "", fmt.Sprintf("%s is empty; it must hold the token", path)
	case strings.ContainsAny(tok, "\r\n"):
		return "", fmt.Sprintf("%s has more than one line; it must hold the token alone", path)
	case strings.TrimSpace(tok) != tok:
		return "", fmt.Sprintf("the token in %s starts or ends with white space, which a client cannot send in an Authorization header", path)
	}
	return tok, ""
}

// UsesExampleToken reports whether some user still has ExampleToken, in
// clear or as its SHA-256; it returns the first such user's ID.
func (c *Config) UsesExampleToken() (string, bool) {
	example := digestOf(ExampleToken)
	for _, u := range c.Auth.Users {
		if u.Digest() == example {
			return u.ID, true
		}
	}
	return "", false
}

// Section returns the [storage.<name>] section, or an empty one.
func (c *Config) Section(name string) *Section {
	if s, ok := c.Storage.Sections[name]; ok {
		return s
	}
	return &Section{name: name, dir: c.dir, values: map[string]any{}, origins: map[string]Origin{}}
}

// SectionNames returns the names of the [storage.<name>] sections, sorted.
func (c *Config) SectionNames() []string {
	names := make([]string, 0, len(c.Storage.Sections))
	for n := range c.Storage.Sections {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
