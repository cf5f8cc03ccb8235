// Package coldtest runs the cold-tier checks and benchmarks of
// kalamdb-core/flush on the storage engines, from the root module, so that
// kalamdb-core itself never depends on an engine.
package coldtest
