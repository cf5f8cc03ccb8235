// Package memory is the in-memory storage backend: exact, fast and
// volatile. It is the backend that table-store unit tests run on.
//
// Each partition is a copy-on-write B-tree of keys in bytewise order. One
// read-write lock guards the set of trees: reads share it, writes and
// batches hold it exclusively, so a batch is applied all at once or not at
// all, across partitions, and its checks are evaluated under the same
// lock. A Scan takes an O(1) copy-on-write snapshot of the
// partition's tree and iterates it without holding any lock, so iterators
// see exactly the data as of Scan (Capabilities.SnapshotScans) while writers
// go on.
//
// Nothing survives Close: Capabilities.Durable is false.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/tidwall/btree"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Name is the name the memory backend registers under.
const Name = "memory"

// Alias is the other name the ADR uses for the memory backend.
const Alias = "in-memory"

// Config is the [storage.memory] section.
type Config struct {
	// MaxBatchOps and MaxBatchBytes, when positive, make the backend claim
	// (and so enforce, through the wrapper) the batch limits of a
	// distributed engine, such as etcd's 128 operations, so that code built
	// on the contract can be tried against them on one machine. Zero, the
	// default: no limit.
	MaxBatchOps   int `toml:"max_batch_ops"`
	MaxBatchBytes int `toml:"max_batch_bytes"`
}

// DefaultConfig returns the configuration of a section that sets nothing:
// no batch limits.
func DefaultConfig() Config { return Config{} }

// Validate reports a limit out of range, naming its key.
func (c Config) Validate() error {
	if c.MaxBatchOps < 0 || c.MaxBatchOps > 0 && c.MaxBatchOps < store.MinBatchOps {
		return store.InvalidConfig(Name, "max_batch_ops", "is %d; use 0 (no limit) or %d or more", c.MaxBatchOps, store.MinBatchOps)
	}
	if c.MaxBatchBytes < 0 {
		return store.InvalidConfig(Name, "max_batch_bytes", "is %d; use 0 (no limit) or more", c.MaxBatchBytes)
	}
	return nil
}

// New returns an empty memory backend without batch limits.
func New() store.StorageBackend {
	b, _ := OpenWith(DefaultConfig())
	return b
}

// Open is the registry Factory of the memory backend: it decodes cfg
// strictly (the section must be empty) and calls OpenWith.
func Open(_ context.Context, cfg store.Config) (store.StorageBackend, error) {
	c := DefaultConfig()
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return OpenWith(c)
}

// OpenWith returns a new, empty memory backend with the configuration c.
func OpenWith(c Config) (store.StorageBackend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return store.New(&engine{parts: make(map[string]*tree), maxOps: c.MaxBatchOps, maxBytes: c.MaxBatchBytes}), nil
}

// Register adds the memory backend to r under Name and Alias.
func Register(r *store.Registry) {
	r.Register(Name, Open)
	r.Alias(Alias, Name)
}

type item struct {
	key, value []byte
}

func less(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

type tree = btree.BTreeG[item]

func newTree() *tree {
	return btree.NewBTreeGOptions(less, btree.Options{NoLocks: true, Degree: 64})
}

type engine struct {
	mu    sync.RWMutex
	parts map[string]*tree
	// maxOps and maxBytes are the batch limits it claims (Config).
	maxOps, maxBytes int
}

func notFound(p store.Partition) error {
	return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
}

// newItem copies key and value into one allocation.
func newItem(key, value []byte) item {
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	return item{key: buf[:len(key):len(key)], value: buf[len(key):]}
}

func (e *engine) Get(_ context.Context, p store.Partition, key []byte) ([]byte, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, ok := e.parts[p.Name()]
	if !ok {
		return nil, notFound(p)
	}
	it, ok := t.Get(item{key: key})
	if !ok {
		return nil, store.ErrNotFound
	}
	return append(make([]byte, 0, len(it.value)), it.value...), nil
}

func (e *engine) Put(_ context.Context, p store.Partition, key, value []byte) error {
	it := newItem(key, value)
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.parts[p.Name()]
	if !ok {
		return notFound(p)
	}
	t.Set(it)
	return nil
}

func (e *engine) Delete(_ context.Context, p store.Partition, key []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.parts[p.Name()]
	if !ok {
		return notFound(p)
	}
	t.Delete(item{key: key})
	return nil
}

func (e *engine) Batch(_ context.Context, ops []store.Operation) error {
	// Copy the puts' data before taking the lock, so the critical section
	// only touches trees.
	items := make([]item, len(ops))
	for i, op := range ops {
		if op.Kind == store.OpPut {
			items[i] = newItem(op.Key, op.Value)
		} else {
			items[i] = item{key: op.Key}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	trees := make([]*tree, len(ops))
	for i, op := range ops {
		t, ok := e.parts[op.Partition.Name()]
		if !ok {
			return fmt.Errorf("batch operation %d: %w", i, notFound(op.Partition))
		}
		trees[i] = t
	}
	if store.HasChecks(ops) {
		if err := store.EvalChecks(ops, func(i int) ([]byte, bool, error) {
			it, ok := trees[i].Get(items[i])
			return it.value, ok, nil
		}); err != nil {
			return err
		}
	}
	for i, op := range ops {
		switch op.Kind {
		case store.OpPut:
			trees[i].Set(items[i])
		case store.OpDelete:
			trees[i].Delete(items[i])
		case store.OpDeleteRange:
			trees[i].DeleteRange(items[i], item{key: op.End}, &btree.DeleteRangeOptions{NoReturn: true})
		}
	}
	return nil
}

func (e *engine) Scan(_ context.Context, p store.Partition, r store.Range) (store.Iterator, error) {
	// Copy mutates bookkeeping of the source tree, so it needs the write lock;
	// it is O(1).
	e.mu.Lock()
	t, ok := e.parts[p.Name()]
	var snap *tree
	if ok {
		snap = t.Copy()
	}
	e.mu.Unlock()
	if !ok {
		return nil, notFound(p)
	}
	return &iterator{it: snap.Iter(), r: r}, nil
}

func (e *engine) PartitionExists(_ context.Context, p store.Partition) (bool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := e.parts[p.Name()]
	return ok, nil
}

func (e *engine) CreatePartition(_ context.Context, p store.Partition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.parts[p.Name()]; !ok {
		e.parts[p.Name()] = newTree()
	}
	return nil
}

func (e *engine) ListPartitions(_ context.Context) ([]store.Partition, error) {
	e.mu.RLock()
	names := make([]string, 0, len(e.parts))
	for n := range e.parts {
		names = append(names, n)
	}
	e.mu.RUnlock()
	sort.Strings(names)
	out := make([]store.Partition, len(names))
	for i, n := range names {
		p, err := store.NewPartition(n)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func (e *engine) DropPartition(_ context.Context, p store.Partition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.parts[p.Name()]; !ok {
		return notFound(p)
	}
	delete(e.parts, p.Name())
	return nil
}

func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: true, Durable: false, MaxBatchOps: e.maxOps, MaxBatchBytes: e.maxBytes}
}

func (e *engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.parts = nil
	return nil
}

// iterator walks a private snapshot of one partition's tree.
type iterator struct {
	it      btree.IterG[item]
	r       store.Range
	started bool
	done    bool
	cur     item
}

func (i *iterator) Next() bool {
	if i.done {
		return false
	}
	var ok bool
	if !i.started {
		i.started = true
		ok = i.first()
	} else if i.r.Reverse {
		ok = i.it.Prev()
	} else {
		ok = i.it.Next()
	}
	if ok {
		i.cur = i.it.Item()
		if i.r.Contains(i.cur.key) {
			return true
		}
	}
	i.done, i.cur = true, item{}
	return false
}

// first positions the iterator on the first key of the range in scan order
// (which may lie outside the range; Next checks).
func (i *iterator) first() bool {
	if !i.r.Reverse {
		if i.r.Lower == nil {
			return i.it.First()
		}
		return i.it.Seek(item{key: i.r.Lower})
	}
	if i.r.Upper == nil {
		return i.it.Last()
	}
	if !i.it.Seek(item{key: i.r.Upper}) {
		// Every key is below Upper.
		return i.it.Last()
	}
	return i.it.Prev()
}

func (i *iterator) Key() []byte   { return i.cur.key }
func (i *iterator) Value() []byte { return i.cur.value }
func (i *iterator) Err() error    { return nil }
func (i *iterator) Close() error {
	i.it.Release()
	i.done, i.cur = true, item{}
	return nil
}
