package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSegmentsURL(t *testing.T) {
	c, err := parse(t, minimal, Options{})
	require.NoError(t, err)
	seg := c.Segments()
	assert.False(t, seg.Remote(), "parquet_dir is the default")
	assert.Equal(t, c.Storage.ParquetDir, seg.Dir)
	assert.Equal(t, time.Hour, c.GCGrace())
	assert.Equal(t, 15*time.Second, c.LeaseTTL())
	assert.EqualValues(t, 1<<30, c.Storage.SegmentCache.MaxBytes)

	doc := `[storage]
segments_url = "s3://kalamdb?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true&prefix=segments/"
segment_gc_grace = "30m"
lease_ttl = "4s"
[storage.segment_cache]
dir = "cache"
max_bytes = 2097152
` + minimal
	c, err = parse(t, doc, Options{})
	require.NoError(t, err)
	seg = c.Segments()
	assert.True(t, seg.Remote())
	assert.Equal(t, 30*time.Minute, c.GCGrace())
	assert.Equal(t, 4*time.Second, c.LeaseTTL())
	assert.Equal(t, filepath.Join(c.Dir(), "cache"), c.Storage.SegmentCache.Dir, "relative to the file")
	assert.EqualValues(t, 2<<20, c.Storage.SegmentCache.MaxBytes)

	c, err = parse(t, `[storage]
segments_url = "file:///srv/kalamdb/segments"
`+minimal, Options{})
	require.NoError(t, err)
	assert.Equal(t, "/srv/kalamdb/segments", c.Segments().Dir)

	c, err = parse(t, minimal, Options{Environ: []string{"KALAMDB_STORAGE_SEGMENT_CACHE_MAX_BYTES=5242880", "KALAMDB_STORAGE_SEGMENTS_URL=gs://b"}})
	require.NoError(t, err)
	assert.EqualValues(t, 5<<20, c.Storage.SegmentCache.MaxBytes)
	assert.Equal(t, "gs://b", c.Segments().URL)
}

func TestSegmentsURLIsValidatedWithoutConnecting(t *testing.T) {
	for url, want := range map[string]string{
		"nope://bucket":                         `scheme "nope" is not one this server supports`,
		"s3://":                                 "names no bucket",
		"s3://b?regoin=eu-west-1":               `unknown query parameter "regoin"`,
		"s3://b/some/path":                      "a key prefix is given as ?prefix=",
		"s3://AKIAXX:verysecret@b?region=x":     "never from the configuration",
		"file://":                               "must name a directory",
		"file:///x?mode=1":                      "takes no query parameters",
		"azblob://c?storage_account=a&cdn=true": "",
		"gs://b?access_id=x":                    "",
		"not a url":                             "is not a URL",
	} {
		doc := "[storage]\nsegments_url = \"" + url + "\"\n" + minimal
		_, err := parse(t, doc, Options{})
		if want == "" {
			assert.NoError(t, err, url)
			continue
		}
		es := configErrors(t, err)
		require.Len(t, es, 1, url)
		assert.Equal(t, "storage.segments_url", es[0].Key, url)
		assert.Equal(t, 2, es[0].Origin.Line, url)
		assert.Contains(t, es[0].Msg, want, url)
		assert.NotContains(t, es[0].Msg, "verysecret", "credentials never appear in messages")
	}
	_, err := parse(t, "[storage]\nparquet_dir = \"p\"\nsegments_url = \"s3://b\"\n"+minimal, Options{})
	assert.Contains(t, configErrors(t, err)[0].Error(), "set one of them")
	for doc, key := range map[string]string{
		"[storage]\nsegment_gc_grace = \"soon\"\n":                   "storage.segment_gc_grace",
		"[storage]\nlease_ttl = \"500ms\"\n":                         "storage.lease_ttl",
		"[storage]\nlease_ttl = \"15\"\n":                            "storage.lease_ttl",
		"[storage.segment_cache]\nmax_bytes = 10\n":                  "storage.segment_cache.max_bytes",
		"[storage.segment_cache]\nsize = 10\n":                       "storage.segment_cache.size",
		"[storage.segment_cache]\ndir = \"\"\nmax_bytes = 1048576\n": "storage.segment_cache.dir",
	} {
		_, err := parse(t, doc+minimal, Options{})
		es := configErrors(t, err)
		assert.Equal(t, key, es[0].Key, doc)
	}
}

func TestEffectiveRedactsTheSegmentsURL(t *testing.T) {
	c, err := parse(t, "[storage]\nsegments_url = \"s3://b?region=x&kmskeyid=topsecret\"\n"+minimal, Options{})
	require.NoError(t, err)
	out, err := c.Effective(nil)
	require.NoError(t, err)
	assert.NotContains(t, out, "topsecret")
	assert.True(t, strings.Contains(out, "kmskeyid=REDACTED"), out)
	assert.Contains(t, out, "[storage.segment_cache]")
}
