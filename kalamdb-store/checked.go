package store

import (
	"context"
	"fmt"
	"sync"
)

// New wraps an Engine into a StorageBackend. The wrapper is the one place
// that validates arguments, refuses calls after Close, fails calls whose
// context is already done, enforces scan limits and the iterator rules, and
// reports iterators left open at Close. Backend packages call it on the
// engine they construct and return the result.
func New(e Engine) StorageBackend {
	c := &checked{e: e, caps: e.Capabilities()}
	c.iters.next, c.iters.prev = &c.iters, &c.iters
	if g, ok := e.(Gated); ok {
		g.UseGate(Gate{c})
	}
	return c
}

type checked struct {
	e    Engine
	caps Capabilities

	// mu is read-held by every call but CreatePartition and DropPartition
	// for its whole duration, ddl by those two; Close write-holds both (ddl
	// first), so it waits for calls in flight and the engine is never used
	// after its Close. Gate.Drain write-locks mu from inside a
	// DropPartition, which is why partition changes hold ddl instead.
	mu     sync.RWMutex
	ddl    sync.RWMutex
	closed bool

	// iters is the sentinel of the ring of open iterators, guarded by
	// itMu: Close closes those left open.
	itMu  sync.Mutex
	iters checkedIter
}

// enter read-locks c.mu and checks the closed state and ctx. On success
// the caller must c.mu.RUnlock().
func (c *checked) enter(ctx context.Context) error { return c.enterWith(ctx, &c.mu) }

// enterDDL is enter for CreatePartition and DropPartition, with c.ddl.
func (c *checked) enterDDL(ctx context.Context) error { return c.enterWith(ctx, &c.ddl) }

func (c *checked) enterWith(ctx context.Context, l *sync.RWMutex) error {
	l.RLock()
	if c.closed {
		l.RUnlock()
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		l.RUnlock()
		return fmt.Errorf("kalamdb-store: %w", err)
	}
	return nil
}

func checkPartition(p Partition) error {
	if p.IsZero() {
		return fmt.Errorf("%w: zero Partition (build one with NewPartition)", ErrInvalidArgument)
	}
	return nil
}

func (c *checked) Get(ctx context.Context, p Partition, key []byte) ([]byte, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	if err := checkPartition(p); err != nil {
		return nil, err
	}
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	return c.e.Get(ctx, p, key)
}

func (c *checked) Put(ctx context.Context, p Partition, key, value []byte) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	defer c.mu.RUnlock()
	if err := checkPartition(p); err != nil {
		return err
	}
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ValidateValue(value); err != nil {
		return err
	}
	if c.caps.MaxBatchBytes > 0 && len(key)+len(value) > c.caps.MaxBatchBytes {
		return fmt.Errorf("%w: a put of %d bytes of key and value is over this backend's limit of %d bytes written at once (Capabilities.MaxBatchBytes)",
			ErrInvalidArgument, len(key)+len(value), c.caps.MaxBatchBytes)
	}
	return c.e.Put(ctx, p, key, value)
}

func (c *checked) Delete(ctx context.Context, p Partition, key []byte) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	defer c.mu.RUnlock()
	if err := checkPartition(p); err != nil {
		return err
	}
	if err := ValidateKey(key); err != nil {
		return err
	}
	return c.e.Delete(ctx, p, key)
}

func (c *checked) Batch(ctx context.Context, ops []Operation) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	defer c.mu.RUnlock()
	for i := range ops {
		if err := ops[i].Validate(); err != nil {
			return fmt.Errorf("batch operation %d: %w", i, err)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if err := c.caps.CheckBatch(ops); err != nil {
		return err
	}
	return c.e.Batch(ctx, ops)
}

func (c *checked) Scan(ctx context.Context, p Partition, opts ScanOptions) (Iterator, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	if err := checkPartition(p); err != nil {
		return nil, err
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%w: scan limit %d is negative", ErrInvalidArgument, opts.Limit)
	}
	if len(opts.Prefix) > MaxKeySize {
		return nil, fmt.Errorf("%w: scan prefix is %d bytes, longer than any key (the limit is %d, store.MaxKeySize)",
			ErrInvalidArgument, len(opts.Prefix), MaxKeySize)
	}
	if len(opts.Start) > MaxKeySize {
		return nil, fmt.Errorf("%w: scan start is %d bytes, longer than any key (the limit is %d, store.MaxKeySize)",
			ErrInvalidArgument, len(opts.Start), MaxKeySize)
	}
	it := &checkedIter{c: c, limit: opts.Limit, ctx: ctx, done: ctx.Done()}
	r, empty := opts.rangeIn(it.bounds[:0])
	if empty {
		ok, err := c.e.PartitionExists(ctx, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrPartitionNotFound, p.Name())
		}
		it.inner = emptyIter{}
	} else {
		var err error
		if it.inner, err = c.e.Scan(ctx, p, r); err != nil {
			return nil, err
		}
	}
	c.itMu.Lock()
	it.prev, it.next = c.iters.prev, &c.iters
	it.prev.next, c.iters.prev = it, it
	c.itMu.Unlock()
	return it, nil
}

func (c *checked) PartitionExists(ctx context.Context, p Partition) (bool, error) {
	if err := c.enter(ctx); err != nil {
		return false, err
	}
	defer c.mu.RUnlock()
	if err := checkPartition(p); err != nil {
		return false, err
	}
	return c.e.PartitionExists(ctx, p)
}

func (c *checked) CreatePartition(ctx context.Context, p Partition) error {
	if err := c.enterDDL(ctx); err != nil {
		return err
	}
	defer c.ddl.RUnlock()
	if err := checkPartition(p); err != nil {
		return err
	}
	return c.e.CreatePartition(ctx, p)
}

func (c *checked) ListPartitions(ctx context.Context) ([]Partition, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	return c.e.ListPartitions(ctx)
}

func (c *checked) DropPartition(ctx context.Context, p Partition) error {
	if err := c.enterDDL(ctx); err != nil {
		return err
	}
	defer c.ddl.RUnlock()
	if err := checkPartition(p); err != nil {
		return err
	}
	return c.e.DropPartition(ctx, p)
}

func (c *checked) Capabilities() Capabilities { return c.caps }

func (c *checked) Close() error {
	c.ddl.Lock()
	defer c.ddl.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.itMu.Lock()
	var leaked []*checkedIter
	for it := c.iters.next; it != &c.iters; it = it.next {
		leaked = append(leaked, it)
	}
	c.itMu.Unlock()
	nleaked := 0
	for _, it := range leaked {
		it.mu.Lock()
		if it.closeLocked(fmt.Errorf("%w: the backend was closed under this iterator", ErrClosed)) {
			nleaked++
		}
		it.mu.Unlock()
	}
	err := c.e.Close()
	if nleaked > 0 {
		leakErr := fmt.Errorf("%w: %d iterator(s) were not closed", ErrLeakedIterators, nleaked)
		if err != nil {
			return fmt.Errorf("%w; closing the engine: %w", leakErr, err)
		}
		return leakErr
	}
	return err
}

// checkedIter enforces the Iterator contract over an engine iterator: the
// limit, context cancellation, nil Key/Value when not positioned, sticky
// errors and an idempotent Close.
//
// Close may race the backend's Close (which closes leaked iterators): mu
// makes exactly one of them close the engine iterator. Every other method
// belongs to the iterator's one goroutine.
type checkedIter struct {
	c     *checked
	inner Iterator
	limit int
	n     int
	ctx   context.Context
	done  <-chan struct{}
	valid bool
	ended bool
	err   error

	mu     sync.Mutex
	closed bool

	// prev and next link the iterator into c.iters while it is open.
	prev, next *checkedIter

	// bounds holds the scan's Range when it fits, saving an allocation.
	bounds [inlineBounds]byte
}

// inlineBounds is the room a checkedIter has for its Range's bounds: twice
// a 32-byte prefix or a prefix and a start of 64 bytes together.
const inlineBounds = 65

func (it *checkedIter) Next() bool {
	it.valid = false
	if it.ended || it.closed {
		return false
	}
	if it.done != nil {
		select {
		case <-it.done:
			it.err = fmt.Errorf("kalamdb-store: scan: %w", it.ctx.Err())
			it.ended = true
			return false
		default:
		}
	}
	if it.limit > 0 && it.n >= it.limit {
		it.ended = true
		return false
	}
	if !it.inner.Next() {
		it.ended = true
		it.err = it.inner.Err()
		return false
	}
	it.n++
	it.valid = true
	return true
}

func (it *checkedIter) Key() []byte {
	if !it.valid {
		return nil
	}
	return it.inner.Key()
}

func (it *checkedIter) Value() []byte {
	if !it.valid {
		return nil
	}
	return it.inner.Value()
}

func (it *checkedIter) Err() error { return it.err }

func (it *checkedIter) Close() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.closeLocked(nil)
	return it.err
}

// closeLocked closes the engine iterator once, recording cause (if the
// iterator has no error yet) and then the engine iterator's own error. It
// reports whether this call closed it.
func (it *checkedIter) closeLocked(cause error) bool {
	it.valid = false
	if it.closed {
		return false
	}
	it.closed = true
	if it.err == nil {
		it.err = cause
	}
	if cerr := it.inner.Close(); cerr != nil && it.err == nil {
		it.err = cerr
	}
	it.c.itMu.Lock()
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
	it.c.itMu.Unlock()
	return true
}

type emptyIter struct{}

func (emptyIter) Next() bool    { return false }
func (emptyIter) Key() []byte   { return nil }
func (emptyIter) Value() []byte { return nil }
func (emptyIter) Err() error    { return nil }
func (emptyIter) Close() error  { return nil }
