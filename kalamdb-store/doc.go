// Package store is KalamDB's storage abstraction: the StorageBackend
// interface that every storage engine implements, the Partition and
// Operation types it speaks in, the typed errors it returns, and the Registry
// that opens a backend by name.
//
// The table stores in kalamdb-core depend on this package alone; no engine
// (RocksDB, Pebble, bbolt, Redis, …) is ever imported by core code. A backend
// lives in its own package (kalamdb-store/memory, kalamdb-store/rocksdb, …)
// and is chosen at run time through a Registry.
//
// # The contract
//
// Every StorageBackend obtained from a backend package honours the rules
// below; kalamdb-store/storetest checks each of them, for every backend.
//
//   - Keys are non-empty byte strings of at most MaxKeySize (4 KiB) bytes,
//     compared bytewise (bytes.Compare); any byte value is allowed, 0x00 and
//     0xFF included. A longer key, and a scan prefix or start longer than
//     that, is refused with ErrInvalidArgument. The limit is what the table
//     stores need with room to spare, and low enough that every backend
//     stores each key as one engine key (ADR-012). Values may be empty (but
//     not nil-vs-empty distinguished: an empty value reads back as a non-nil
//     empty slice) and at most MaxValueSize bytes.
//   - A Partition is an independent key space. Keys never leak between
//     partitions. A partition must be created (CreatePartition, idempotent)
//     before use; an operation on a partition that does not exist fails with
//     ErrPartitionNotFound. Durable backends find their partitions again
//     after a reopen.
//   - Get of a missing key fails with ErrNotFound. Delete of a missing key
//     succeeds (deletes are idempotent).
//   - Batch applies its operations atomically (all or none, across
//     partitions), in order: a later operation on the same key wins. An
//     invalid operation anywhere in the batch (empty key, unknown partition,
//     …) rejects the whole batch before anything is applied. An empty batch
//     is a no-op. Besides puts and deletes, a batch may hold range deletes
//     (DeleteRangeOp: every key in [start, end) of a partition), which
//     remove what earlier operations of the batch put in their range. A
//     backend that cannot apply batches of any size atomically says so in
//     Capabilities.MaxBatchOps and MaxBatchBytes: a batch over either limit
//     is refused whole with ErrInvalidArgument naming the limit, never
//     applied in part (Capabilities.CheckBatch tells in advance;
//     Capabilities.Split cuts a batch that need not be atomic).
//   - A batch may hold checks, which write nothing: CheckAbsentOp (the key
//     does not exist) and CheckValueOp (the key exists and holds exactly
//     this value). Every check is evaluated against the state before the
//     batch, whatever operations precede it in the batch, atomically with
//     the batch's writes: no write of another call, in this process or
//     (Capabilities.MultiProcess) another, comes between them. If a check
//     does not hold, nothing of the batch is applied and Batch fails with
//     an error wrapping ErrConditionFailed, a *ConditionError that names
//     the first such check in batch order, its partition and its key. A
//     batch naming a missing partition fails with ErrPartitionNotFound
//     whether or not its checks hold. Checks count towards MaxBatchOps and
//     MaxBatchBytes like writes. A put-if-absent is thus one batch
//     (CheckAbsentOp, PutOp), and so is a compare-and-swap (CheckValueOp
//     with the value read, PutOp with the new one): check-then-act needs no
//     lock of the caller's, and stays correct when several processes share
//     a database.
//   - Scan returns an Iterator over one partition in ascending key order (or
//     descending with ScanOptions.Reverse), restricted by ScanOptions.Prefix,
//     ScanOptions.Start and ScanOptions.Limit. When Capabilities.SnapshotScans
//     is true the iterator sees exactly the partition as it was when Scan
//     returned: writes, deletes and a DropPartition that happen afterwards are
//     invisible to it. A backend without that capability still never returns
//     a key twice, never returns keys out of order, and returns every key that
//     was present for the whole life of the iterator.
//   - Errors are checkable with errors.Is against ErrNotFound,
//     ErrPartitionNotFound, ErrClosed, ErrInvalidArgument, ErrUnsupported
//     and ErrConditionFailed;
//     engine errors are wrapped with %w. A cancelled or expired context makes
//     an operation fail with an error that wraps ctx.Err(). A backend that
//     talks to a server wraps ErrUnavailable around the failures that say
//     the server cannot be reached now (a refused or broken connection, a
//     server still loading), so that callers can tell an outage, worth a
//     retry later, from a fault.
//   - An embedded database (Capabilities.MultiProcess false) belongs to one
//     process at a time: opening one that is open already fails with an
//     error that says it is in use and names its path.
//   - After Close every operation fails with ErrClosed; Close itself is
//     idempotent. Close waits for operations in flight, closes iterators that
//     were left open and reports them as leaked.
//   - A StorageBackend is safe for concurrent use by many goroutines. An
//     Iterator is not: one goroutine at a time.
//
// # Byte slices
//
// CONTRACT: a backend never retains a slice the caller passed in (keys,
// values, prefixes, operations) after the call returns; the caller may reuse
// or modify them at once. A value returned by Get is the caller's to keep
// and modify. The slices returned by Iterator.Key and Iterator.Value are
// read-only and valid only until the next call to Next or Close: copy them to
// keep them.
//
// # Writing a backend
//
// A backend implements the smaller Engine interface and hands it to New,
// which adds argument validation, the closed state, context checks and
// iterator leak accounting, so that no backend repeats them. An engine that
// implements Gated shares New's per-call lock instead of taking one of its
// own (see Gate and PartitionMap). See docs/backends.md for the step-by-step
// guide.
package store
