package store

import (
	"sort"
	"sync/atomic"
)

// Gated is implemented by an Engine whose data calls (Get, Put, Delete,
// Batch and Scan) take no lock of their own against its CreatePartition and
// DropPartition, relying on the backend's Gate instead, so that a data call
// pays for one lock, the wrapper's, rather than two. New calls UseGate once,
// before any other method.
type Gated interface {
	UseGate(Gate)
}

// Gate is the call gate of a backend built by New: every Get, Put, Delete,
// Batch and Scan call holds it shared for its whole duration.
// CreatePartition and DropPartition do not, so that they can wait on it.
type Gate struct{ c *checked }

// Drain waits until every Get, Put, Delete, Batch and Scan call that was in
// flight when Drain was called has returned, holding new ones back
// meanwhile. A Gated engine calls it from DropPartition, after taking the
// partition out of the set its data calls look it up in, to know that no
// data call still uses the partition before it destroys it. Calling it from
// a data call deadlocks.
func (g Gate) Drain() {
	// An empty critical section: taking the write lock is the wait.
	g.c.mu.Lock()
	g.c.mu.Unlock() //nolint:staticcheck // SA2001: intended

}

// PartitionMap maps partition names to an engine's state for each, for a
// Gated engine: data calls look partitions up without a lock, and
// CreatePartition and DropPartition (serialised by the engine) install a
// changed copy. A DropPartition calls Delete, then Gate.Drain, and only
// then destroys what the partition's data calls may still be using.
//
// The zero PartitionMap is empty and ready to use.
type PartitionMap[T any] struct {
	m atomic.Pointer[map[string]T]
}

// Get returns the state of the partition called name, if it exists.
func (pm *PartitionMap[T]) Get(name string) (T, bool) {
	if m := pm.m.Load(); m != nil {
		v, ok := (*m)[name]
		return v, ok
	}
	var zero T
	return zero, false
}

// Snapshot returns the current map, which is never changed: a Batch looks
// all its partitions up in one snapshot. It must not be modified.
func (pm *PartitionMap[T]) Snapshot() map[string]T {
	if m := pm.m.Load(); m != nil {
		return *m
	}
	return nil
}

// Names returns the names of the partitions, sorted.
func (pm *PartitionMap[T]) Names() []string {
	m := pm.Snapshot()
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Replace installs m as the whole map, which then belongs to pm: an
// engine fills it with the partitions it finds at open.
func (pm *PartitionMap[T]) Replace(m map[string]T) { pm.m.Store(&m) }

// Set adds or replaces the partition called name. Changes must not run
// concurrently with each other.
func (pm *PartitionMap[T]) Set(name string, v T) {
	pm.change(func(m map[string]T) { m[name] = v })
}

// Delete removes the partition called name. Changes must not run
// concurrently with each other.
func (pm *PartitionMap[T]) Delete(name string) {
	pm.change(func(m map[string]T) { delete(m, name) })
}

func (pm *PartitionMap[T]) change(f func(map[string]T)) {
	old := pm.Snapshot()
	next := make(map[string]T, len(old)+1)
	for name, v := range old {
		next[name] = v
	}
	f(next)
	pm.m.Store(&next)
}
