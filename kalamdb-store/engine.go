package store

import (
	"bytes"
	"context"
)

// Engine is what a backend implements. New wraps an Engine into a
// StorageBackend that validates arguments, tracks the closed state, checks
// contexts and accounts for iterators, so an Engine does none of that.
//
// New guarantees an Engine that, on every call:
//   - the engine is open (Close is called once, after every other call and
//     every iterator has returned);
//   - ctx was not done when the call began;
//   - partitions are valid (non-zero), keys pass ValidateKey and values pass
//     ValidateValue;
//   - Batch receives at least one operation, each one valid by
//     Operation.Validate, and no more than the engine's Capabilities allow
//     (MaxBatchOps, MaxBatchBytes; a Put too, for MaxBatchBytes);
//   - Scan receives a well-formed Range (see Range).
//
// An Engine must itself: return ErrNotFound for a missing key and
// ErrPartitionNotFound for a partition that does not exist (checked
// atomically with the operation), apply a Batch atomically, evaluate the
// checks of a Batch (OpCheckAbsent, OpCheckValue) against the state before
// it, atomically with its writes against every other writer, and fail a
// Batch whose check does not hold, writing nothing, with
// NewConditionError for the first such check in batch order (after
// ErrPartitionNotFound for a missing partition, which comes first), copy what it
// keeps of caller slices and what it returns from Get, sort ListPartitions by
// name, and be safe for concurrent use. Iterators returned by Scan are closed
// exactly once, by the wrapper. An engine that must keep DropPartition from
// pulling a partition out from under a data call may use a lock of its own
// or implement Gated and drain the wrapper's call gate.
type Engine interface {
	Get(ctx context.Context, p Partition, key []byte) ([]byte, error)
	Put(ctx context.Context, p Partition, key, value []byte) error
	Delete(ctx context.Context, p Partition, key []byte) error
	Batch(ctx context.Context, ops []Operation) error
	// Scan returns the keys of p inside r, ascending (descending when
	// r.Reverse). r.Limit is a hint: the wrapper stops after Limit keys
	// itself, but an engine may use it to size its reads.
	Scan(ctx context.Context, p Partition, r Range) (Iterator, error)
	PartitionExists(ctx context.Context, p Partition) (bool, error)
	CreatePartition(ctx context.Context, p Partition) error
	ListPartitions(ctx context.Context) ([]Partition, error)
	DropPartition(ctx context.Context, p Partition) error
	Capabilities() Capabilities
	Close() error
}

// Range is the half-open key interval [Lower, Upper) that ScanOptions
// reduce to. A nil Lower is unbounded below, a nil Upper unbounded above.
// When both are set, Lower < Upper: the wrapper never passes an empty range.
type Range struct {
	Lower   []byte
	Upper   []byte
	Reverse bool
	Limit   int
	// Bulk is ScanOptions.Bulk, a hint.
	Bulk bool
}

// Contains reports whether key lies in [Lower, Upper).
func (r Range) Contains(key []byte) bool {
	if r.Lower != nil && bytes.Compare(key, r.Lower) < 0 {
		return false
	}
	return r.Upper == nil || bytes.Compare(key, r.Upper) < 0
}

// ToRange reduces scan options to the half-open interval they select. It
// reports empty=true when no key can match (the interval is empty). The
// returned bounds share one fresh allocation and alias nothing of o.
func (o ScanOptions) ToRange() (r Range, empty bool) { return o.rangeIn(nil) }

// rangeIn is ToRange with the bounds in buf when they fit its capacity (in
// a fresh allocation otherwise).
func (o ScanOptions) rangeIn(buf []byte) (r Range, empty bool) {
	r.Reverse, r.Limit, r.Bulk = o.Reverse, o.Limit, o.Bulk
	if len(o.Prefix) == 0 && len(o.Start) == 0 {
		return r, false
	}
	// Every bound is a copy of the prefix or the start, perhaps with one
	// more byte; one buffer holds them all.
	if n := 2*len(o.Prefix) + len(o.Start) + 1; cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	buf = buf[:0]
	take := func(b []byte, zero bool) []byte {
		at := len(buf)
		buf = append(buf, b...)
		if zero {
			buf = append(buf, 0)
		}
		return buf[at:len(buf):len(buf)]
	}
	if len(o.Prefix) > 0 {
		r.Lower = take(o.Prefix, false)
		if i := lastNonFF(o.Prefix); i >= 0 {
			r.Upper = take(o.Prefix[:i+1], false)
			r.Upper[i]++
		}
	}
	if len(o.Start) > 0 {
		if !o.Reverse {
			if c := compareBound(o.Start, o.ExclusiveStart, r.Lower); c > 0 {
				r.Lower = take(o.Start, o.ExclusiveStart)
			}
		} else if r.Upper == nil || compareBound(o.Start, !o.ExclusiveStart, r.Upper) < 0 {
			r.Upper = take(o.Start, !o.ExclusiveStart)
		}
	}
	if r.Lower != nil && r.Upper != nil && bytes.Compare(r.Lower, r.Upper) >= 0 {
		return r, true
	}
	return r, false
}

// compareBound compares b, followed by a 0x00 byte when zero is set, with
// other (nil sorts first).
func compareBound(b []byte, zero bool, other []byte) int {
	if other == nil {
		return 1
	}
	c := bytes.Compare(b, other)
	if c == 0 && zero {
		return 1
	}
	if zero && c < 0 && len(b) < len(other) && bytes.HasPrefix(other, b) {
		// b+0x00 against a longer key that starts with b.
		return bytes.Compare(append(append(make([]byte, 0, len(b)+1), b...), 0), other)
	}
	return c
}

func lastNonFF(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xFF {
			return i
		}
	}
	return -1
}

// PrefixSuccessor returns the smallest key greater than every key that starts
// with prefix, or nil when there is none (prefix is empty or all 0xFF).
func PrefixSuccessor(prefix []byte) []byte {
	i := lastNonFF(prefix)
	if i < 0 {
		return nil
	}
	end := append([]byte(nil), prefix[:i+1]...)
	end[i]++
	return end
}
