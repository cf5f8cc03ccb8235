package tablestest

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

func event(kind string, n int64) []row.Value { return []row.Value{row.String(kind), row.Int64(n)} }

func seqs(p tables.StreamPage) []int64 {
	out := make([]int64, len(p.Events))
	for i, ev := range p.Events {
		out[i] = ev.Seq
	}
	return out
}

func ns_(p tables.StreamPage) []int64 {
	out := make([]int64, len(p.Events))
	for i, ev := range p.Events {
		out[i] = ev.Values[1].Int64()
	}
	return out
}

// storedEvents counts the keys in the stream's partition, bypassing the
// store.
func storedEvents(t *testing.T, e *env, s *tables.StreamTableStore) int {
	t.Helper()
	it, err := e.b.Scan(e.ctx, s.Table().Partition(), store.ScanOptions{})
	require.NoError(t, err)
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Close())
	return n
}

func testStreamAppendRead(t *testing.T, e *env) {
	s := e.stream()
	first, err := s.Append(e.ctx, event("a", 0), event("b", 1), event("c", 2))
	require.NoError(t, err)
	e.clock.Advance(time.Second)
	fourth, err := s.Append(e.ctx, event("d", 3))
	require.NoError(t, err)
	assert.Equal(t, first+3, fourth)
	assert.Equal(t, int64(4), s.Len())

	page, err := s.Read(e.ctx, tables.StreamReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int64{first, first + 1, first + 2, first + 3}, seqs(page))
	assert.Equal(t, []int64{0, 1, 2, 3}, ns_(page))
	assert.Equal(t, first+3, page.Next)
	assert.False(t, page.More)
	assert.Equal(t, t0.UnixMicro(), page.Events[0].Updated, "arrival time")
	assert.Equal(t, t0.Add(time.Second).UnixMicro(), page.Events[3].Updated)
	assert.Equal(t, "c", page.Events[2].Values[0].Str())

	page, err = s.Read(e.ctx, tables.StreamReadOptions{After: first, Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2}, ns_(page), "after is exclusive")
	assert.True(t, page.More)
	page, err = s.Read(e.ctx, tables.StreamReadOptions{After: page.Next, Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, []int64{3}, ns_(page))
	assert.False(t, page.More)
	page, err = s.Read(e.ctx, tables.StreamReadOptions{After: page.Next, Limit: 2})
	require.NoError(t, err)
	assert.Empty(t, page.Events)
	assert.Equal(t, first+3, page.Next, "an empty read keeps the cursor")
}

func testStreamInvalid(t *testing.T, e *env) {
	s := e.stream()
	_, err := s.Append(e.ctx)
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	_, err = s.Append(e.ctx, event("ok", 1), []row.Value{row.Int64(1), row.Int64(2)})
	requireColumnError(t, err, core.ErrInvalidRow, "kind")
	assert.ErrorContains(t, err, "row 1")
	_, err = s.Append(e.ctx, []row.Value{row.String("x")})
	assert.ErrorIs(t, err, core.ErrInvalidRow)
	assert.Zero(t, s.Len())
	assert.Zero(t, storedEvents(t, e, s), "nothing of a failed append is stored")
	_, err = s.Read(e.ctx, tables.StreamReadOptions{After: -1})
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	_, err = s.Read(e.ctx, tables.StreamReadOptions{Limit: -1})
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorIs(t, s.StartEviction(0, nil), core.ErrInvalidArgument)
}

func testStreamTTL(t *testing.T, e *env) {
	s := e.stream()
	for i := range 10 {
		_, err := s.Append(e.ctx, event("old", int64(i)))
		require.NoError(t, err)
	}
	e.clock.Advance(streamTTL / 2)
	for i := range 5 {
		_, err := s.Append(e.ctx, event("new", int64(10+i)))
		require.NoError(t, err)
	}
	e.clock.Advance(streamTTL/2 + time.Microsecond) // the first ten are now older than the TTL

	page, err := s.Read(e.ctx, tables.StreamReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 11, 12, 13, 14}, ns_(page), "expired events are hidden before eviction")
	assert.Equal(t, 15, storedEvents(t, e, s))

	st, err := s.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Expired: 10, Remaining: 5}, st)
	assert.Equal(t, 5, storedEvents(t, e, s))
	assert.Equal(t, int64(5), s.Len())
	st, err = s.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Remaining: 5}, st, "nothing more to evict")
}

func testStreamMaxBuffer(t *testing.T, e *env) {
	s := e.stream()
	const total = streamMax + 23
	for i := 0; i < total; i += 10 {
		var evs [][]row.Value
		for j := i; j < min(i+10, total); j++ {
			evs = append(evs, event("e", int64(j)))
		}
		_, err := s.Append(e.ctx, evs...)
		require.NoError(t, err)
		assert.LessOrEqual(t, storedEvents(t, e, s), streamMax, "an append beyond the maximum evicts before it returns")
	}
	assert.Equal(t, int64(streamMax), s.Len())
	st, err := s.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Remaining: streamMax}, st, "nothing was left for the timer")
	page, err := s.Read(e.ctx, tables.StreamReadOptions{})
	require.NoError(t, err)
	require.Len(t, page.Events, streamMax)
	assert.Equal(t, int64(23), page.Events[0].Values[1].Int64(), "the oldest were evicted")
	assert.Equal(t, int64(total-1), page.Events[streamMax-1].Values[1].Int64())

	// An append that alone exceeds the maximum is refused whole.
	evs := make([][]row.Value, streamMax+1)
	for i := range evs {
		evs[i] = event("big", int64(i))
	}
	_, err = s.Append(e.ctx, evs...)
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "append of 51 events to app.events exceeds its maximum buffer of 50 events")
	assert.Equal(t, streamMax, storedEvents(t, e, s), "nothing of it was stored")
}

// testStreamMaxBytes: with MaxBytes the stream holds at most that many bytes
// of events (as counted by Bytes, which a reopen counts again), evicting the
// oldest as appends arrive; an append larger than the bound is refused.
func testStreamMaxBytes(t *testing.T, e *env) {
	const maxBytes = 2000
	s := e.streamWith("bounded", catalog.StreamOptions{TTL: streamTTL, MaxBuffer: 1 << 20, MaxBytes: maxBytes})
	stored := func() (n, bytes int64) {
		it, err := e.b.Scan(e.ctx, s.Table().Partition(), store.ScanOptions{})
		require.NoError(t, err)
		defer it.Close()
		for it.Next() {
			n++
			bytes += int64(len(it.Key()) + len(it.Value()))
		}
		require.NoError(t, it.Err())
		return n, bytes
	}
	payload := strings.Repeat("x", 90)
	for i := range 100 {
		_, err := s.Append(e.ctx, event(payload, int64(i)))
		require.NoError(t, err)
		n, bytes := stored()
		assert.LessOrEqual(t, bytes, int64(maxBytes), "after append %d", i)
		assert.Equal(t, bytes, s.Bytes())
		assert.Equal(t, n, s.Len())
	}
	n, bytes := stored()
	assert.Greater(t, bytes, int64(maxBytes)-200, "the stream is full, not emptied")
	page, err := s.Read(e.ctx, tables.StreamReadOptions{})
	require.NoError(t, err)
	require.Len(t, page.Events, int(n))
	assert.Equal(t, int64(99), page.Events[len(page.Events)-1].Values[1].Int64(), "the newest are kept")

	_, err = s.Append(e.ctx, event(strings.Repeat("y", maxBytes), 1))
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "exceeds its maximum buffer of 2000 bytes")

	e.restart()
	s, err = e.db.Stream(e.ctx, ns, "bounded")
	require.NoError(t, err)
	assert.Equal(t, bytes, s.Bytes(), "a restart counts the bytes again")
}

// streamWith creates a stream table like the suite's, with other options.
func (e *env) streamWith(name string, opts catalog.StreamOptions) *tables.StreamTableStore {
	e.t.Helper()
	_, err := e.db.Catalog().CreateTable(e.ctx, catalog.Table{Namespace: ns, Name: name, Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "kind", Type: row.TypeString}, {Name: "n", Type: row.TypeInt64}}, Stream: opts})
	require.NoError(e.t, err)
	s, err := e.db.Stream(e.ctx, ns, name)
	require.NoError(e.t, err)
	return s
}

// testStreamTimer drives the eviction timer with the fake clock.
func testStreamTimer(t *testing.T, e *env) {
	s := e.stream()
	reports := make(chan tables.EvictStats, 10)
	require.NoError(t, s.StartEviction(time.Minute, func(st tables.EvictStats, err error) {
		assert.NoError(t, err)
		reports <- st
	}))
	assert.ErrorIs(t, s.StartEviction(time.Minute, nil), core.ErrInvalidArgument, "already running")
	for i := range 7 {
		_, err := s.Append(e.ctx, event("x", int64(i)))
		require.NoError(t, err)
	}

	e.clock.Advance(time.Minute)
	assert.Equal(t, tables.EvictStats{Remaining: 7}, <-reports, "first tick: nothing expired yet")
	e.clock.Advance(streamTTL)
	assert.Equal(t, tables.EvictStats{Expired: 7}, <-reports, "a tick after the TTL evicts")
	assert.Zero(t, storedEvents(t, e, s))

	s.StopEviction()
	assert.Zero(t, e.clock.Tickers(), "the ticker is stopped")
	_, err := s.Append(e.ctx, event("y", 1))
	require.NoError(t, err)
	e.clock.Advance(2 * streamTTL)
	assert.Empty(t, reports, "no eviction after StopEviction")
	assert.Equal(t, 1, storedEvents(t, e, s))
	s.StopEviction() // idempotent

	// It can be started again, and DB.Close stops it.
	require.NoError(t, s.StartEviction(time.Minute, func(st tables.EvictStats, err error) { reports <- st }))
	e.clock.Advance(time.Minute)
	assert.Equal(t, tables.EvictStats{Expired: 1}, <-reports)
	require.NoError(t, e.db.Close())
	assert.Zero(t, e.clock.Tickers())
}

// testStreamTail appends from several goroutines while a reader follows the
// stream with its cursor: it must see every event exactly once, in order.
func testStreamTail(t *testing.T, e *env) {
	s := e.streamWith("tail", catalog.StreamOptions{TTL: streamTTL, MaxBuffer: 1 << 20})
	const writers, perWriter = 4, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				n := 1
				if i%5 == 0 {
					n = 3
				}
				evs := make([][]row.Value, n)
				for j := range evs {
					evs[j] = event("w"+itoa(int64(w)), int64(i))
				}
				_, err := s.Append(e.ctx, evs...)
				if !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(writersDone)
	}()
	total := writers * (perWriter + 2*perWriter/5)
	var got []int64
	var after int64
	for len(got) < total {
		finished := false
		select {
		case <-writersDone:
			finished = true
		default:
		}
		page, err := s.Read(e.ctx, tables.StreamReadOptions{After: after, Limit: 7})
		require.NoError(t, err)
		got = append(got, seqs(page)...)
		after = page.Next
		if len(page.Events) == 0 {
			if finished {
				// Every append has returned and nothing is left to read.
				break
			}
			runtime.Gosched()
		}
	}
	<-writersDone
	require.Len(t, got, total)
	for i := 1; i < len(got); i++ {
		require.Greater(t, got[i], got[i-1], "events in _seq order, each once")
	}
	page, err := s.Read(e.ctx, tables.StreamReadOptions{After: after})
	require.NoError(t, err)
	assert.Empty(t, page.Events, "nothing was skipped and nothing is left")
	assert.Equal(t, int64(total), s.Len(), "all of this is in the buffer bound: nothing is evicted")
}

func testStreamRestart(t *testing.T, e *env) {
	s := e.stream()
	last, err := s.Append(e.ctx, event("a", 1), event("b", 2))
	require.NoError(t, err)
	last++
	e.restart()
	s = e.stream()
	assert.Equal(t, int64(2), s.Len(), "the stored events are counted again")
	next, err := s.Append(e.ctx, event("c", 3))
	require.NoError(t, err)
	assert.Greater(t, next, last)
	page, err := s.Read(e.ctx, tables.StreamReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3}, ns_(page))
}

func testStreamDropped(t *testing.T, e *env) {
	s := e.stream()
	_, err := s.Append(e.ctx, event("a", 1))
	require.NoError(t, err)
	reports := make(chan error, 10)
	require.NoError(t, s.StartEviction(time.Minute, func(_ tables.EvictStats, err error) { reports <- err }))
	require.NoError(t, e.db.Catalog().DropTable(e.ctx, ns, streamTable))

	_, err = s.Append(e.ctx, event("b", 2))
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = s.Read(e.ctx, tables.StreamReadOptions{})
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = e.db.Stream(e.ctx, ns, streamTable)
	assert.ErrorIs(t, err, core.ErrTableNotFound)

	e.clock.Advance(time.Minute)
	assert.ErrorIs(t, <-reports, core.ErrTableNotFound)
	s.StopEviction() // waits for the timer goroutine, which stopped itself
	assert.Zero(t, e.clock.Tickers(), "the timer of a dropped table stops by itself")
}

// testStreamReadBytes: a read bounded by MaxBytes ends once its events
// take that many bytes, with at least one event, and paging sees each once.
func testStreamReadBytes(t *testing.T, e *env) {
	s := e.stream()
	sizes := []int{10, 3000, 10, 10, 10, 8000, 10}
	for i, n := range sizes {
		_, err := s.Append(e.ctx, event(strings.Repeat("k", n), int64(i)))
		require.NoError(t, err)
	}
	var got []int64
	var after int64
	for pages := 0; ; pages++ {
		require.Less(t, pages, len(sizes)+1)
		page, err := s.Read(e.ctx, tables.StreamReadOptions{After: after, MaxBytes: 2000})
		require.NoError(t, err)
		require.NotEmpty(t, page.Events)
		for _, ev := range page.Events {
			got = append(got, ev.Values[1].Int64())
		}
		if !page.More {
			break
		}
		after = page.Next
	}
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6}, got)
	page, err := s.Read(e.ctx, tables.StreamReadOptions{MaxBytes: 2000})
	require.NoError(t, err)
	assert.Len(t, page.Events, 2, "the page ends with the event that took it over the bound")
	_, err = s.Read(e.ctx, tables.StreamReadOptions{MaxBytes: -1})
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
}

// testStreamAppendWithinBatchLimits: an append is all or nothing, so one
// the backend cannot apply at once is refused whole.
func testStreamAppendWithinBatchLimits(t *testing.T, e *env) {
	s := e.streamWith("limited", catalog.StreamOptions{TTL: streamTTL, MaxBuffer: 1 << 20})
	maxOps := e.b.Capabilities().MaxBatchOps
	if maxOps == 0 {
		maxOps = 5000 // no limit: a large append goes in whole
		evs := make([][]row.Value, maxOps+1)
		for i := range evs {
			evs[i] = event("e", int64(i))
		}
		_, err := s.Append(e.ctx, evs...)
		require.NoError(t, err)
		assert.Equal(t, int64(maxOps+1), s.Len())
		return
	}
	evs := make([][]row.Value, maxOps+1)
	for i := range evs {
		evs[i] = event("e", int64(i))
	}
	_, err := s.Append(e.ctx, evs...)
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "append fewer events at a time")
	assert.Zero(t, s.Len())
	_, err = s.Append(e.ctx, evs[:maxOps]...)
	require.NoError(t, err)
	assert.Equal(t, int64(maxOps), s.Len())
}
