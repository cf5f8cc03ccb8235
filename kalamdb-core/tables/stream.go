package tables

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/seq"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// StreamTableStore appends the events of one stream table and reads them in
// arrival order. An event's key is its _seq (8 big-endian bytes), its value
// the row codec's encoding with _updated set to its arrival time.
//
// Events older than the table's TTL are hidden from reads at once and
// removed by eviction, which also removes the oldest events beyond the
// table's maximum buffer (in events, and in bytes when the table sets
// MaxBytes). Eviction runs when Evict is called, on a timer between
// StartEviction and StopEviction, and at once after an append that takes
// the stream beyond one of its maximums, so that the stream never holds
// more than its bounds plus the appends in flight. An append that alone
// exceeds a maximum is refused.
//
// Readers never miss an event: appends may commit out of _seq order when
// they run concurrently, so reads stop below the oldest append still in
// flight (the visibility watermark). A reader that pages with the Next of
// each page therefore sees every event exactly once, in _seq order, unless
// it was evicted first.
//
// On a backend several servers share (store.Capabilities.MultiProcess),
// each server appends to the stream and knows only its own appends, so an
// eviction runs under the table's lease (lease.TableName), one server at a
// time, and counts the stored events first; see Evict. Event keys are
// unique across servers (_seq values come from blocks each server reserves
// with a check), and an event is written once and never changed, so an
// eviction deletes the keys it read without checking them: a delete can
// only remove the event it was meant for. Within one server's appends
// _seq order is arrival order; across servers it is not (each server
// appends within its own block of _seq values), and "oldest" means first
// in _seq order, the order reads return. Embedded backends take no lease
// and count nothing again.
//
// Get one from DB.Stream. It is safe for concurrent use.
type StreamTableStore struct {
	t     *catalog.Table
	types []row.Type
	b     store.StorageBackend
	part  store.Partition
	alloc *seq.Allocator
	clock clock.Clock
	bg    *background // the DB's: eviction timers run on its context
	// leases, on a backend several processes share, are the DB's: each
	// eviction takes the table's lease. Nil on embedded backends.
	leases *lease.Leases

	mu      sync.Mutex
	lastTs  int64           // arrival times never go backwards in _seq order
	pending []pendingAppend // appends in flight, ascending _seq

	// live and liveBytes are the events stored and their bytes (keys and
	// values): exact on an embedded backend, this process's estimate on a
	// shared one (see Len).
	live      atomic.Int64
	liveBytes atomic.Int64
	evictMu   sync.Mutex // one eviction at a time

	timerMu sync.Mutex
	cancel  context.CancelFunc // stops the eviction timer
	done    <-chan struct{}    // closed when the eviction goroutine ends
}

type pendingAppend struct {
	first int64
	done  bool
}

// StreamPage is one page of a stream read.
type StreamPage struct {
	// Events in _seq order. As with Page.Rows, the values of many events
	// share one allocation.
	Events []row.Row
	// Next is the _seq of the last event returned (or the After of the read
	// when none was): the After of the next read.
	Next int64
	// More reports whether more visible events follow.
	More bool
}

// EvictStats reports one eviction.
type EvictStats struct {
	// Expired events were older than the TTL.
	Expired int64
	// Overflow events were the oldest beyond the maximum buffer.
	Overflow int64
	// Remaining events are stored after the eviction. On a backend
	// several servers share it is the count the eviction took under the
	// lease less the events it removed (see Len).
	Remaining int64
	// Skipped reports, on a backend several servers share, an eviction
	// that did not run because another server holds the table's lease
	// (that server evicts the stream meanwhile), or, for EvictDue, because
	// an eviction began recently. It is not a failure, and the timer of
	// StartEviction tries again at its next tick. Remaining is then this
	// process's estimate (Len).
	Skipped bool
}

// openStream opens the store of stream table t; leases are those of a
// shared backend (nil on an embedded one).
func openStream(ctx context.Context, t *catalog.Table, b store.StorageBackend, alloc *seq.Allocator, clk clock.Clock, bg *background, leases *lease.Leases) (*StreamTableStore, error) {
	s := &StreamTableStore{t: t, types: t.Types(), b: b, part: t.Partition(), alloc: alloc, clock: clk, bg: bg, leases: leases}
	it, err := b.Scan(ctx, s.part, store.ScanOptions{})
	if err != nil {
		return nil, s.wrap(err)
	}
	var n, bytes int64
	for it.Next() {
		n++
		bytes += int64(len(it.Key()) + len(it.Value()))
	}
	if err := it.Close(); err != nil {
		return nil, s.wrap(err)
	}
	s.live.Store(n)
	s.liveBytes.Store(bytes)
	it, err = b.Scan(ctx, s.part, store.ScanOptions{Reverse: true, Limit: 1})
	if err != nil {
		return nil, s.wrap(err)
	}
	if it.Next() {
		_, upd, _, err := row.PeekMeta(it.Value())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("%s: %w", t.FullName(), err)
		}
		s.lastTs = upd
	}
	if err := it.Close(); err != nil {
		return nil, s.wrap(err)
	}
	return s, nil
}

func (s *StreamTableStore) wrap(err error) error {
	if errors.Is(err, store.ErrPartitionNotFound) {
		return fmt.Errorf("%w: %s: %w", core.ErrTableNotFound, s.t.FullName(), err)
	}
	return err
}

// Table returns the table's definition.
func (s *StreamTableStore) Table() *catalog.Table { return s.t }

// Len returns the number of events stored (expired ones not yet evicted
// included). It reads no storage.
//
// On a backend several servers share it is this process's estimate: the
// count taken when the store was opened or by this process's last
// eviction (which counts the stream under the table's lease), plus this
// process's appends since, less its evictions' deletes. Other servers'
// appends and evictions since are not in it; an eviction skipped because
// another server evicts lowers it to the table's maximum buffer.
func (s *StreamTableStore) Len() int64 { return s.live.Load() }

// Bytes returns the bytes the stored events take in the storage backend
// (keys and encoded values, expired events not yet evicted included). On a
// backend several servers share it is this process's estimate, as Len.
func (s *StreamTableStore) Bytes() int64 { return s.liveBytes.Load() }

// over reports whether the stored events exceed a maximum of the table.
func (s *StreamTableStore) over(events, bytes int64) bool {
	return events > s.t.Stream.MaxBuffer || (s.t.Stream.MaxBytes > 0 && bytes > s.t.Stream.MaxBytes)
}

// due reports whether an append that leaves this process's count of the
// stored events at events and bytes evicts before it returns. On an
// embedded backend the count is exact, and any excess is due. On a shared
// backend it is an estimate, and an eviction counts the whole stream
// first: one is due once the estimate exceeds a maximum by more than a
// sixteenth of it (at least one event or byte), so that a stream kept at
// its maximum is counted once per sixteenth of its bound appended through
// this server, not at every append.
func (s *StreamTableStore) due(events, bytes int64) bool {
	if s.leases == nil {
		return s.over(events, bytes)
	}
	mx, mb := s.t.Stream.MaxBuffer, s.t.Stream.MaxBytes
	return events > mx+slack(mx) || (mb > 0 && bytes > mb+slack(mb))
}

// slack is how far beyond bound a shared stream's estimate goes before an
// append evicts (see due).
func slack(bound int64) int64 { return max(1, bound/16) }

func seqKey(v int64) []byte { return keys.AppendUint64(make([]byte, 0, 8), uint64(v)) }

// Append adds events, all or none, each a value per column in the table's
// column order. They get consecutive _seq values starting at the returned
// one and share one arrival time (_updated). It fails with
// core.ErrInvalidRow (a *core.ColumnError) when an event does not fit the
// table, and with core.ErrInvalidArgument when the events alone exceed the
// table's maximum buffer, in events or in bytes. When the stream exceeds a
// maximum afterwards, Append evicts the oldest events before it returns.
// On a backend several servers share, "exceeds" is judged on this
// process's estimate (Len) with some slack (a sixteenth of the maximum),
// and the eviction is skipped while another server evicts the stream; the
// stream then holds up to its bounds plus that slack plus what other
// servers appended since they last evicted, until the next eviction of any
// server (the timer of StartEviction bounds that time).
func (s *StreamTableStore) Append(ctx context.Context, events ...[]row.Value) (int64, error) {
	n := len(events)
	if n == 0 {
		return 0, fmt.Errorf("%w: append to %s has no events", core.ErrInvalidArgument, s.t.FullName())
	}
	if int64(n) > s.t.Stream.MaxBuffer {
		return 0, fmt.Errorf("%w: append of %d events to %s exceeds its maximum buffer of %d events", core.ErrInvalidArgument, n, s.t.FullName(), s.t.Stream.MaxBuffer)
	}
	size := 0
	for i, vals := range events {
		if err := s.t.ValidateValues(vals); err != nil {
			return 0, rowErr(i, n, err)
		}
		l := row.EncodedLen(&row.Row{Values: vals})
		if l > store.MaxValueSize {
			return 0, rowErr(i, n, fmt.Errorf("%w: %s: the event encodes to %d bytes, the limit is %d", core.ErrInvalidRow, s.t.FullName(), l, store.MaxValueSize))
		}
		size += l
	}
	if stored := int64(size + 8*n); s.t.Stream.MaxBytes > 0 && stored > s.t.Stream.MaxBytes {
		return 0, fmt.Errorf("%w: append of %d events (%d bytes) to %s exceeds its maximum buffer of %d bytes", core.ErrInvalidArgument, n, stored, s.t.FullName(), s.t.Stream.MaxBytes)
	}

	if s.leases != nil {
		return s.appendShared(ctx, events, size)
	}
	// Allocate the _seq range and the arrival time together, so that arrival
	// times never decrease along _seq, and register the append as in flight.
	s.mu.Lock()
	first, err := s.alloc.Next(ctx, n)
	if err != nil {
		s.mu.Unlock()
		return 0, s.wrap(err)
	}
	ts := max(s.clock.Now().UnixMicro(), s.lastTs)
	s.lastTs = ts
	s.pending = append(s.pending, pendingAppend{first: first})
	s.mu.Unlock()

	stored, err := s.write(ctx, events, first, ts, size)

	s.mu.Lock()
	for i := range s.pending {
		if s.pending[i].first == first {
			s.pending[i].done = true
			break
		}
	}
	j := 0
	for j < len(s.pending) && s.pending[j].done {
		j++
	}
	s.pending = s.pending[j:]
	var over bool
	if err == nil {
		over = s.due(s.live.Add(int64(n)), s.liveBytes.Add(int64(stored)))
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if over {
		// The events are stored: an eviction that fails now is retried by
		// the next append or the timer, and does not fail the append.
		_, _ = s.Evict(ctx)
	}
	return first, nil
}

// appendShared is Append on a backend several servers share: the events'
// _seq values are reserved in the same batch that stores them
// (seq.Allocator.Commit), so _seq order is the order in which appends
// commit, through whichever server: a reader paging after a _seq never
// misses an event committed later, which gets a higher one. Appends of
// one process so go one batch at a time.
func (s *StreamTableStore) appendShared(ctx context.Context, events [][]row.Value, size int) (int64, error) {
	var stored int
	first, err := s.alloc.Commit(ctx, len(events), func(first int64) ([]store.Operation, error) {
		s.mu.Lock()
		ts := max(s.clock.Now().UnixMicro(), s.lastTs)
		s.lastTs = ts
		s.mu.Unlock()
		ops, n, err := s.encode(events, first, ts, size)
		if err != nil {
			return nil, err
		}
		// The reservation's check and put come before ops.
		key, limit := layout.SequenceKey(s.t.ID), make([]byte, 8)
		reserve := []store.Operation{store.CheckValueOp(layout.Sequences, key, limit), store.PutOp(layout.Sequences, key, limit)}
		if err := s.checkBatch(ops, reserve); err != nil {
			return nil, err
		}
		stored = n
		return ops, nil
	})
	if err != nil {
		return 0, s.wrap(err)
	}
	n := int64(len(events))
	s.mu.Lock()
	over := s.due(s.live.Add(n), s.liveBytes.Add(int64(stored)))
	s.mu.Unlock()
	if over {
		// The events are stored: an eviction that fails now is retried by
		// the next append or the timer, and does not fail the append.
		_, _ = s.Evict(ctx)
	}
	return first, nil
}

// write stores the events and returns the bytes they take (keys and
// values).
func (s *StreamTableStore) write(ctx context.Context, events [][]row.Value, first, ts int64, size int) (int, error) {
	ops, stored, err := s.encode(events, first, ts, size)
	if err != nil {
		return 0, err
	}
	if len(ops) == 1 {
		return stored, s.wrap(s.b.Put(ctx, s.part, ops[0].Key, ops[0].Value))
	}
	if err := s.checkBatch(ops, nil); err != nil {
		return 0, err
	}
	return stored, s.wrap(s.b.Batch(ctx, ops))
}

// encode returns the puts of events, with _seq values from first and
// arrival time ts, and the bytes they take (keys and values).
func (s *StreamTableStore) encode(events [][]row.Value, first, ts int64, size int) ([]store.Operation, int, error) {
	buf := make([]byte, 0, size+8*len(events))
	ops := make([]store.Operation, len(events))
	for i, vals := range events {
		r := row.Row{Seq: first + int64(i), Updated: ts, Values: vals}
		kstart := len(buf)
		buf = keys.AppendUint64(buf, uint64(r.Seq))
		vstart := len(buf)
		var err error
		if buf, err = row.Encode(buf, &r, s.types); err != nil {
			return nil, 0, err
		}
		ops[i] = store.PutOp(s.part, buf[kstart:vstart:vstart], buf[vstart:len(buf):len(buf)])
	}
	return ops, len(buf), nil
}

// checkBatch refuses an append whose batch, ops after extra, does not fit
// what the backend writes at once.
func (s *StreamTableStore) checkBatch(ops, extra []store.Operation) error {
	if err := s.b.Capabilities().CheckBatch(append(slices.Clip(extra), ops...)); err != nil {
		return fmt.Errorf("%w: the append of %d events to %s does not fit what the storage backend writes at once, and an append is all or nothing; append fewer events at a time (%v)",
			core.ErrInvalidArgument, len(ops), s.t.FullName(), err)
	}
	return nil
}

// watermark returns the highest _seq that reads may return: every event at
// or below it is either stored or will never be.
func (s *StreamTableStore) watermark() int64 {
	if s.leases != nil {
		// A shared stream stores each event in the batch that reserves
		// its _seq (appendShared): every event stored is final.
		return math.MaxInt64
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		return s.pending[0].first - 1
	}
	return s.alloc.Last()
}

// cutoff returns the arrival time below which events are expired.
func (s *StreamTableStore) cutoff() int64 {
	return s.clock.Now().Add(-s.t.Stream.TTL).UnixMicro()
}

// Read returns a page of the events after opts.After, in _seq order,
// skipping expired ones: up to opts.Limit events (0 means DefaultLimit), and
// fewer when opts.MaxBytes bounds the page.
func (s *StreamTableStore) Read(ctx context.Context, opts StreamReadOptions) (StreamPage, error) {
	after := opts.After
	limit, err := checkLimit(opts.Limit)
	if err != nil {
		return StreamPage{}, err
	}
	if err := checkMaxBytes(opts.MaxBytes); err != nil {
		return StreamPage{}, err
	}
	if after < 0 {
		return StreamPage{}, fmt.Errorf("%w: read of %s after negative _seq %d", core.ErrInvalidArgument, s.t.FullName(), after)
	}
	page := StreamPage{Next: after}
	wm := s.watermark()
	if after >= wm {
		return page, nil
	}
	cutoff := s.cutoff()
	it, err := s.b.Scan(ctx, s.part, store.ScanOptions{Start: seqKey(after), ExclusiveStart: true})
	if err != nil {
		return StreamPage{}, s.wrap(err)
	}
	defer it.Close()
	var arena []byte
	size := 0 // of the events read, when opts.MaxBytes bounds the page
	p := newPageRows(len(s.types), limit)
	for it.Next() {
		sq, upd, _, err := row.PeekMeta(it.Value())
		if err != nil {
			return StreamPage{}, fmt.Errorf("%s: event key %x: %w", s.t.FullName(), it.Key(), err)
		}
		if sq > wm {
			break
		}
		if upd < cutoff {
			continue
		}
		if len(p.rows) == limit || (opts.MaxBytes > 0 && size >= opts.MaxBytes) {
			page.More = true
			break
		}
		v := it.Value()
		size += len(v)
		if cap(arena)-len(arena) < len(v) {
			arena = make([]byte, 0, max(arenaChunk, len(v)))
		}
		start := len(arena)
		arena = append(arena, v...)
		if err := row.DecodeOwned(arena[start:], s.types, p.add()); err != nil {
			return StreamPage{}, fmt.Errorf("%s: event %d: %w", s.t.FullName(), sq, err)
		}
		page.Next = sq
	}
	if err := it.Close(); err != nil {
		return StreamPage{}, s.wrap(err)
	}
	if len(p.rows) > 0 {
		page.Events = p.rows
	}
	return page, nil
}

// evictBatch is the most deletes one eviction batch holds.
const evictBatch = 1024

// Evict removes the events older than the TTL and the oldest events beyond
// the maximum buffer (in events, and in bytes when the table sets
// MaxBytes), in atomic batches of up to 1024 deletes (fewer when the
// storage backend applies fewer at once), oldest first.
//
// On a backend several servers share, Evict takes the table's lease
// (lease.TableName) and keeps it renewed while it runs. When another
// server holds it, Evict does nothing and returns Skipped with no error:
// that server evicts the stream. Under the lease it reads every stored
// event, to count them and their bytes (every server's appends), and the
// expired ones among them; then it removes the expired events wherever
// they lie in _seq order (another server's block may hold older arrivals
// than this one's), and the oldest of the others, in _seq order, while
// they exceed a maximum. It is not bounded by this process's appends in
// flight as on an embedded backend, since other servers' are unknown to
// it: one of them that lands below an event removed is evicted by a later
// run. Every delete batch carries the lease's check (lease.Lease.Commit):
// once the lease was taken over, or is within its margin of expiry, the
// batch applies nothing and Evict fails with an error wrapping
// store.ErrConditionFailed, having removed only what earlier batches did.
func (s *StreamTableStore) Evict(ctx context.Context) (EvictStats, error) {
	return s.evict(ctx, s.clock.Now())
}

// EvictDue is Evict, except that on a backend several servers share it
// does nothing, and returns Skipped with no error, when an eviction of the
// table that began less than half of interval ago has finished, through
// any server: that eviction counted the stream and brought it within its
// bounds. So the eviction timers of all the servers, each ticking every
// interval, count a stream about once per interval between them, not once
// each; a stream is still counted at least once per interval. On an
// embedded backend it is Evict.
func (s *StreamTableStore) EvictDue(ctx context.Context, interval time.Duration) (EvictStats, error) {
	now := s.clock.Now()
	if s.leases != nil {
		began, err := s.leases.LastFinished(ctx, lease.TableName(s.t.ID))
		if err != nil {
			return EvictStats{}, fmt.Errorf("eviction of %s: %w", s.t.FullName(), s.wrap(err))
		}
		if !began.IsZero() && now.Sub(began) < interval/2 {
			s.assumeWithinBounds()
			return EvictStats{Skipped: true, Remaining: s.live.Load()}, nil
		}
	}
	return s.evict(ctx, now)
}

// evict is Evict, begun at began.
func (s *StreamTableStore) evict(ctx context.Context, began time.Time) (EvictStats, error) {
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	if s.leases != nil {
		return s.evictShared(ctx, began)
	}
	var st EvictStats
	cutoff := s.cutoff()
	wm := s.watermark()
	it, err := s.b.Scan(ctx, s.part, store.ScanOptions{})
	if err != nil {
		return st, s.wrap(err)
	}
	defer it.Close()
	var ops []store.Operation
	var expired, overflow, freed int64
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if err := s.b.Batch(ctx, ops); err != nil {
			return s.wrap(err)
		}
		s.live.Add(-int64(len(ops)))
		s.liveBytes.Add(-freed)
		st.Expired += expired
		st.Overflow += overflow
		ops, expired, overflow, freed = ops[:0], 0, 0, 0
		return nil
	}
	remaining, remainingBytes := s.live.Load(), s.liveBytes.Load()
	batchSize := evictBatch
	if caps := s.b.Capabilities(); caps.MaxBatchOps > 0 {
		batchSize = min(batchSize, caps.MaxBatchOps)
	}
	for it.Next() {
		sq, upd, _, err := row.PeekMeta(it.Value())
		if err != nil {
			return st, fmt.Errorf("%s: event key %x: %w", s.t.FullName(), it.Key(), err)
		}
		if sq > wm {
			break
		}
		switch {
		case upd < cutoff:
			expired++
		case s.over(remaining, remainingBytes):
			overflow++
		default:
			// Arrival times do not decrease along _seq, and the buffer is
			// within its bound: nothing further is due.
			st.Remaining = s.live.Load() - int64(len(ops))
			return st, flush()
		}
		size := int64(len(it.Key()) + len(it.Value()))
		remaining--
		remainingBytes -= size
		freed += size
		ops = append(ops, store.DeleteOp(s.part, append([]byte(nil), it.Key()...)))
		if len(ops) == batchSize {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return st, s.wrap(err)
	}
	st.Remaining = s.live.Load() - int64(len(ops))
	return st, flush()
}

// StartEviction runs Evict every interval (as measured by the store's
// clock) until StopEviction, DB.StopEviction or DB.Close, which cancel a
// run in progress. After each run it calls report, when not nil, with the
// run's result; report runs on the eviction goroutine. A panic of a run is
// contained: report gets it as a *guard.PanicError and the timer goes on
// (a panic of report is logged, see guard.Callback). It fails with
// core.ErrInvalidArgument if interval is not positive or eviction is
// already running, and with store.ErrClosed once the DB's eviction was
// stopped (DB.StopEviction, DB.Close). If the table is dropped the timer
// stops by itself after reporting the core.ErrTableNotFound.
func (s *StreamTableStore) StartEviction(interval time.Duration, report func(EvictStats, error)) error {
	if interval <= 0 {
		return fmt.Errorf("%w: eviction interval %v is not positive", core.ErrInvalidArgument, interval)
	}
	if err := s.bg.err(); err != nil {
		return fmt.Errorf("eviction of %s: %w", s.t.FullName(), err)
	}
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.cancel != nil {
		return fmt.Errorf("%w: eviction of %s is already running", core.ErrInvalidArgument, s.t.FullName())
	}
	ticker := s.clock.NewTicker(interval)
	cancel, done, err := s.bg.run(func(ctx context.Context) {
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C():
			}
			var st EvictStats
			err := guard.Run("tables: eviction of "+s.t.FullName(), func() error {
				var err error
				st, err = s.EvictDue(ctx, interval)
				return err
			})
			if ctx.Err() != nil {
				return
			}
			if report != nil {
				guard.Callback("tables: eviction report", func() { report(st, err) })
			}
			if errors.Is(err, core.ErrTableNotFound) {
				return
			}
		}
	})
	if err != nil {
		ticker.Stop()
		return fmt.Errorf("eviction of %s: %w", s.t.FullName(), err)
	}
	s.cancel, s.done = cancel, done
	return nil
}

// Evicting reports whether the timer of StartEviction runs: started, and
// not stopped by StopEviction.
func (s *StreamTableStore) Evicting() bool {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	return s.cancel != nil
}

// StopEviction stops the timer started by StartEviction and waits for a run
// in progress to end (it is cancelled). It does nothing when eviction is
// not running.
func (s *StreamTableStore) StopEviction() {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
}

// usage is a number of stored events and their bytes (keys and values).
type usage struct{ events, bytes int64 }

// measure reads every stored event and returns their usage, and that of
// the ones that arrived before cutoff (expired). It reads the values, to
// tell expired events and to size them, where store.Count reads keys
// alone.
func (s *StreamTableStore) measure(ctx context.Context, cutoff int64) (all, expired usage, err error) {
	it, err := s.b.Scan(ctx, s.part, store.ScanOptions{})
	if err != nil {
		return all, expired, s.wrap(err)
	}
	defer it.Close()
	for it.Next() {
		_, upd, _, err := row.PeekMeta(it.Value())
		if err != nil {
			return all, expired, fmt.Errorf("%s: event key %x: %w", s.t.FullName(), it.Key(), err)
		}
		size := int64(len(it.Key()) + len(it.Value()))
		all.events++
		all.bytes += size
		if upd < cutoff {
			expired.events++
			expired.bytes += size
		}
	}
	return all, expired, s.wrap(it.Close())
}

// evictShared is Evict on a backend several servers share, under the
// table's lease, begun at began. An eviction that ends without an error
// gives the lease up with Finish, recording when it began (EvictDue); one
// that fails releases it. The caller holds evictMu.
func (s *StreamTableStore) evictShared(ctx context.Context, began time.Time) (st EvictStats, err error) {
	l, err := s.leases.Acquire(ctx, lease.TableName(s.t.ID))
	if errors.Is(err, lease.ErrHeld) {
		s.assumeWithinBounds()
		return EvictStats{Skipped: true, Remaining: s.live.Load()}, nil
	}
	if err != nil {
		return st, fmt.Errorf("eviction of %s: %w", s.t.FullName(), err)
	}
	stop := l.Keep(ctx, s.clock)
	defer func() {
		stop()
		// A lease taken over meanwhile is the new holder's: Finish and
		// Release leave it alone, and a failure only lets it expire.
		if err == nil {
			_ = l.Finish(context.WithoutCancel(ctx), began)
		} else {
			_ = l.Release(context.WithoutCancel(ctx))
		}
	}()

	cutoff := s.cutoff()
	all, expired, err := s.measure(ctx, cutoff)
	if err != nil {
		return st, err
	}
	s.live.Store(all.events)
	s.liveBytes.Store(all.bytes)
	// left: expired events still to remove; kept: the events not expired
	// that stay, which the maximums bound.
	left := expired.events
	kept, keptBytes := all.events-expired.events, all.bytes-expired.bytes
	st.Remaining = all.events
	if left == 0 && !s.over(kept, keptBytes) {
		return st, nil
	}

	batchSize := evictBatch
	if caps := s.b.Capabilities(); caps.MaxBatchOps > 0 {
		// The lease's check takes one operation of each batch.
		batchSize = min(batchSize, max(caps.MaxBatchOps-1, 1))
	}
	var ops []store.Operation
	var nExpired, nOverflow, freed int64
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		err := l.Commit(func(check store.Operation) error {
			return s.b.Batch(ctx, append([]store.Operation{check}, ops...))
		})
		if err != nil {
			return fmt.Errorf("eviction of %s: %w", s.t.FullName(), s.wrap(err))
		}
		s.live.Add(-int64(len(ops)))
		s.liveBytes.Add(-freed)
		st.Expired += nExpired
		st.Overflow += nOverflow
		st.Remaining -= int64(len(ops))
		ops, nExpired, nOverflow, freed = ops[:0], 0, 0, 0
		return nil
	}
	it, err := s.b.Scan(ctx, s.part, store.ScanOptions{})
	if err != nil {
		return st, s.wrap(err)
	}
	defer it.Close()
	for (left > 0 || s.over(kept, keptBytes)) && it.Next() {
		_, upd, _, err := row.PeekMeta(it.Value())
		if err != nil {
			return st, fmt.Errorf("%s: event key %x: %w", s.t.FullName(), it.Key(), err)
		}
		size := int64(len(it.Key()) + len(it.Value()))
		switch {
		case upd < cutoff:
			// One that landed since the count (a server whose clock is
			// behind by more than the TTL) is removed too.
			nExpired++
			left = max(left-1, 0)
		case s.over(kept, keptBytes):
			nOverflow++
			kept--
			keptBytes -= size
		default:
			continue
		}
		freed += size
		ops = append(ops, store.DeleteOp(s.part, append([]byte(nil), it.Key()...)))
		if len(ops) == batchSize {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return st, s.wrap(err)
	}
	return st, flush()
}

// assumeWithinBounds lowers this process's estimate of a shared stream to
// its maximums when another server evicts the stream: that eviction
// brings the stream within them, and an estimate left above would make
// each append of this process try to evict again.
func (s *StreamTableStore) assumeWithinBounds() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live.Load() > s.t.Stream.MaxBuffer {
		s.live.Store(s.t.Stream.MaxBuffer)
	}
	if mb := s.t.Stream.MaxBytes; mb > 0 && s.liveBytes.Load() > mb {
		s.liveBytes.Store(mb)
	}
}
