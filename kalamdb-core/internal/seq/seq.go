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
// concurrent use; exactly one Allocator may exist per table.
//
// Values are taken with one atomic add; only a value at or beyond the
// persisted limit takes the mutex, which writes the next reservation before
// any value above the old limit is handed out.
type Allocator struct {
	b     store.StorageBackend
	p     store.Partition
	key   []byte
	block int64

	next  atomic.Int64 // the next value to hand out
	limit atomic.Int64 // the first value not reserved (persisted)
	mu    sync.Mutex   // serialises reservations
}

// Open returns the allocator whose reservation is stored under key in p.
// Values start at 1. block <= 0 means DefaultBlock.
func Open(ctx context.Context, b store.StorageBackend, p store.Partition, key []byte, block int64) (*Allocator, error) {
	if block <= 0 {
		block = DefaultBlock
	}
	a := &Allocator{b: b, p: p, key: append([]byte(nil), key...), block: block}
	start := int64(1)
	v, err := b.Get(ctx, p, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("seq: reading the reservation: %w", err)
	case len(v) != 8:
		return nil, fmt.Errorf("%w: seq: reservation is %d bytes", core.ErrCorrupt, len(v))
	default:
		start = int64(binary.BigEndian.Uint64(v))
		if start < 1 {
			return nil, fmt.Errorf("%w: seq: reservation %d", core.ErrCorrupt, start)
		}
	}
	a.next.Store(start)
	a.limit.Store(start)
	return a, nil
}

// Next hands out n (>= 1) consecutive values and returns the first. When
// they are not yet reserved it persists a new reservation first; if that
// write fails it returns the error and the values are never used (a gap).
func (a *Allocator) Next(ctx context.Context, n int) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("%w: seq: cannot allocate %d values", core.ErrInvalidArgument, n)
	}
	end := a.next.Add(int64(n))
	first := end - int64(n)
	if end <= a.limit.Load() {
		return first, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if limit := a.limit.Load(); end > limit {
		newLimit := max(limit+a.block, end)
		if err := a.b.Put(ctx, a.p, a.key, binary.BigEndian.AppendUint64(nil, uint64(newLimit))); err != nil {
			return 0, fmt.Errorf("seq: reserving values: %w", err)
		}
		a.limit.Store(newLimit)
	}
	return first, nil
}

// Last returns the last value handed out, or reserved by a Next that
// failed (0 when there was none).
func (a *Allocator) Last() int64 { return a.next.Load() - 1 }
