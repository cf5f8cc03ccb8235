package store

import (
	"bytes"
	"fmt"
)

// OpKind says what an Operation does.
type OpKind uint8

// The kinds of Operation. The zero OpKind is invalid.
const (
	// OpPut writes Value under Key, replacing any previous value.
	OpPut OpKind = iota + 1
	// OpDelete removes Key; removing a missing key is not an error.
	OpDelete
	// OpDeleteRange removes every key of the partition in the half-open
	// interval [Key, End); Key < End, and an interval that holds no key is
	// not an error.
	OpDeleteRange
)

// String returns "put", "delete", "delete-range" or "OpKind(n)".
func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpDeleteRange:
		return "delete-range"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Operation is one write of a batch (see StorageBackend.Batch). Build it with
// PutOp, DeleteOp or DeleteRangeOp. Value is used by OpPut only, End by
// OpDeleteRange only.
type Operation struct {
	Kind      OpKind
	Partition Partition
	Key       []byte
	Value     []byte
	// End is the exclusive upper bound of an OpDeleteRange, whose Key is
	// the inclusive lower bound.
	End []byte
}

// PutOp returns an Operation that writes value under key in p.
func PutOp(p Partition, key, value []byte) Operation {
	return Operation{Kind: OpPut, Partition: p, Key: key, Value: value}
}

// DeleteOp returns an Operation that removes key from p.
func DeleteOp(p Partition, key []byte) Operation {
	return Operation{Kind: OpDelete, Partition: p, Key: key}
}

// DeleteRangeOp returns an Operation that removes every key k of p with
// start <= k < end. Both bounds must be valid keys (see ValidateKey) and
// start must sort before end; otherwise Batch rejects the operation with
// ErrInvalidArgument and writes nothing.
func DeleteRangeOp(p Partition, start, end []byte) Operation {
	return Operation{Kind: OpDeleteRange, Partition: p, Key: start, End: end}
}

// MaxKeySize is the largest key, in bytes, that any backend accepts: 4 KiB.
// It is what the table stores of kalamdb-core need (their longest key is
// 2,564 bytes) with room to spare, and it fits inline in every engine a
// backend is likely to sit on, so that no backend has to split keys; see
// ADR-012.
const MaxKeySize = 4 << 10

// MaxValueSize is the largest value, in bytes, that any backend accepts.
const MaxValueSize = 256 << 20

// ValidateKey reports whether key is acceptable as a key: non-empty and at
// most MaxKeySize bytes. The error wraps ErrInvalidArgument.
func ValidateKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: key is empty", ErrInvalidArgument)
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key is %d bytes, the limit is %d (store.MaxKeySize)", ErrInvalidArgument, len(key), MaxKeySize)
	}
	return nil
}

// ValidateValue reports whether value is acceptable as a value: at most
// MaxValueSize bytes. The error wraps ErrInvalidArgument.
func ValidateValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: value is %d bytes, the limit is %d", ErrInvalidArgument, len(value), MaxValueSize)
	}
	return nil
}

// Validate checks the operation's kind, partition, key and value (the
// bounds of a range delete: valid keys, start before end); the error wraps
// ErrInvalidArgument. It does not check that the partition exists.
func (op Operation) Validate() error {
	if op.Kind != OpPut && op.Kind != OpDelete && op.Kind != OpDeleteRange {
		return fmt.Errorf("%w: unknown operation kind %d", ErrInvalidArgument, uint8(op.Kind))
	}
	if op.Partition.IsZero() {
		return fmt.Errorf("%w: %s operation has no partition", ErrInvalidArgument, op.Kind)
	}
	if err := ValidateKey(op.Key); err != nil {
		return fmt.Errorf("%s operation: %w", op.Kind, err)
	}
	switch op.Kind {
	case OpPut:
		if err := ValidateValue(op.Value); err != nil {
			return fmt.Errorf("put operation: %w", err)
		}
	case OpDeleteRange:
		if err := ValidateKey(op.End); err != nil {
			return fmt.Errorf("delete-range operation: end: %w", err)
		}
		if bytes.Compare(op.Key, op.End) >= 0 {
			return fmt.Errorf("%w: delete-range operation: start %x is not before end %x", ErrInvalidArgument, op.Key, op.End)
		}
	}
	return nil
}
