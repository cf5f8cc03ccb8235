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
//     Operation.Validate;
//   - Scan receives a well-formed Range (see Range).
//
// An Engine must itself: return ErrNotFound for a missing key and
// ErrPartitionNotFound for a partition that does not exist (checked
// atomically with the operation), apply a Batch atomically, copy what it
// keeps of caller slices and what it returns from Get, sort ListPartitions by
// name, and be safe for concurrent use. Iterators returned by Scan are closed
// exactly once, by the wrapper.
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
// returned slices are fresh copies.
func (o ScanOptions) ToRange() (r Range, empty bool) {
	r.Reverse, r.Limit = o.Reverse, o.Limit
	if len(o.Prefix) > 0 {
		r.Lower = clone(o.Prefix)
		r.Upper = PrefixSuccessor(o.Prefix)
	}
	if len(o.Start) > 0 {
		if !o.Reverse {
			lo := clone(o.Start)
			if o.ExclusiveStart {
				lo = append(lo, 0)
			}
			if r.Lower == nil || bytes.Compare(lo, r.Lower) > 0 {
				r.Lower = lo
			}
		} else {
			up := clone(o.Start)
			if !o.ExclusiveStart {
				up = append(up, 0)
			}
			if r.Upper == nil || bytes.Compare(up, r.Upper) < 0 {
				r.Upper = up
			}
		}
	}
	if r.Lower != nil && r.Upper != nil && bytes.Compare(r.Lower, r.Upper) >= 0 {
		return r, true
	}
	return r, false
}

// PrefixSuccessor returns the smallest key greater than every key that starts
// with prefix, or nil when there is none (prefix is empty or all 0xFF).
func PrefixSuccessor(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := clone(prefix[:i+1])
			end[i]++
			return end
		}
	}
	return nil
}

func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)+1), b...)
}
