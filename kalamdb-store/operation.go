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
	// OpCheckAbsent writes nothing: it is a condition of the batch, that
	// Key does not exist in the partition before the batch.
	OpCheckAbsent
	// OpCheckValue writes nothing: it is a condition of the batch, that
	// Key exists in the partition before the batch and holds exactly Value
	// (an empty Value matches an empty value, never a missing key).
	OpCheckValue
)

// String returns "put", "delete", "delete-range", "check-absent",
// "check-value" or "OpKind(n)".
func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpDeleteRange:
		return "delete-range"
	case OpCheckAbsent:
		return "check-absent"
	case OpCheckValue:
		return "check-value"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// IsCheck reports whether k is a check (OpCheckAbsent, OpCheckValue): a
// condition of its batch rather than a write.
func (k OpKind) IsCheck() bool { return k == OpCheckAbsent || k == OpCheckValue }

// Operation is one write, or one check, of a batch (see
// StorageBackend.Batch). Build it with PutOp, DeleteOp, DeleteRangeOp,
// CheckAbsentOp or CheckValueOp. Value is used by OpPut and OpCheckValue
// only, End by OpDeleteRange only.
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

// CheckAbsentOp returns a check that key does not exist in p before the
// batch. With a PutOp of the same key it makes a put-if-absent:
//
//	err := b.Batch(ctx, []store.Operation{
//		store.CheckAbsentOp(p, key),
//		store.PutOp(p, key, value),
//	})
//	if errors.Is(err, store.ErrConditionFailed) { /* the key existed: nothing was written */ }
func CheckAbsentOp(p Partition, key []byte) Operation {
	return Operation{Kind: OpCheckAbsent, Partition: p, Key: key}
}

// CheckValueOp returns a check that key exists in p before the batch and
// holds exactly value. With a PutOp of the same key it makes a
// compare-and-swap from the value a caller read to a new one.
func CheckValueOp(p Partition, key, value []byte) Operation {
	return Operation{Kind: OpCheckValue, Partition: p, Key: key, Value: value}
}

// HasChecks reports whether ops hold a check (OpCheckAbsent or
// OpCheckValue): an engine may take a faster path for a batch without.
func HasChecks(ops []Operation) bool {
	for i := range ops {
		if ops[i].Kind.IsCheck() {
			return true
		}
	}
	return false
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
	if op.Kind < OpPut || op.Kind > OpCheckValue {
		return fmt.Errorf("%w: unknown operation kind %d", ErrInvalidArgument, uint8(op.Kind))
	}
	if op.Partition.IsZero() {
		return fmt.Errorf("%w: %s operation has no partition", ErrInvalidArgument, op.Kind)
	}
	if err := ValidateKey(op.Key); err != nil {
		return fmt.Errorf("%s operation: %w", op.Kind, err)
	}
	switch op.Kind {
	case OpPut, OpCheckValue:
		if err := ValidateValue(op.Value); err != nil {
			return fmt.Errorf("%s operation: %w", op.Kind, err)
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

// EvalChecks evaluates the checks of ops in batch order, for an engine's
// Batch: read(i) returns the value of ops[i].Key in ops[i].Partition
// before the batch, and whether the key exists. It returns the
// *ConditionError of the first check that does not hold, nil when every
// check holds (or there is none), or read's error. The engine calls it
// where the checks and its write are atomic together.
func EvalChecks(ops []Operation, read func(i int) (value []byte, exists bool, err error)) error {
	for i := range ops {
		op := &ops[i]
		if !op.Kind.IsCheck() {
			continue
		}
		v, exists, err := read(i)
		if err != nil {
			return err
		}
		if !CheckHolds(*op, v, exists) {
			return NewConditionError(i, *op, exists)
		}
	}
	return nil
}

// CheckHolds reports whether the check op holds for a key that holds value
// (exists) or is missing (!exists).
func CheckHolds(op Operation, value []byte, exists bool) bool {
	if op.Kind == OpCheckAbsent {
		return !exists
	}
	return exists && bytes.Equal(value, op.Value)
}
