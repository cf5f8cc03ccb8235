package tables

import (
	"context"
	"errors"
	"fmt"
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
// Get one from DB.Stream. It is safe for concurrent use.
type StreamTableStore struct {
	t     *catalog.Table
	types []row.Type
	b     store.StorageBackend
	part  store.Partition
	alloc *seq.Allocator
	clock clock.Clock
	bg    *background // the DB's: eviction timers run on its context

	mu      sync.Mutex
	lastTs  int64           // arrival times never go backwards in _seq order
	pending []pendingAppend // appends in flight, ascending _seq

	live      atomic.Int64 // events stored
	liveBytes atomic.Int64 // bytes of the events stored (keys and values)
	evictMu   sync.Mutex   // one eviction at a time

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
	// Remaining events are stored after the eviction.
	Remaining int64
}

func openStream(ctx context.Context, t *catalog.Table, b store.StorageBackend, alloc *seq.Allocator, clk clock.Clock, bg *background) (*StreamTableStore, error) {
	s := &StreamTableStore{t: t, types: t.Types(), b: b, part: t.Partition(), alloc: alloc, clock: clk, bg: bg}
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
// included).
func (s *StreamTableStore) Len() int64 { return s.live.Load() }

// Bytes returns the bytes the stored events take in the storage backend
// (keys and encoded values, expired events not yet evicted included).
func (s *StreamTableStore) Bytes() int64 { return s.liveBytes.Load() }

// over reports whether the stored events exceed a maximum of the table.
func (s *StreamTableStore) over(events, bytes int64) bool {
	return events > s.t.Stream.MaxBuffer || (s.t.Stream.MaxBytes > 0 && bytes > s.t.Stream.MaxBytes)
}

func seqKey(v int64) []byte { return keys.AppendUint64(make([]byte, 0, 8), uint64(v)) }

// Append adds events, all or none, each a value per column in the table's
// column order. They get consecutive _seq values starting at the returned
// one and share one arrival time (_updated). It fails with
// core.ErrInvalidRow (a *core.ColumnError) when an event does not fit the
// table, and with core.ErrInvalidArgument when the events alone exceed the
// table's maximum buffer, in events or in bytes. When the stream exceeds a
// maximum afterwards, Append evicts the oldest events before it returns.
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
		over = s.over(s.live.Add(int64(n)), s.liveBytes.Add(int64(stored)))
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

// write stores the events and returns the bytes they take (keys and
// values).
func (s *StreamTableStore) write(ctx context.Context, events [][]row.Value, first, ts int64, size int) (int, error) {
	buf := make([]byte, 0, size+8*len(events))
	ops := make([]store.Operation, len(events))
	for i, vals := range events {
		r := row.Row{Seq: first + int64(i), Updated: ts, Values: vals}
		kstart := len(buf)
		buf = keys.AppendUint64(buf, uint64(r.Seq))
		vstart := len(buf)
		var err error
		if buf, err = row.Encode(buf, &r, s.types); err != nil {
			return 0, err
		}
		ops[i] = store.PutOp(s.part, buf[kstart:vstart:vstart], buf[vstart:len(buf):len(buf)])
	}
	if len(ops) == 1 {
		return len(buf), s.wrap(s.b.Put(ctx, s.part, ops[0].Key, ops[0].Value))
	}
	if err := s.b.Capabilities().CheckBatch(ops); err != nil {
		return 0, fmt.Errorf("%w: the append of %d events to %s does not fit what the storage backend writes at once, and an append is all or nothing; append fewer events at a time (%v)",
			core.ErrInvalidArgument, len(ops), s.t.FullName(), err)
	}
	return len(buf), s.wrap(s.b.Batch(ctx, ops))
}

// watermark returns the highest _seq that reads may return: every event at
// or below it is either stored or will never be.
func (s *StreamTableStore) watermark() int64 {
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
func (s *StreamTableStore) Evict(ctx context.Context) (EvictStats, error) {
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
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
				st, err = s.Evict(ctx)
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
