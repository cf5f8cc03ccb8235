package flush_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush/flushtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

// s3Segments returns a new bucket of the moto server as a segment Store,
// behind a disk cache in a temporary directory, as the server opens it.
func s3Segments(tb testing.TB) segment.Store {
	_, u := s3test.Bucket(tb)
	st, bucket, err := objstore.Open(context.Background(), u, objstore.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = bucket.Close() })
	c, err := segment.OpenDiskCache(tb.TempDir(), 1<<30)
	require.NoError(tb, err)
	return c.Wrap(st, u)
}

// BenchmarkSegmentStores runs the cold-tier benchmarks (memory backend as
// the hot buffer) with the segments in a directory (file) and in an S3
// bucket of a moto server on loopback behind the disk cache (s3), in one
// run, so that their ratios can be taken: the flush of 1M rows, and the
// merged read of 20 segments of 10,000 rows with a warm disk cache
// (footers-only: every read goes through the cache's files), e.g.
//
//	go test -run '^$' -bench 'SegmentStores/.*/(Flush/memory|MergedRead/disjoint)' -benchmem -count 5 ./kalamdb-core/flush/
func BenchmarkSegmentStores(b *testing.B) {
	mem := func(testing.TB) store.StorageBackend { return memory.New() }
	b.Run("file", func(b *testing.B) {
		flushtest.Bench(b, flushtest.Harness{Name: "memory", New: mem})
	})
	b.Run("s3", func(b *testing.B) {
		s3test.Shared(b)
		flushtest.Bench(b, flushtest.Harness{Name: "memory", New: mem, Segments: s3Segments})
	})
}
