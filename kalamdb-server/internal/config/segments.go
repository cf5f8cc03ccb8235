package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
	// The object stores segments_url may name: their URL openers register
	// with gocloud.dev/blob's default URL mux.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
)

// SegmentCache is the [storage.segment_cache] section: the local disk cache
// of the segment bytes read from an object store.
type SegmentCache struct {
	// Dir is the cache's folder.
	Dir string `toml:"dir"`
	// MaxBytes bounds the cache; the least recently used blocks are
	// evicted beyond it.
	MaxBytes int64 `toml:"max_bytes"`
}

// urlParams are the query parameters each object store's URL takes
// (gocloud.dev's openers, and "prefix", a key prefix for any of them).
var urlParams = map[string][]string{
	"s3": {"region", "endpoint", "profile", "hostname_immutable", "dualstack", "fips", "rate_limiter_capacity", "anonymous",
		"awssdk", "role", "role_session_name", "role_external_id", "role_duration", "web_identity_token_file",
		"request_checksum_calculation", "response_checksum_validation",
		"ssetype", "kmskeyid", "accelerate", "use_path_style", "s3ForcePathStyle", "disable_https", "prefix"},
	"gs":     {"access_id", "private_key_path", "anonymous", "grpc", "zonal", "prefix"},
	"azblob": {"domain", "protocol", "cdn", "localemu", "storage_account", "prefix"},
}

// Segments says where the flushed segments live, from storage.segments_url
// (or storage.parquet_dir, its shorthand).
type Segments struct {
	// Dir is the local directory of a file:// URL; empty for an object
	// store.
	Dir string
	// URL is the object store's URL, as configured (it may hold
	// credentials: log Redacted instead).
	URL string
	// Redacted is the URL without credentials, for logs and messages.
	Redacted string
}

// Remote reports whether the segments live in an object store.
func (s Segments) Remote() bool { return s.Dir == "" }

// Segments returns where the segments live. Load has validated the URL.
func (c *Config) Segments() Segments {
	if c.Storage.SegmentsURL == "" {
		return Segments{Dir: c.Storage.ParquetDir, Redacted: "file://" + filepath.ToSlash(c.Storage.ParquetDir)}
	}
	u, err := url.Parse(c.Storage.SegmentsURL)
	if err == nil && u.Scheme == "file" {
		return Segments{Dir: c.fileURLPath(u), Redacted: "file://" + filepath.ToSlash(c.fileURLPath(u))}
	}
	return Segments{URL: c.Storage.SegmentsURL, Redacted: objstore.Redact(c.Storage.SegmentsURL)}
}

// fileURLPath is the directory of a file:// URL: file:///abs/dir, or
// file://./rel (relative to the configuration file's folder).
func (c *Config) fileURLPath(u *url.URL) string {
	p := u.Host + u.Path
	if u.Opaque != "" {
		p = u.Opaque
	}
	return resolvePath(filepath.FromSlash(p), c.Origin("storage.segments_url"), c.dir)
}

// GCGrace returns storage.segment_gc_grace. Load has validated it.
func (c *Config) GCGrace() time.Duration {
	d, _ := time.ParseDuration(c.Storage.SegmentGCGrace)
	return d
}

// LeaseTTL returns storage.lease_ttl. Load has validated it.
func (c *Config) LeaseTTL() time.Duration {
	d, _ := time.ParseDuration(c.Storage.LeaseTTL)
	return d
}

// minLeaseTTL is the shortest storage.lease_ttl: work renews its lease
// every third of it, and one round trip to the backend must fit well
// within that.
const minLeaseTTL = time.Second

// validateSegments checks storage.segments_url, without contacting the
// store: the scheme is one the server links, a bucket is named and every
// query parameter is known; and the keys that go with it.
func (c *Config) validateSegments() Errors {
	var errs Errors
	if d, err := time.ParseDuration(c.Storage.SegmentGCGrace); err != nil || d < 0 {
		errs = append(errs, c.errAt("storage.segment_gc_grace", "must be a duration of 0 or more, such as \"1h\" or \"30m\"; got %q", c.Storage.SegmentGCGrace))
	}
	if d, err := time.ParseDuration(c.Storage.LeaseTTL); err != nil || d < minLeaseTTL {
		errs = append(errs, c.errAt("storage.lease_ttl", "must be a duration of at least %v, such as \"15s\"; got %q", minLeaseTTL, c.Storage.LeaseTTL))
	}
	if c.Storage.SegmentCache.MaxBytes < 1<<20 {
		errs = append(errs, c.errAt("storage.segment_cache.max_bytes", "must be at least 1048576 (1 MiB), got %d", c.Storage.SegmentCache.MaxBytes))
	}
	if c.Storage.SegmentCache.Dir == "" {
		errs = append(errs, c.errAt("storage.segment_cache.dir", "must not be empty"))
	}
	raw := c.Storage.SegmentsURL
	if raw == "" {
		return errs
	}
	bad := func(format string, args ...any) Errors {
		return append(errs, c.errAt("storage.segments_url", "%s (the URL, credentials hidden: %s)", fmt.Sprintf(format, args...), objstore.Redact(raw)))
	}
	if o := c.Origin("storage.parquet_dir"); o.Kind != OriginDefault {
		errs = append(errs, c.errAt("storage.parquet_dir", "is set together with storage.segments_url; parquet_dir is the shorthand of segments_url = \"file://<dir>\": set one of them"))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return bad("is not a URL such as s3://bucket?region=eu-west-1 or file:///var/lib/kalamdb/segments")
	}
	if u.Scheme == "file" {
		if u.RawQuery != "" {
			return bad("a file:// URL takes no query parameters")
		}
		if u.Host+u.Path+u.Opaque == "" {
			return bad("a file:// URL must name a directory, such as file:///var/lib/kalamdb/segments")
		}
		return errs
	}
	if u.User != nil {
		return bad("holds credentials; they come from the object store's standard chain (environment variables, shared configuration files, instance identity), never from the configuration")
	}
	known, ok := urlParams[u.Scheme]
	if !ok || !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		schemes := []string{"file"}
		for s := range urlParams {
			schemes = append(schemes, s)
		}
		sort.Strings(schemes)
		return bad("scheme %q is not one this server supports (%s)", u.Scheme, strings.Join(schemes, ", "))
	}
	if u.Host == "" {
		return bad("names no bucket: write %s://<bucket>?…", u.Scheme)
	}
	if strings.Trim(u.Path, "/") != "" {
		return bad("has a path (%s); a key prefix is given as ?prefix=…", u.Path)
	}
	q := u.Query()
	for _, k := range sortedKeys(q) {
		if !contains(known, k) {
			return bad("unknown query parameter %q%s for %s:// URLs; known: %s", k, suggest(k, known), u.Scheme, strings.Join(known, ", "))
		}
	}
	return errs
}
