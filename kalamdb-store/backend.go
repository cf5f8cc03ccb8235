package store

import (
	"context"
	"fmt"
)

// StorageBackend is the storage contract of KalamDB (ADR-003): an ordered
// key-value store divided into partitions. The rules every implementation
// follows are in the package documentation; kalamdb-store/storetest checks
// them.
//
// Obtain one from a backend package (memory.New, rocksdb.Open, …) or by name
// through a Registry. Every method is safe for concurrent use.
type StorageBackend interface {
	// Get returns the value stored under key in p, or ErrNotFound.
	// CONTRACT: the returned slice is the caller's to keep and modify.
	Get(ctx context.Context, p Partition, key []byte) ([]byte, error)

	// Put stores value under key in p, replacing any previous value.
	Put(ctx context.Context, p Partition, key, value []byte) error

	// Delete removes key from p. Deleting a missing key succeeds.
	Delete(ctx context.Context, p Partition, key []byte) error

	// Batch applies ops atomically and in order; a later operation on the
	// same key wins (a range delete removes what earlier operations of the
	// batch put in its interval, not what later ones put). If any operation
	// is invalid or names a partition that does not exist, nothing is
	// applied. An empty batch is a no-op.
	//
	// Checks (CheckAbsentOp, CheckValueOp) are conditions of the batch,
	// evaluated atomically with its writes against the state before the
	// batch, wherever they stand in it: if one does not hold, nothing is
	// applied and the error wraps ErrConditionFailed (a *ConditionError
	// naming the first such check, its partition and key).
	Batch(ctx context.Context, ops []Operation) error

	// Scan returns an iterator over the keys of p selected by opts. The
	// caller must Close it. See ScanOptions for the selection and the
	// package documentation for what the iterator sees of concurrent writes.
	Scan(ctx context.Context, p Partition, opts ScanOptions) (Iterator, error)

	// PartitionExists reports whether p exists.
	PartitionExists(ctx context.Context, p Partition) (bool, error)

	// CreatePartition creates p; creating one that exists succeeds.
	CreatePartition(ctx context.Context, p Partition) error

	// ListPartitions returns every partition, sorted by name.
	ListPartitions(ctx context.Context) ([]Partition, error)

	// DropPartition removes p and all its keys, or returns
	// ErrPartitionNotFound.
	DropPartition(ctx context.Context, p Partition) error

	// Capabilities reports the optional guarantees of this backend.
	Capabilities() Capabilities

	// Close releases the backend. Operations in flight finish first; later
	// ones fail with ErrClosed. Iterators still open are closed and reported
	// with ErrLeakedIterators. Closing twice returns nil.
	Close() error
}

// ScanOptions selects the keys a Scan returns. The zero value selects every
// key of the partition in ascending order.
type ScanOptions struct {
	// Prefix, when non-empty, keeps only keys that start with it.
	Prefix []byte
	// Start, when non-empty, positions the scan: a forward scan begins at the
	// first key >= Start, a reverse scan at the last key <= Start. Keys
	// outside Prefix are never returned, wherever Start points.
	Start []byte
	// ExclusiveStart leaves Start itself out: pass the last key of a page as
	// Start with ExclusiveStart to resume after it, in either direction.
	ExclusiveStart bool
	// Limit, when positive, stops the scan after that many keys. Zero means
	// no limit; a negative limit is ErrInvalidArgument.
	Limit int
	// Reverse scans in descending key order.
	Reverse bool
	// Bulk hints that the scan reads a large range once, as a flush or an
	// export does: the engine may read ahead and keep what it reads out of
	// its caches, so that the scan does not evict the data other calls
	// keep reading. It changes no result; engines without such a choice
	// ignore it.
	Bulk bool
}

// Iterator walks the result of a Scan:
//
//	it, err := backend.Scan(ctx, p, store.ScanOptions{Prefix: []byte("user1/")})
//	if err != nil { … }
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { … }
//
// CONTRACT: Key and Value return read-only slices that are valid only until
// the next call to Next or Close; copy them to keep them. An iterator is for
// one goroutine at a time.
type Iterator interface {
	// Next advances to the next key and reports whether there is one. It
	// returns false at the end of the range, after an error (see Err), and
	// after Close.
	Next() bool
	// Key returns the current key, or nil when Next has not returned true.
	Key() []byte
	// Value returns the current value, or nil when Next has not returned true.
	Value() []byte
	// Err returns the error that ended the iteration early, if any. An
	// engine error or a cancelled context is never reported as a plain end.
	Err() error
	// Close releases the iterator and returns Err. It is idempotent and safe
	// after the iterator was exhausted.
	Close() error
}

// Capabilities describes optional guarantees a backend makes. The
// conformance suite checks each capability a backend claims, and checks the
// weaker rule where it does not claim it.
type Capabilities struct {
	// SnapshotScans: an iterator sees the partition exactly as it was when
	// Scan returned, whatever is written, deleted or dropped afterwards.
	SnapshotScans bool
	// Durable: data and partitions survive Close and a reopen of the same
	// storage.
	Durable bool
	// MultiProcess: several processes (on several machines) may open the
	// same database at once and share its partitions, and a Batch with
	// checks is atomic against the writes of all of them (a server: Redis,
	// etcd). An embedded engine (RocksDB, Pebble, bbolt) is owned by one
	// process: a second open of its path, from this process or another,
	// is refused with an error that says the database is in use and names
	// the path.
	MultiProcess bool
	// MaxBatchOps, when positive, is the most operations one Batch may
	// hold, checks included: what the engine applies atomically (an etcd
	// transaction holds 128 by default). Zero: no limit but memory. A
	// positive value is at least MinBatchOps.
	MaxBatchOps int
	// MaxBatchBytes, when positive, is the most bytes one write may carry:
	// the keys, values and range ends of a Batch (see BatchBytes), or the
	// key and value of a Put. Zero: no limit but MaxValueSize.
	MaxBatchBytes int
}

// MinBatchOps is the smallest positive Capabilities.MaxBatchOps: what
// callers may count on applying at once, whatever the backend. The catalog
// creates a table with one batch of 6 operations (checks of the namespace
// and table records, their writes, the end of the id's reservation, the
// catalog's version); 8 leaves room.
const MinBatchOps = 8

// BatchBytes returns the bytes ops count against MaxBatchBytes: every
// key, value and range end, of checks too.
func BatchBytes(ops []Operation) int {
	n := 0
	for i := range ops {
		n += len(ops[i].Key) + len(ops[i].Value) + len(ops[i].End)
	}
	return n
}

// CheckBatch reports whether ops fit the batch limits of c; the error wraps
// ErrInvalidArgument and names the limit. Every backend's Batch refuses,
// whole, a batch that does not fit, so a caller that needs a batch applied
// atomically checks it first, and one that does not splits it (Split).
func (c Capabilities) CheckBatch(ops []Operation) error {
	if c.MaxBatchOps > 0 && len(ops) > c.MaxBatchOps {
		return fmt.Errorf("%w: a batch of %d operations is over this backend's limit of %d operations applied at once (Capabilities.MaxBatchOps)",
			ErrInvalidArgument, len(ops), c.MaxBatchOps)
	}
	if c.MaxBatchBytes > 0 {
		if n := BatchBytes(ops); n > c.MaxBatchBytes {
			return fmt.Errorf("%w: a batch of %d bytes of keys and values is over this backend's limit of %d bytes applied at once (Capabilities.MaxBatchBytes)",
				ErrInvalidArgument, n, c.MaxBatchBytes)
		}
	}
	return nil
}

// Split cuts ops, in order, into consecutive batches that each fit the
// limits of c (all of ops when c has none), for a caller that needs each
// operation applied but not all of them at once. An operation too large
// for a batch of its own is alone in its batch, which Batch refuses. A
// check guards only the batch it lands in, so a batch with checks is never
// one to split.
func (c Capabilities) Split(ops []Operation) [][]Operation {
	if c.MaxBatchOps <= 0 && c.MaxBatchBytes <= 0 {
		if len(ops) == 0 {
			return nil
		}
		return [][]Operation{ops}
	}
	var out [][]Operation
	start, bytes := 0, 0
	for i := range ops {
		n := len(ops[i].Key) + len(ops[i].Value) + len(ops[i].End)
		full := (c.MaxBatchOps > 0 && i-start == c.MaxBatchOps) || (c.MaxBatchBytes > 0 && bytes+n > c.MaxBatchBytes)
		if full && i > start {
			out = append(out, ops[start:i:i])
			start, bytes = i, 0
		}
		bytes += n
	}
	if start < len(ops) {
		out = append(out, ops[start:])
	}
	return out
}
