package flush_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

// Shape of the cold lookup: a shared table whose rows are in lookupSegments
// segments of lookupRows rows with disjoint key ranges, written with the
// default row-group size.
const (
	lookupSegments = 2
	lookupRows     = 500_000
)

// lookupEnv returns an environment on S3 holding the lookup table, and the
// size of its largest segment object.
func lookupEnv(tb testing.TB) (*env, int64) {
	s3test.Shared(tb)
	s3test.SetCredentials(tb)
	onS3 = true
	e := newEnv(tb, func(o *flush.Options) { o.RowGroupRows = 0 })
	onS3 = false
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	batch := make([][]row.Value, 0, 1000)
	for seg := int64(0); seg < lookupSegments; seg++ {
		for i := int64(0); i < lookupRows; i++ {
			batch = append(batch, vals(seg*lookupRows+i, 0))
			if len(batch) == cap(batch) {
				require.NoError(tb, s.insert(e.ctx, "", batch...))
				batch = batch[:0]
			}
		}
		require.NoError(tb, flushItems(e))
	}
	var largest int64
	require.NoError(tb, e.s3.store.List(e.ctx, "", func(o segment.ObjectInfo) error {
		largest = max(largest, o.Size)
		return nil
	}))
	return e, largest
}

// coldLookup reopens e with an empty disk cache (a restart: every cache
// empty), reads row id, and returns the GETs the read sent to the bucket
// and the bytes they fetched. Under a benchmark, only the read is timed.
func coldLookup(tb testing.TB, e *env, id int64) (gets, bytes int64) {
	require.NoError(tb, os.RemoveAll(e.s3.cacheDir))
	e.reopen()
	s := e.store("items")
	before := e.s3.store.Stats()
	b, timed := tb.(*testing.B)
	if timed {
		b.StartTimer()
	}
	r, err := s.get(e.ctx, "", id)
	if timed {
		b.StopTimer()
	}
	require.NoError(tb, err)
	requireValues(tb, vals(id, 0), r.Values, "the row read")
	after := e.s3.store.Stats()
	require.Zero(tb, after.Heads-before.Heads, "no HEAD: the manifest records each segment's size")
	return after.Gets - before.Gets, after.GetBytes - before.GetBytes
}

// A point lookup after a restart with empty caches sends at most 3 ranged
// GETs to the bucket and fetches less than the segment it reads: the
// manifest's key ranges pick the segment, its footer comes with one read
// of the object's tail, and the row's pages with one or two more.
func TestColdPointLookupOnS3(t *testing.T) {
	e, largest := lookupEnv(t)
	for _, id := range []int64{0, lookupRows + lookupRows/2, lookupSegments*lookupRows - 1} {
		gets, bytes := coldLookup(t, e, id)
		t.Logf("id %d: %d GETs, %d bytes (segments of %d bytes)", id, gets, bytes, largest)
		require.LessOrEqual(t, gets, int64(3), "id %d", id)
		require.Positive(t, gets, "id %d: the row came from the bucket", id)
		require.Less(t, bytes, largest, "id %d: no whole-object read", id)
	}
}

// BenchmarkColdPointLookupOnS3 reports the requests and bytes of a point
// lookup after a restart with empty caches (gets/op, bytes-fetched/op) and
// its latency; the restart itself is not timed.
func BenchmarkColdPointLookupOnS3(b *testing.B) {
	e, largest := lookupEnv(b)
	var gets, bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		g, n := coldLookup(b, e, int64(i*7919)%(lookupSegments*lookupRows))
		gets += g
		bytes += n
	}
	b.ReportMetric(float64(gets)/float64(b.N), "gets/op")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes-fetched/op")
	b.ReportMetric(float64(largest), "segment-bytes")
}
