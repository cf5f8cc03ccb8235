// Package coretest runs the kalamdb-core table-store suite and benchmarks
// (package tablestest) on the storage engines, from the root module, so
// that kalamdb-core itself never depends on an engine.
package coretest
