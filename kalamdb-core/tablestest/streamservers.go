package tablestest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// scanHook is a backend that runs a hook before the first Scan of a
// partition once the hook is set (set).
type scanHook struct {
	store.StorageBackend

	mu   sync.Mutex
	p    store.Partition
	hook func()
}

// set makes the next Scan of p run hook first.
func (h *scanHook) set(p store.Partition, hook func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.p, h.hook = p, hook
}

func (h *scanHook) Scan(ctx context.Context, p store.Partition, opts store.ScanOptions) (store.Iterator, error) {
	h.mu.Lock()
	hook := h.hook
	if hook != nil && p == h.p {
		h.hook = nil
	} else {
		hook = nil
	}
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return h.StorageBackend.Scan(ctx, p, opts)
}

// streamServers returns the stores of the standard stream table of two
// table layers on one backend that claims several processes share it,
// standing for two servers: a reaches the backend through the returned
// scanHook, b directly.
func streamServers(t *testing.T, h Harness) (e *env, hook *scanHook, a, b *tables.StreamTableStore) {
	e = newEnvWith(t, h, envOptions{wrap: MultiProcess})
	hook = &scanHook{StorageBackend: e.b}
	stream := func(bk store.StorageBackend) *tables.StreamTableStore {
		db, err := tables.Open(e.ctx, bk, tables.Options{Clock: e.clock, SeqBlock: 16})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		s, err := db.Stream(e.ctx, ns, streamTable)
		require.NoError(t, err)
		return s
	}
	return e, hook, stream(hook), stream(e.b)
}

// allEvents returns every stored event in _seq order, read through a table
// layer opened afresh (whose reads reach every _seq reserved so far).
func allEvents(t *testing.T, e *env) []row.Row {
	t.Helper()
	db, err := tables.Open(e.ctx, e.b, tables.Options{Clock: e.clock, SeqBlock: 16})
	require.NoError(t, err)
	defer db.Close()
	s, err := db.Stream(e.ctx, ns, streamTable)
	require.NoError(t, err)
	var out []row.Row
	opts := tables.StreamReadOptions{Limit: tables.MaxLimit}
	for {
		page, err := s.Read(e.ctx, opts)
		require.NoError(t, err)
		out = append(out, page.Events...)
		if !page.More {
			return out
		}
		opts.After = page.Next
	}
}

func seqsOf(evs []row.Row) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// appendBoth appends 2*per events in appends of 5, alternately through a
// and b (kinds "a" and "b").
func appendBoth(t *testing.T, e *env, a, b *tables.StreamTableStore, per int) {
	t.Helper()
	for i := range 2 * per / 5 {
		s, kind := a, "a"
		if i%2 == 1 {
			s, kind = b, "b"
		}
		evs := make([][]row.Value, 5)
		for j := range evs {
			evs[j] = event(kind, int64(5*i+j))
		}
		_, err := s.Append(e.ctx, evs...)
		require.NoError(t, err)
	}
}

// testStreamServersEvictBeyondTheMaximum: two servers append to one
// stream, neither beyond the maximum alone; an eviction through one counts
// both servers' events and removes exactly the oldest beyond the maximum.
func testStreamServersEvictBeyondTheMaximum(t *testing.T, h Harness) {
	e, _, a, b := streamServers(t, h)
	appendBoth(t, e, a, b, 30)
	before := allEvents(t, e)
	require.Len(t, before, 60)
	assert.Equal(t, int64(30), a.Len(), "a server's count holds its own appends")
	assert.Equal(t, int64(30), b.Len())

	st, err := a.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Overflow: 10, Remaining: streamMax}, st)
	assert.Equal(t, seqsOf(before[10:]), seqsOf(allEvents(t, e)), "the oldest ten are gone, and only they")
	assert.Equal(t, int64(streamMax), a.Len(), "the eviction's count")

	st, err = b.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Remaining: streamMax}, st, "nothing more to evict")
	assert.Equal(t, int64(streamMax), b.Len())
}

// testStreamServersEvictExpiredAnywhere: events of several servers, whose
// clocks may disagree, need not arrive in _seq order; the eviction removes
// the expired events wherever they lie, and does not count them against
// the maximum when it judges the rest.
func testStreamServersEvictExpiredAnywhere(t *testing.T, h Harness) {
	e, _, a, b := streamServers(t, h)
	_, err := a.Append(e.ctx, event("a-old", 0)) // a takes the first block of _seq
	require.NoError(t, err)
	many := func(kind string, n int) [][]row.Value {
		evs := make([][]row.Value, n)
		for i := range evs {
			evs[i] = event(kind, int64(i))
		}
		return evs
	}
	bOld, err := b.Append(e.ctx, many("b-old", 20)...)
	require.NoError(t, err)
	e.clock.Advance(streamTTL / 2)
	aNew, err := a.Append(e.ctx, many("a-new", 15)...)
	require.NoError(t, err)
	require.Greater(t, aNew, bOld+19, "_seq follows the order in which appends commit, whichever server takes them")
	_, err = b.Append(e.ctx, many("b-new", 25)...)
	require.NoError(t, err)
	e.clock.Advance(streamTTL/2 + time.Microsecond) // the "old" ones are expired

	st, err := a.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Expired: 21, Remaining: 40}, st)
	kinds := map[string]int{}
	for _, ev := range allEvents(t, e) {
		kinds[ev.Values[0].Str()]++
	}
	assert.Equal(t, map[string]int{"a-new": 15, "b-new": 25}, kinds)
}

// testStreamServersAppendEvicts: an append through one server evicts once
// its count, taken by its last eviction plus its own appends, exceeds the
// maximum by more than a sixteenth; the eviction counts both servers'
// events and leaves the newest within the maximum.
func testStreamServersAppendEvicts(t *testing.T, h Harness) {
	e, _, a, b := streamServers(t, h)
	for i := range 4 {
		evs := make([][]row.Value, 10)
		for j := range evs {
			evs[j] = event("b", int64(10*i+j))
		}
		_, err := b.Append(e.ctx, evs...)
		require.NoError(t, err)
	}
	slack := max(1, streamMax/16)
	for i := 1; i <= streamMax+slack; i++ {
		_, err := a.Append(e.ctx, event("a", int64(i)))
		require.NoError(t, err)
		require.Equal(t, 40+i, storedEvents(t, e, a), "append %d: within the slack, no eviction", i)
	}
	before := allEvents(t, e)
	last, err := a.Append(e.ctx, event("a", 99))
	require.NoError(t, err)
	want := slices.Sorted(slices.Values(append(seqsOf(before), last)))
	assert.Equal(t, want[len(want)-streamMax:], seqsOf(allEvents(t, e)), "the newest events stay, within the maximum")
	assert.Equal(t, int64(streamMax), a.Len())
}

// testStreamServersOneEvictionAtATime: while one server evicts, the
// other's eviction is skipped without error and removes nothing; once the
// first is done, the lease is free again.
func testStreamServersOneEvictionAtATime(t *testing.T, h Harness) {
	e, hook, a, b := streamServers(t, h)
	appendBoth(t, e, a, b, 30)
	counting, resume := make(chan struct{}), make(chan struct{})
	hook.set(a.Table().Partition(), func() {
		close(counting)
		<-resume
	})
	var stA tables.EvictStats
	var errA error
	done := make(chan struct{})
	go func() {
		defer close(done)
		stA, errA = a.Evict(e.ctx)
	}()
	<-counting // a holds the lease and counts the events

	st, err := b.Evict(e.ctx)
	require.NoError(t, err, "skipped, not failed")
	assert.Equal(t, tables.EvictStats{Skipped: true, Remaining: 30}, st)
	assert.Equal(t, 60, storedEvents(t, e, b), "the skipped eviction removed nothing")

	close(resume)
	<-done
	require.NoError(t, errA)
	assert.Equal(t, tables.EvictStats{Overflow: 10, Remaining: streamMax}, stA)
	assert.Equal(t, streamMax, storedEvents(t, e, b))

	st, err = b.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Remaining: streamMax}, st, "the lease was released")
}

// testStreamServersTimerSkipsWhileHeld: the eviction timer of a server
// reports a tick at which another server held the lease as skipped, not as
// a failure, and evicts at the next tick once the lease is free.
func testStreamServersTimerSkipsWhileHeld(t *testing.T, h Harness) {
	e, _, a, b := streamServers(t, h)
	appendBoth(t, e, a, b, 30)
	other, err := lease.New(e.b, lease.Options{Owner: "another-server", Clock: e.clock})
	require.NoError(t, err)
	held, err := other.Acquire(e.ctx, lease.TableName(b.Table().ID))
	require.NoError(t, err)

	type report struct {
		st  tables.EvictStats
		err error
	}
	reports := make(chan report, 4)
	const interval = time.Second // well within the lease's TTL
	require.NoError(t, b.StartEviction(interval, func(st tables.EvictStats, err error) { reports <- report{st, err} }))
	defer b.StopEviction()
	e.clock.Advance(interval)
	r := <-reports
	require.NoError(t, r.err)
	assert.Equal(t, tables.EvictStats{Skipped: true, Remaining: 30}, r.st)
	assert.Equal(t, 60, storedEvents(t, e, b))

	require.NoError(t, held.Release(e.ctx))
	e.clock.Advance(interval)
	r = <-reports
	require.NoError(t, r.err)
	assert.Equal(t, tables.EvictStats{Overflow: 10, Remaining: streamMax}, r.st)
	assert.Equal(t, streamMax, storedEvents(t, e, b))
}

// testStreamServersCountOncePerInterval: the eviction timers of two
// servers count a stream about once per interval between them, not once
// each: an eviction that an eviction through the other server, begun less
// than half an interval before, leaves nothing to do is skipped without
// reading an event; one later than that counts the stream again.
func testStreamServersCountOncePerInterval(t *testing.T, h Harness) {
	e, hook, a, b := streamServers(t, h)
	appendBoth(t, e, a, b, 30)
	const interval = 10 * time.Second
	st, err := b.EvictDue(e.ctx, interval)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Overflow: 10, Remaining: streamMax}, st)

	scans := 0
	count := func() { scans++ }
	hook.set(a.Table().Partition(), count)
	e.clock.Advance(interval/2 - time.Millisecond)
	st, err = a.EvictDue(e.ctx, interval)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Skipped: true, Remaining: 30}, st)
	assert.Zero(t, scans, "a skipped eviction reads no event")

	e.clock.Advance(time.Millisecond)
	st, err = a.EvictDue(e.ctx, interval)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Remaining: streamMax}, st)
	assert.Equal(t, 1, scans, "half an interval after the last eviction began, the stream is counted again")
	assert.Equal(t, streamMax, storedEvents(t, e, a))

	// Evict itself always counts.
	hook.set(b.Table().Partition(), count)
	_, err = a.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, scans)
}

// testStreamServersEvictionWhoseLeaseWasTakenOver: another server, whose
// clock reads past the lease this one took (this one paused, or the clocks
// disagree), takes the lease over while this one counts; this one's delete
// batch fails the lease's check, and nothing is removed.
func testStreamServersEvictionWhoseLeaseWasTakenOver(t *testing.T, h Harness) {
	e, hook, a, b := streamServers(t, h)
	appendBoth(t, e, a, b, 30)
	ahead, err := lease.New(e.b, lease.Options{Owner: "server-ahead", Clock: clock.NewFake(e.clock.Now().Add(lease.DefaultTTL + time.Second))})
	require.NoError(t, err)
	var takeErr error
	hook.set(a.Table().Partition(), func() { _, takeErr = ahead.Acquire(e.ctx, lease.TableName(a.Table().ID)) })

	st, err := a.Evict(e.ctx)
	require.NoError(t, takeErr)
	require.ErrorIs(t, err, store.ErrConditionFailed, "the delete batch carries the lease's check")
	assert.Zero(t, st.Expired+st.Overflow)
	assert.Equal(t, 60, storedEvents(t, e, a), "nothing was removed")
	holder, _, err := ahead.Holder(e.ctx, lease.TableName(a.Table().ID))
	require.NoError(t, err)
	assert.Equal(t, "server-ahead", holder, "the lease stays the new holder's")
}

// leaseWatch counts the operations on leases and the scans of one
// partition.
type leaseWatch struct {
	store.StorageBackend
	p      store.Partition
	mu     sync.Mutex
	leases int // operations on layout.Leases
	scans  int // scans of p
}

func (w *leaseWatch) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	w.mu.Lock()
	if p == layout.Leases {
		w.leases++
	}
	w.mu.Unlock()
	return w.StorageBackend.Get(ctx, p, key)
}

func (w *leaseWatch) Batch(ctx context.Context, ops []store.Operation) error {
	w.mu.Lock()
	for _, op := range ops {
		if op.Partition == layout.Leases {
			w.leases++
		}
	}
	w.mu.Unlock()
	return w.StorageBackend.Batch(ctx, ops)
}

func (w *leaseWatch) Scan(ctx context.Context, p store.Partition, opts store.ScanOptions) (store.Iterator, error) {
	w.mu.Lock()
	if p == w.p {
		w.scans++
	}
	w.mu.Unlock()
	return w.StorageBackend.Scan(ctx, p, opts)
}

func (w *leaseWatch) counts() (leases, scans int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leases, w.scans
}

// testStreamEmbeddedEvictionTakesNoLease: on a backend one process owns,
// an eviction takes no lease and reads the stream once (no count first).
func testStreamEmbeddedEvictionTakesNoLease(t *testing.T, h Harness) {
	var w *leaseWatch
	e := newEnvWith(t, h, envOptions{wrap: func(b store.StorageBackend) store.StorageBackend {
		w = &leaseWatch{StorageBackend: b}
		return w
	}})
	if e.b.Capabilities().MultiProcess {
		t.Skip("the backend is shared by several processes")
	}
	s := e.stream()
	w.mu.Lock()
	w.p = s.Table().Partition()
	w.mu.Unlock()
	for i := range streamMax + 10 {
		_, err := s.Append(e.ctx, event("x", int64(i)))
		require.NoError(t, err)
	}
	e.clock.Advance(streamTTL + time.Microsecond)
	_, scans := w.counts()
	st, err := s.Evict(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, tables.EvictStats{Expired: streamMax}, st)
	leases, after := w.counts()
	assert.Zero(t, leases, "no lease is read or written")
	assert.Equal(t, scans+1, after, "one read of the stream per eviction")
}

// testStreamServersReadInCommitOrder: appends alternate between two
// servers, and a reader pages the stream through each in turn, after the
// last event it read: it reads every event once, in the order the appends
// committed. (With _seq blocks per server, an event appended through one
// server below another server's block would be skipped by a reader whose
// cursor passed it.)
func testStreamServersReadInCommitOrder(t *testing.T, h Harness) {
	e, _, a, b := streamServers(t, h)
	servers := []*tables.StreamTableStore{a, b}
	var after int64
	var read []int64
	for i := range 40 {
		_, err := servers[i%2].Append(e.ctx, event("x", int64(i)))
		require.NoError(t, err)
		page, err := servers[(i/2)%2].Read(e.ctx, tables.StreamReadOptions{After: after, Limit: tables.MaxLimit})
		require.NoError(t, err)
		for _, ev := range page.Events {
			read = append(read, ev.Values[1].Int64())
		}
		after = page.Next
	}
	want := make([]int64, 40)
	for i := range want {
		want[i] = int64(i)
	}
	assert.Equal(t, want, read, "every event once, in commit order")
}
