// Package faultstore wraps a StorageBackend and makes chosen operations
// fail, deterministically, so that code built on the storage contract can be
// tested against every failure point: "fail the 7th write", "crash at the
// 12th operation and refuse everything after it".
//
// A failed operation is not applied: the wrapper returns the injected error
// instead of calling the backend. A lost reply (an error wrapping
// ErrReplyLost, as LoseReplyNth returns) is the other way round: the write
// is applied and the caller gets the error, as when a connection drops
// after the server committed, so code that must tell the two apart can be
// tested. A crash (CrashAt) models a process that dies
// at that point: the operation and every later one fail with ErrCrashed until
// Reset, and the test then reopens or recovers from the inner backend, which
// holds exactly what was applied before the crash.
//
// With no rule set the wrapper is transparent; it passes the conformance
// suite like any backend.
package faultstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// ErrInjected is the error FailNth and FailWhen return by default.
var ErrInjected = errors.New("faultstore: injected fault")

// ErrCrashed is returned by every operation from the crash point on.
var ErrCrashed = errors.New("faultstore: simulated crash")

// ErrReplyLost is the error of a write that was applied but whose reply was
// lost: the wrapper applies the operation, then returns the rule's error.
var ErrReplyLost = errors.New("faultstore: reply lost after the write applied")

// Op names an operation of the contract.
type Op string

// The operations a Rule sees. OpNext is one step of an iterator.
const (
	OpGet    Op = "get"
	OpPut    Op = "put"
	OpDelete Op = "delete"
	OpBatch  Op = "batch"
	OpScan   Op = "scan"
	OpNext   Op = "next"
	OpExists Op = "exists"
	OpCreate Op = "create"
	OpList   Op = "list"
	OpDrop   Op = "drop"
)

// IsWrite reports whether op changes data or partitions.
func (op Op) IsWrite() bool {
	switch op {
	case OpPut, OpDelete, OpBatch, OpCreate, OpDrop:
		return true
	}
	return false
}

// A Rule decides, for each operation in order, whether it fails: it returns
// nil to let the operation through. Rules are called under the wrapper's lock,
// one at a time.
type Rule func(op Op) error

// Backend is a StorageBackend that consults a Rule before every operation.
type Backend struct {
	inner store.StorageBackend

	mu      sync.Mutex
	rule    Rule
	crashed bool
	counts  map[Op]int
}

// Wrap returns a transparent fault-injecting wrapper around b.
func Wrap(b store.StorageBackend) *Backend {
	return &Backend{inner: b, counts: map[Op]int{}}
}

// SetRule installs r (nil removes any rule) and clears the crashed state.
func (b *Backend) SetRule(r Rule) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rule, b.crashed = r, false
}

// Reset removes the rule, clears the crashed state and the counts.
func (b *Backend) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rule, b.crashed, b.counts = nil, false, map[Op]int{}
}

// Count returns how many operations of kind op were let through.
func (b *Backend) Count(op Op) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[op]
}

// Crashed reports whether a crash rule fired.
func (b *Backend) Crashed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.crashed
}

// Inner returns the wrapped backend.
func (b *Backend) Inner() store.StorageBackend { return b.inner }

func (b *Backend) check(op Op) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.crashed {
		return fmt.Errorf("%s: %w", op, ErrCrashed)
	}
	if b.rule != nil {
		if err := b.rule(op); err != nil {
			if errors.Is(err, ErrCrashed) {
				b.crashed = true
			}
			if errors.Is(err, ErrReplyLost) {
				b.counts[op]++ // applied
			}
			return err
		}
	}
	b.counts[op]++
	return nil
}

// lost applies a write whose rule error is a lost reply and returns the
// error; any other error is returned as is, the write not applied.
func (b *Backend) lost(err error, apply func() error) error {
	if errors.Is(err, ErrReplyLost) {
		if aerr := apply(); aerr != nil {
			return aerr
		}
	}
	return err
}

// FailNth fails the n-th operation (1-based) among those match accepts,
// once, with ErrInjected; a nil match accepts every operation.
func FailNth(n int, match func(Op) bool) Rule {
	seen := 0
	return func(op Op) error {
		if match != nil && !match(op) {
			return nil
		}
		seen++
		if seen == n {
			return fmt.Errorf("%s #%d: %w", op, n, ErrInjected)
		}
		return nil
	}
}

// CrashAt fails the n-th operation (1-based) among those match accepts with
// ErrCrashed, and every operation after it, until SetRule or Reset.
func CrashAt(n int, match func(Op) bool) Rule {
	seen := 0
	return func(op Op) error {
		if match != nil && !match(op) {
			return nil
		}
		seen++
		if seen >= n {
			return fmt.Errorf("%s #%d: %w", op, seen, ErrCrashed)
		}
		return nil
	}
}

// LoseReplyNth applies the n-th write (1-based) among those match accepts
// and, once, returns an error wrapping ErrReplyLost for it; a nil match
// accepts every write. Reads are never matched: a read has no effect to
// keep.
func LoseReplyNth(n int, match func(Op) bool) Rule {
	seen := 0
	return func(op Op) error {
		if !op.IsWrite() || match != nil && !match(op) {
			return nil
		}
		seen++
		if seen == n {
			return fmt.Errorf("%s #%d: %w", op, n, ErrReplyLost)
		}
		return nil
	}
}

// Writes is a match function for FailNth and CrashAt that accepts the
// operations that change data or partitions.
func Writes(op Op) bool { return op.IsWrite() }

// Get implements store.StorageBackend.
func (b *Backend) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	if err := b.check(OpGet); err != nil {
		return nil, err
	}
	return b.inner.Get(ctx, p, key)
}

// Put implements store.StorageBackend.
func (b *Backend) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	if err := b.check(OpPut); err != nil {
		return b.lost(err, func() error { return b.inner.Put(ctx, p, key, value) })
	}
	return b.inner.Put(ctx, p, key, value)
}

// Delete implements store.StorageBackend.
func (b *Backend) Delete(ctx context.Context, p store.Partition, key []byte) error {
	if err := b.check(OpDelete); err != nil {
		return b.lost(err, func() error { return b.inner.Delete(ctx, p, key) })
	}
	return b.inner.Delete(ctx, p, key)
}

// Batch implements store.StorageBackend.
func (b *Backend) Batch(ctx context.Context, ops []store.Operation) error {
	if err := b.check(OpBatch); err != nil {
		return b.lost(err, func() error { return b.inner.Batch(ctx, ops) })
	}
	return b.inner.Batch(ctx, ops)
}

// Scan implements store.StorageBackend; each step of the iterator is an
// OpNext that a rule may fail, ending the iteration with that error.
func (b *Backend) Scan(ctx context.Context, p store.Partition, opts store.ScanOptions) (store.Iterator, error) {
	if err := b.check(OpScan); err != nil {
		return nil, err
	}
	it, err := b.inner.Scan(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return &iterator{b: b, Iterator: it}, nil
}

// PartitionExists implements store.StorageBackend.
func (b *Backend) PartitionExists(ctx context.Context, p store.Partition) (bool, error) {
	if err := b.check(OpExists); err != nil {
		return false, err
	}
	return b.inner.PartitionExists(ctx, p)
}

// CreatePartition implements store.StorageBackend.
func (b *Backend) CreatePartition(ctx context.Context, p store.Partition) error {
	if err := b.check(OpCreate); err != nil {
		return b.lost(err, func() error { return b.inner.CreatePartition(ctx, p) })
	}
	return b.inner.CreatePartition(ctx, p)
}

// ListPartitions implements store.StorageBackend.
func (b *Backend) ListPartitions(ctx context.Context) ([]store.Partition, error) {
	if err := b.check(OpList); err != nil {
		return nil, err
	}
	return b.inner.ListPartitions(ctx)
}

// DropPartition implements store.StorageBackend.
func (b *Backend) DropPartition(ctx context.Context, p store.Partition) error {
	if err := b.check(OpDrop); err != nil {
		return b.lost(err, func() error { return b.inner.DropPartition(ctx, p) })
	}
	return b.inner.DropPartition(ctx, p)
}

// Capabilities implements store.StorageBackend.
func (b *Backend) Capabilities() store.Capabilities { return b.inner.Capabilities() }

// Close closes the wrapped backend; it is never failed by a rule, so tests
// can always release resources.
func (b *Backend) Close() error { return b.inner.Close() }

type iterator struct {
	b *Backend
	store.Iterator
	err error
}

func (it *iterator) Next() bool {
	if it.err != nil {
		return false
	}
	if err := it.b.check(OpNext); err != nil {
		it.err = err
		return false
	}
	return it.Iterator.Next()
}

func (it *iterator) Key() []byte {
	if it.err != nil {
		return nil
	}
	return it.Iterator.Key()
}

func (it *iterator) Value() []byte {
	if it.err != nil {
		return nil
	}
	return it.Iterator.Value()
}

func (it *iterator) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.Iterator.Err()
}

func (it *iterator) Close() error {
	err := it.Iterator.Close()
	if it.err != nil {
		return it.err
	}
	return err
}
