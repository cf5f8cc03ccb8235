// Package core is the root of kalamdb-core, the part of KalamDB that turns
// the ordered key-value contract of kalamdb-store into tables: a catalog of
// namespaces and tables, an order-preserving key encoding, a row codec, the
// three table stores (user, shared and stream), and the cold tier that moves
// user and shared rows to Parquet files and reads them back.
//
// kalamdb-core depends on the storage contract alone, package store of
// kalamdb-store: it never imports a storage engine. The engine is chosen by
// whoever opens the StorageBackend and hands it to the core.
//
// The packages of the module:
//
//   - keys: the one order-preserving, collision-free key encoding that every
//     store uses.
//   - row: column types, values, rows with their system columns (_seq,
//     _updated, _deleted) and the row codec.
//   - catalog: namespaces and table definitions, validated and persisted in
//     system partitions.
//   - layout: where everything lives: the one place that names partitions.
//   - tables: the user, shared and stream table stores, reading the hot
//     buffer of each table (its partition) merged with a cold tier.
//   - flush: the cold tier: flushes buffered rows to Parquet segments
//     crash-safely, compacts them, records them in a manifest, recovers at
//     open, and schedules all of it; its Manager opens the tables.
//   - lease: leases of background work kept in the backend, and the check
//     that fences a holder's commits, for servers that share a backend.
//   - segment: the Parquet segment files: writing them durably, reading
//     footers, row groups and key indexes, and the cache of those.
//   - clock: the time source of the stores, with a fake for tests.
//   - guard: turns a panic into an error carrying its stack; every
//     background goroutine runs its work through it.
//   - tablestest: the table-store test suite and benchmarks, runnable on any
//     backend; flush/flushtest: the cold tier's benchmarks.
//
// This package holds the errors every other package returns, so that a
// server maps them to responses in one place (see the Err variables and
// ColumnError).
package core
