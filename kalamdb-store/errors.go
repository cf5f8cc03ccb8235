package store

import (
	"errors"
	"fmt"
)

// Sentinel errors of the storage contract. Backends wrap them (and engine
// errors) with %w, so callers test them with errors.Is.
var (
	// ErrNotFound reports that a key does not exist in the partition.
	ErrNotFound = errors.New("kalamdb-store: key not found")
	// ErrPartitionNotFound reports an operation on a partition that does not exist.
	ErrPartitionNotFound = errors.New("kalamdb-store: partition not found")
	// ErrClosed reports an operation on a backend (or iterator) that was closed.
	ErrClosed = errors.New("kalamdb-store: closed")
	// ErrInvalidArgument reports bad input: an empty key, an invalid partition
	// name, an unknown operation kind, a bad configuration value, …
	ErrInvalidArgument = errors.New("kalamdb-store: invalid argument")
	// ErrUnsupported reports an operation or option the backend cannot provide.
	ErrUnsupported = errors.New("kalamdb-store: unsupported")
	// ErrUnavailable reports that a backend over the network cannot be
	// reached now: its server is down, refuses connections, is still
	// loading, or the connection broke. The operation may succeed if tried
	// again later. A write that failed with it may or may not have been
	// applied: the reply was lost, not the request.
	ErrUnavailable = errors.New("kalamdb-store: backend unavailable")
	// ErrConditionFailed reports that a check of a batch (CheckAbsentOp,
	// CheckValueOp) did not hold, so that nothing of the batch was
	// applied. The error that wraps it is a *ConditionError, which names
	// the operation, the partition and the key.
	ErrConditionFailed = errors.New("kalamdb-store: condition failed")
	// ErrLeakedIterators is returned by Close when iterators were still open;
	// the backend closed them and then closed itself.
	ErrLeakedIterators = errors.New("kalamdb-store: iterators left open at close")
)

// ConditionError is the error of a Batch whose check did not hold: nothing
// of the batch was applied. It wraps ErrConditionFailed; errors.As finds it
// to learn which check failed. Engines build it with NewConditionError.
type ConditionError struct {
	// Index is the position of the check in the batch.
	Index int
	// Kind is OpCheckAbsent or OpCheckValue.
	Kind OpKind
	// Partition and Key are those of the check; Key is the error's own
	// copy.
	Partition Partition
	Key       []byte
	// Exists tells what the key was before the batch: present (a failed
	// check-absent, or a check-value that found another value) or missing
	// (a failed check-value).
	Exists bool
}

// NewConditionError returns the error for the check ops[index] of a batch,
// found not to hold; exists tells whether its key was present.
func NewConditionError(index int, op Operation, exists bool) *ConditionError {
	return &ConditionError{Index: index, Kind: op.Kind, Partition: op.Partition, Key: append([]byte(nil), op.Key...), Exists: exists}
}

// Error says which check failed, on which key of which partition.
func (e *ConditionError) Error() string {
	what := "the key is missing"
	switch {
	case e.Kind == OpCheckAbsent:
		what = "the key exists"
	case e.Exists:
		what = "the key holds another value"
	}
	return fmt.Sprintf("%v: batch operation %d (%s) on key %q of partition %q: %s",
		ErrConditionFailed, e.Index, e.Kind, e.Key, e.Partition.Name(), what)
}

// Unwrap returns ErrConditionFailed.
func (e *ConditionError) Unwrap() error { return ErrConditionFailed }
