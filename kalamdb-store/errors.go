package store

import "errors"

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
	// ErrLeakedIterators is returned by Close when iterators were still open;
	// the backend closed them and then closed itself.
	ErrLeakedIterators = errors.New("kalamdb-store: iterators left open at close")
)
