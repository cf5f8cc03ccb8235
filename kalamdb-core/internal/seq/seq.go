// Package seq allocates a table's _seq values: unique within the table,
// increasing, and never reused, also across restarts.
//
// Writing the counter with every row would make it the hottest key of the
// table and would let two concurrent batches persist it out of order. The
// Allocator instead reserves blocks: before it hands out a value at or above
// the persisted limit it writes a new limit (one Put per block), and after a
// restart it continues from the persisted limit. Values reserved but not
// used before a restart are skipped, so _seq has gaps, never repeats.
package seq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
)

// DefaultBlock is the number of values reserved by one write.
const DefaultBlock = 4096

// Allocator hands out the _seq values of one table. It is safe for
// concurrent use. Several Allocators of one table (in several processes
// sharing a backend) never hand out the same value: each reservation is a
// compare-and-swap of the persisted limit, and one that loses re-reads the
// limit and reserves above it.
//
// Values are taken with one atomic add; only a value outside the block
// reserved takes the mutex, which reserves the next block before any value
// of it is handed out.
type Allocator struct {
	b     store.StorageBackend
	p     store.Partition
	key   []byte
	block int64
	next  atomic.Int64             // the next value to hand out
	res   atomic.Pointer[reserved] // the block this Allocator may hand out
	mu    sync.Mutex               // serialises reservations
}

// reserved is a block of values this Allocator owns, [start, limit), and
// what the backend holds: limit, persisted (absent before the first
// reservation of the table).
type reserved struct {
	start, limit int64
	absent       bool
}

// Open returns the allocator whose reservation is stored under key in p.
// Values start at 1. block <= 0 means DefaultBlock.
func Open(ctx context.Context, b store.StorageBackend, p store.Partition, key []byte, block int64) (*Allocator, error) {
	if block <= 0 {
		block = DefaultBlock
	}
	a := &Allocator{b: b, p: p, key: append([]byte(nil), key...), block: block}
	r, err := a.read(ctx)
	if err != nil {
		return nil, err
	}
	a.next.Store(r.limit)
	a.res.Store(r)
	return a, nil
}

// read returns the persisted limit as an empty block at it.
func (a *Allocator) read(ctx context.Context) (*reserved, error) {
	v, err := a.b.Get(ctx, a.p, a.key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &reserved{start: 1, limit: 1, absent: true}, nil
	case err != nil:
		return nil, fmt.Errorf("seq: reading the reservation: %w", err)
	case len(v) != 8:
		return nil, fmt.Errorf("%w: seq: reservation is %d bytes", core.ErrCorrupt, len(v))
	}
	limit := int64(binary.BigEndian.Uint64(v))
	if limit < 1 {
		return nil, fmt.Errorf("%w: seq: reservation %d", core.ErrCorrupt, limit)
	}
	return &reserved{start: limit, limit: limit}, nil
}

// Next hands out n (>= 1) consecutive values and returns the first. When
// they are not yet reserved it persists a new reservation first; if that
// write fails it returns the error and the values are never used (a gap).
func (a *Allocator) Next(ctx context.Context, n int) (int64, error) {
	return a.NextAbove(ctx, n, 0)
}

// NextAbove is Next with every value greater than floor: a writer that
// replaces a version passes its _seq, so that the new version is newer
// even when another process, with a higher block, wrote the old one. In
// one process values only grow, and floor is always below them.
func (a *Allocator) NextAbove(ctx context.Context, n int, floor int64) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("%w: seq: cannot allocate %d values", core.ErrInvalidArgument, n)
	}
	for {
		if cur := a.next.Load(); cur <= floor {
			a.next.CompareAndSwap(cur, floor+1)
			continue
		}
		end := a.next.Add(int64(n))
		first := end - int64(n)
		if r := a.res.Load(); first >= r.start && end <= r.limit {
			return first, nil
		}
		ok, err := a.reserve(ctx, first, end)
		if err != nil {
			return 0, err
		}
		if ok {
			return first, nil
		}
		// The values belong to another process's block: take others.
	}
}

// reserve makes [first, end) part of this Allocator's block, extending the
// block with a compare-and-swap of the persisted limit. It returns false
// when the values cannot be had (another process reserved them): the
// caller takes new ones, which are above that reservation.
func (a *Allocator) reserve(ctx context.Context, first, end int64) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.res.Load()
	switch {
	case first >= r.start && end <= r.limit:
		return true, nil // reserved meanwhile
	case first < r.start:
		return false, nil // skipped by a lost reservation
	}
	limit := max(r.limit+a.block, end)
	cond := store.CheckValueOp(a.p, a.key, binary.BigEndian.AppendUint64(nil, uint64(r.limit)))
	if r.absent {
		cond = store.CheckAbsentOp(a.p, a.key)
	}
	err := a.b.Batch(ctx, []store.Operation{cond, store.PutOp(a.p, a.key, binary.BigEndian.AppendUint64(nil, uint64(limit)))})
	if errors.Is(err, store.ErrConditionFailed) {
		// Another process reserved: continue above its reservation.
		now, rerr := a.read(ctx)
		if rerr != nil {
			return false, rerr
		}
		for cur := a.next.Load(); cur < now.limit && !a.next.CompareAndSwap(cur, now.limit); cur = a.next.Load() {
		}
		a.res.Store(now)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("seq: reserving values: %w", err)
	}
	a.res.Store(&reserved{start: r.start, limit: limit})
	return true, nil
}

// Last returns the last value handed out, or reserved by a Next that
// failed (0 when there was none).
func (a *Allocator) Last() int64 { return a.next.Load() - 1 }

// maxCommitConflicts bounds the retries of Commit when other processes
// keep reserving values between its read and its batch.
const maxCommitConflicts = 100

// Commit hands out n (>= 1) consecutive values and applies the operations
// that ops returns for the first of them in the same atomic batch as their
// reservation, which reserves exactly those values. Values so handed out
// follow the order of the batches in the backend: a batch that commits
// after another has values above it, with no gap that a later batch could
// fill. Several processes sharing a backend may call it at once (one
// batch at a time per Allocator): one whose reservation lost reads the
// limit again and tries again; a batch that fails a check of ops returns
// that error. ops may be called more than once.
func (a *Allocator) Commit(ctx context.Context, n int, ops func(first int64) ([]store.Operation, error)) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("%w: seq: cannot allocate %d values", core.ErrInvalidArgument, n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for attempt := 0; ; attempt++ {
		r := a.res.Load()
		// Values this Allocator reserved before and did not hand out are
		// skipped: every value is reserved by the batch that writes it.
		first := r.limit
		end := first + int64(n)
		cond := store.CheckValueOp(a.p, a.key, binary.BigEndian.AppendUint64(nil, uint64(r.limit)))
		if r.absent {
			cond = store.CheckAbsentOp(a.p, a.key)
		}
		rest, err := ops(first)
		if err != nil {
			return 0, err
		}
		batch := append([]store.Operation{cond, store.PutOp(a.p, a.key, binary.BigEndian.AppendUint64(nil, uint64(end)))}, rest...)
		err = a.b.Batch(ctx, batch)
		if err == nil {
			a.res.Store(&reserved{start: end, limit: end})
			for cur := a.next.Load(); cur < end && !a.next.CompareAndSwap(cur, end); cur = a.next.Load() {
			}
			return first, nil
		}
		if !errors.Is(err, store.ErrConditionFailed) {
			return 0, err
		}
		if attempt+1 >= maxCommitConflicts {
			return 0, fmt.Errorf("seq: other processes reserved values %d times while this batch waited; try again: %w", maxCommitConflicts, err)
		}
		now, rerr := a.read(ctx)
		if rerr != nil {
			return 0, rerr
		}
		if now.limit == r.limit && now.absent == r.absent {
			// The reservation held: a check of ops failed.
			return 0, err
		}
		a.res.Store(now)
	}
}
