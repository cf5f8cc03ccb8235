package flush_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// opened records the files a read opens.
type opened struct {
	mu    sync.Mutex
	paths []string
}

func (o *opened) rule(op faultfs.Op, name string) error {
	if op == faultfs.OpOpen {
		o.mu.Lock()
		o.paths = append(o.paths, name)
		o.mu.Unlock()
	}
	return nil
}

func (o *opened) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.paths
	o.paths = nil
	slices.Sort(p)
	return slices.Compact(p)
}

func TestUserReadsOpenOnlyTheirFiles(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	s := e.store("items")
	for round := range 3 {
		for _, u := range []string{"alice", "bob", "carol"} {
			require.NoError(t, s.insert(e.ctx, u, vals(int64(round*10+1), 0), vals(int64(round*10+2), 0)))
		}
		_, err := e.m.Flush(e.ctx, ns, "items")
		require.NoError(t, err)
	}
	e.reopen()
	o := &opened{}
	e.fsys.SetRule(o.rule)
	s = e.store("items")
	bobDir, _ := segment.UserDir("bob")

	got := scanAll(t, e.ctx, s, "bob", 100)
	require.Len(t, got, 6)
	paths := o.take()
	require.NotEmpty(t, paths)
	for _, p := range paths {
		assert.True(t, strings.HasPrefix(p, ns+"/items/"+bobDir+"/"), "bob's scan opened %s", p)
	}
	n, err := s.count(e.ctx, "bob")
	require.NoError(t, err)
	assert.EqualValues(t, 6, n)
	for _, p := range o.take() {
		assert.True(t, strings.HasPrefix(p, ns+"/items/"+bobDir+"/"), "bob's count opened %s", p)
	}
	_, err = s.get(e.ctx, "bob", 21)
	require.NoError(t, err)
	for _, p := range o.take() {
		assert.True(t, strings.HasPrefix(p, ns+"/items/"+bobDir+"/"), "bob's get opened %s", p)
	}
	_, err = s.get(e.ctx, "dave", 1)
	require.Error(t, err)
	assert.Empty(t, o.take(), "a user without segments opens nothing")
}

func TestLookupSkipsSegmentsByStatistics(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.RowGroupRows = 10 })
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	// Five segments with disjoint key ranges: the even ids of
	// [100k, 100k+100), in five row groups of ten rows each.
	for seg := int64(0); seg < 5; seg++ {
		for id := seg * 100; id < seg*100+100; id += 2 {
			require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
		}
		_, err := e.m.Flush(e.ctx, ns, "items")
		require.NoError(t, err)
	}
	e.reopen()
	o := &opened{}
	e.fsys.SetRule(o.rule)
	s = e.store("items")

	r, err := s.get(e.ctx, "", 326)
	require.NoError(t, err)
	assert.EqualValues(t, 326, r.Values[0].Int64())
	paths := o.take()
	require.Len(t, paths, 1, "only the segment whose range holds the key: %v", paths)
	st := e.m.CacheStats()
	assert.EqualValues(t, 1, st.FooterReads, "one footer read")
	assert.EqualValues(t, 1, st.KeyMisses, "one key index decoded, of the segment's five row groups")
	assert.EqualValues(t, 1, st.GroupMisses, "one row group decoded")

	// A key inside no segment's range opens nothing; an absent key inside
	// a range decodes one key index and no row group.
	_, err = s.get(e.ctx, "", 1000)
	require.Error(t, err)
	assert.Empty(t, o.take())
	_, err = s.get(e.ctx, "", 127)
	require.Error(t, err)
	st = e.m.CacheStats()
	assert.EqualValues(t, 1, st.GroupMisses, "an absent key decodes no row group")
	assert.EqualValues(t, 2, st.KeyMisses, "it decodes one key index")

	// Inserts check uniqueness against the key indexes only.
	for id := int64(301); id < 399; id += 2 {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
	}
	st = e.m.CacheStats()
	assert.EqualValues(t, 1, st.GroupMisses)
	assert.EqualValues(t, 6, st.KeyMisses, "each key index of segment 3 once")

	// Repeated reads parse no footer again.
	for range 5 {
		_, err := s.get(e.ctx, "", 102)
		require.NoError(t, err)
		_ = scanAll(t, e.ctx, s, "", 1000)
	}
	st = e.m.CacheStats()
	assert.EqualValues(t, 5, st.FooterReads, "each footer is read once")
}

func TestFootersStayCachedWithoutARowGroupCache(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.RowGroupCacheBytes = -1 })
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	for id := int64(0); id < 300; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
	}
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	e.reopen()
	s = e.store("items")
	for range 3 {
		require.Len(t, scanAll(t, e.ctx, s, "", 100), 300)
	}
	st := e.m.CacheStats()
	assert.EqualValues(t, 1, st.FooterReads)
	assert.Zero(t, st.GroupHits)
	assert.Zero(t, st.GroupBytes)
}

func TestSchedulerFlushesByRowLimitAndInterval(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.CheckInterval = time.Second })
	e.createTable("byrows", catalog.SharedTable, catalog.FlushPolicy{RowLimit: 10})
	e.createTable("bytime", catalog.SharedTable, catalog.FlushPolicy{Interval: time.Minute})
	rows, byTime := e.store("byrows"), e.store("bytime")
	for id := int64(0); id < 9; id++ {
		require.NoError(t, rows.insert(e.ctx, "", vals(id, 0)))
		require.NoError(t, byTime.insert(e.ctx, "", vals(id, 0)))
	}
	res, err := e.m.CheckPolicies(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Tables, "nothing is due yet")

	require.NoError(t, rows.insert(e.ctx, "", vals(9, 0)))
	res, err = e.m.CheckPolicies(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Tables)
	assert.EqualValues(t, 10, res.Rows)
	assert.Zero(t, e.bufferLen("byrows"))
	assert.Equal(t, 9, e.bufferLen("bytime"))

	e.clock.Advance(time.Minute)
	res, err = e.m.CheckPolicies(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Tables, "the interval has passed for bytime")
	assert.Zero(t, e.bufferLen("bytime"))

	e.clock.Advance(time.Minute)
	res, err = e.m.CheckPolicies(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Tables, "an empty buffer is not flushed")
}

func TestSchedulerRunsOnTheClockUntilStopped(t *testing.T) {
	events := make(chan flush.Event, 16)
	e := newEnv(t, func(o *flush.Options) {
		o.CheckInterval = time.Second
		o.OnEvent = func(ev flush.Event) { events <- ev }
	})
	e.createTable("items", catalog.UserTable, catalog.FlushPolicy{RowLimit: 5})
	s := e.store("items")
	for id := int64(0); id < 5; id++ {
		require.NoError(t, s.insert(e.ctx, "u", vals(id, 0)))
	}
	e.m.Start()
	e.m.Start() // idempotent
	e.clock.Advance(time.Second)
	ev := <-events
	require.NoError(t, ev.Err)
	assert.Equal(t, flush.TriggerPolicy, ev.Trigger)
	assert.EqualValues(t, 5, ev.Flush.Rows)
	assert.Zero(t, e.bufferLen("items"))
	e.m.Stop()
	e.m.Stop()
	assert.Zero(t, e.clock.Tickers(), "the ticker is stopped")
}

// The policy counts the versions written (no buffer is read to decide),
// and a restart counts what the buffer holds, up to the row limit.
func TestWritesCountTowardsThePolicy(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{RowLimit: 4})
	s := e.store("items")
	require.NoError(t, s.insert(e.ctx, "", vals(1, 0), vals(2, 0)))
	require.NoError(t, s.update(e.ctx, "", 1, 1))
	due, err := e.m.Due(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.False(t, due, "3 of 4 versions")
	require.NoError(t, s.delete(e.ctx, "", 2))
	due, err = e.m.Due(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.True(t, due, "an update and a deletion are versions too")

	e.reopen()
	due, err = e.m.Due(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.False(t, due, "after a restart the buffer holds two keys")
	s = e.store("items")
	require.NoError(t, s.insert(e.ctx, "", vals(3, 0), vals(4, 0)))
	due, err = e.m.Due(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.True(t, due)
	_, err = e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	due, err = e.m.Due(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.False(t, due, "the flush took what was written")
}

func TestCloseFlushesEverything(t *testing.T) {
	e := newEnv(t)
	e.createTable("a", catalog.UserTable, catalog.FlushPolicy{RowLimit: 1000})
	e.createTable("b", catalog.SharedTable, catalog.FlushPolicy{RowLimit: 1000})
	require.NoError(t, e.store("a").insert(e.ctx, "u", vals(1, 0)))
	require.NoError(t, e.store("b").insert(e.ctx, "", vals(1, 0), vals(2, 0)))
	e.m.Start()
	res, err := e.m.Close(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Tables)
	assert.EqualValues(t, 3, res.Rows)
	assert.Zero(t, e.bufferLen("a"))
	assert.Zero(t, e.bufferLen("b"))
	_, err = e.m.DB().User(e.ctx, ns, "a")
	assert.Error(t, err, "the DB is closed")
	e.reopen()
	e.check("a", model{"u": {1: 0}}, []string{"u"}, nil)
	e.check("b", model{"": {1: 0, 2: 0}}, []string{""}, nil)
}

// TestScanReadsOnlyTheSegmentsItReaches checks that a scan page decodes the
// row groups it returns rows from (and the one that tells whether more
// follow), not those of segments that start after the page ends, and that
// the next page starts at its After key without decoding the segments
// before it.
func TestScanReadsOnlyTheSegmentsItReaches(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.RowGroupRows = 10; o.RowGroupCacheBytes = -1 })
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	// Six segments of 30 rows, one key range each, in three row groups.
	for seg := int64(0); seg < 6; seg++ {
		for id := seg * 100; id < seg*100+30; id++ {
			require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
		}
		_, err := e.m.Flush(e.ctx, ns, "items")
		require.NoError(t, err)
	}
	misses := func() int64 { return e.m.CacheStats().GroupMisses }
	before := misses()
	page, err := s.scan(e.ctx, "", tables.ScanOptions{Limit: 45})
	require.NoError(t, err)
	require.True(t, page.More)
	require.Len(t, page.Rows, 45)
	assert.EqualValues(t, 114, page.Next.Int64())
	// Segment 0 (three row groups), segment 1 up to key 114 and the row
	// after it (two row groups): five decodes, none of segments 2 to 5.
	assert.EqualValues(t, 5, misses()-before, "row groups decoded by the first page")

	before = misses()
	page, err = s.scan(e.ctx, "", tables.ScanOptions{After: page.Next, Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Rows, 10)
	assert.EqualValues(t, 115, page.Rows[0].Values[0].Int64())
	assert.EqualValues(t, 124, page.Next.Int64())
	// Segment 1 from key 115 (its second and third row groups) and nothing
	// else: segment 0 ends before After, segment 2 starts after the page.
	assert.EqualValues(t, 2, misses()-before, "row groups decoded by the second page")
}

// TestReadErrorIsNotSticky: a segment whose footer could not be read once
// (an I/O error) is read again by the next reader, not failed forever.
func TestReadErrorIsNotSticky(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	for id := int64(1); id <= 5; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
	}
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	e.reopen() // nothing of the segment is cached
	s = e.store("items")
	failed := false
	e.fsys.SetRule(func(op faultfs.Op, name string) error {
		if op == faultfs.OpOpen && !failed {
			failed = true
			return faultfs.ErrInjected
		}
		return nil
	})
	_, err = s.get(e.ctx, "", 3)
	require.ErrorIs(t, err, faultfs.ErrInjected)
	require.True(t, failed)
	r, err := s.get(e.ctx, "", 3)
	require.NoError(t, err, "the next read tries the file again")
	assert.Equal(t, int64(3), r.Values[0].Int64())
}
