// Package core is the root of kalamdb-core, the part of KalamDB that turns
// the ordered key-value contract of kalamdb-store into tables: a catalog of
// namespaces and tables, an order-preserving key encoding, a row codec, and
// the three table stores (user, shared and stream).
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
//   - tables: the user, shared and stream table stores.
//   - clock: the time source of the stores, with a fake for tests.
//   - guard: turns a panic into an error carrying its stack; every
//     background goroutine runs its work through it.
//   - tablestest: the table-store test suite and benchmarks, runnable on any
//     backend.
//
// This package holds the errors every other package returns, so that a
// server maps them to responses in one place (see the Err variables and
// ColumnError).
package core
