package store

import (
	"errors"
	"sort"
	"sync"
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
// CreatePartition and DropPartition (serialised by the engine) change one
// entry. A DropPartition goes through Drop, which takes the partition out,
// drains the gate, and only then lets the engine destroy what the
// partition's data calls may still be using.
//
// It is a concurrent hash trie (sync.Map): a lookup is a few atomic loads,
// and adding or removing a partition costs the same at 10 partitions or
// 100,000, where a copy-on-write map would copy every entry on each
// create. A data call that looks up several partitions (a Batch) looks each
// up once; the gate makes that as good as one snapshot, since a partition
// removed in between is not destroyed before the call returns.
//
// The zero PartitionMap is empty and ready to use.
type PartitionMap[T any] struct {
	m sync.Map // partition name → T
}

// Get returns the state of the partition called name, if it exists.
func (pm *PartitionMap[T]) Get(name string) (T, bool) {
	if v, ok := pm.m.Load(name); ok {
		return v.(T), true
	}
	var zero T
	return zero, false
}

// Snapshot returns a copy of the current map, built entry by entry: for
// Close and tests, not for data calls, which look partitions up with Get.
func (pm *PartitionMap[T]) Snapshot() map[string]T {
	out := map[string]T{}
	pm.m.Range(func(name, v any) bool {
		out[name.(string)] = v.(T)
		return true
	})
	return out
}

// Partitions returns the partitions, sorted by name: what an engine's
// ListPartitions returns.
func (pm *PartitionMap[T]) Partitions() ([]Partition, error) {
	var names []string
	pm.m.Range(func(name, _ any) bool {
		names = append(names, name.(string))
		return true
	})
	sort.Strings(names)
	out := make([]Partition, len(names))
	for i, name := range names {
		p, err := NewPartition(name)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// errNoGate is Drop's answer in an engine that New did not wrap.
var errNoGate = errors.New("kalamdb-store: the engine is used without store.New, whose gate a partition drop needs")

// Drop is a Gated engine's DropPartition: it takes the partition called
// name out of pm, drains g (waits for the data calls that may still use
// it), then calls destroy with its state. Should destroy fail, the
// partition is put back, untouched, and destroy's error returned. found is
// false when there is no such partition. The caller serialises Drop with
// its other changes of pm. With a zero Gate (an engine used without New)
// Drop changes nothing and fails: nothing could tell it when the
// partition's calls are done.
func (pm *PartitionMap[T]) Drop(g Gate, name string, destroy func(T) error) (found bool, err error) {
	if g.c == nil {
		return false, errNoGate
	}
	v, ok := pm.Get(name)
	if !ok {
		return false, nil
	}
	pm.Delete(name)
	g.Drain()
	if err := destroy(v); err != nil {
		pm.Set(name, v)
		return true, err
	}
	return true, nil
}

// Replace makes m's entries the whole map: an engine fills it with the
// partitions it finds at open. It must not run concurrently with any other
// call of pm.
func (pm *PartitionMap[T]) Replace(m map[string]T) {
	pm.m.Clear()
	for name, v := range m {
		pm.m.Store(name, v)
	}
}

// Set adds or replaces the partition called name. Changes must not run
// concurrently with each other.
func (pm *PartitionMap[T]) Set(name string, v T) { pm.m.Store(name, v) }

// Delete removes the partition called name. Changes must not run
// concurrently with each other.
func (pm *PartitionMap[T]) Delete(name string) { pm.m.Delete(name) }
