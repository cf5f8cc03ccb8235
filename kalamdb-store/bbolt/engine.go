package bbolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// formatVersion is the layout version the meta bucket records; a file with
// another one is refused.
const formatVersion = "kalamdb-bbolt/1"

// split is the longest key stored as is; a longer key is split after this
// many bytes (see the package documentation).
const split = bolt.MaxKeySize

var (
	metaBucket = []byte("\x00kalamdb")
	formatKey  = []byte("format")
	longSuffix = "\x00long"
)

// engine is the store.Engine over one bbolt file.
type engine struct {
	db *bolt.DB
	// initialMap is the InitialMmapSize the file was opened with, in bytes.
	initialMap int

	// writeMu serialises write transactions (bbolt runs one at a time
	// anyway) and guards db.MaxSize, which the growth guard sets.
	writeMu sync.Mutex

	// gate is held shared by Scan while it begins its read transaction and
	// registers the iterator, and exclusively by a write that must remap
	// the file, so that no iterator starts while that write waits for
	// read transactions to end.
	gate sync.RWMutex

	itMu  sync.Mutex
	iters map[*iterator]struct{}

	// regrows counts the writes that ran a second time to remap the file.
	regrows atomic.Int64
}

func openEngine(c Config) (*engine, error) {
	if err := os.MkdirAll(c.Path, 0o755); err != nil {
		return nil, fmt.Errorf("bbolt: creating %q: %w", c.Path, err)
	}
	file := filepath.Join(c.Path, FileName)
	timeout := time.Duration(c.LockTimeoutSeconds) * time.Second
	initial := c.InitialMmapMB << 20
	db, err := bolt.Open(file, 0o600, &bolt.Options{
		Timeout:         timeout,
		InitialMmapSize: initial,
		NoSync:          !c.SyncWrites,
		FreelistType:    bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("bbolt: %q is locked by another process or open backend (waited %s): %w", file, timeout, err)
		}
		return nil, fmt.Errorf("bbolt: opening %q: %w", file, err)
	}
	e := &engine{db: db, initialMap: initial, iters: map[*iterator]struct{}{}}
	if err := e.checkFormat(file); err != nil {
		_ = db.Close()
		return nil, err
	}
	return e, nil
}

// checkFormat writes the layout version into a new file and checks it in
// an existing one.
func (e *engine) checkFormat(file string) error {
	return e.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			if first, _ := tx.Cursor().First(); first != nil {
				return fmt.Errorf("%w: bbolt: %q holds buckets that KalamDB did not write (no layout version)",
					store.ErrInvalidArgument, file)
			}
			meta, err := tx.CreateBucket(metaBucket)
			if err != nil {
				return err
			}
			return meta.Put(formatKey, []byte(formatVersion))
		}
		if v := meta.Get(formatKey); string(v) != formatVersion {
			return fmt.Errorf("bbolt: %q holds layout %q; this version reads %q", file, v, formatVersion)
		}
		return nil
	})
}

func notFound(p store.Partition) error {
	return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
}

// update runs fn in a write transaction. It guards bbolt's remapping: fn
// first runs with db.MaxSize just under the size that would make bbolt
// remap the file; if the write needs more, bbolt fails it before touching
// the mapping, and update runs it again with no limit after detaching every
// open iterator and while no new one can start. fn may therefore run twice;
// it must not have effects outside the transaction.
func (e *engine) update(fn func(tx *bolt.Tx) error) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err := e.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		// Commit allocates the pages; it reads MaxSize then.
		e.db.MaxSize = remapGuard(int(tx.Size()), e.initialMap, e.db.AllocSize)
		return nil
	})
	if !errors.Is(err, berrors.ErrMaxSizeReached) {
		return err
	}
	e.regrows.Add(1)
	e.gate.Lock()
	defer e.gate.Unlock()
	e.detachAll()
	e.db.MaxSize = 0
	return e.db.Update(fn)
}

// detachAll moves every open iterator off its read transaction.
func (e *engine) detachAll() {
	e.itMu.Lock()
	its := make([]*iterator, 0, len(e.iters))
	for it := range e.iters {
		its = append(its, it)
	}
	e.itMu.Unlock()
	for _, it := range its {
		it.detach()
	}
}

func (e *engine) register(it *iterator) {
	e.itMu.Lock()
	e.iters[it] = struct{}{}
	e.itMu.Unlock()
}

func (e *engine) unregister(it *iterator) {
	e.itMu.Lock()
	delete(e.iters, it)
	e.itMu.Unlock()
}

func longName(name string) []byte { return []byte(name + longSuffix) }

// get returns the value of key in the partition bucket b (whose long-key
// bucket is long, possibly nil), or nil, false.
func get(b, long *bolt.Bucket, key []byte) ([]byte, bool) {
	if len(key) > split {
		if long == nil {
			return nil, false
		}
		if b = long.Bucket(key[:split]); b == nil {
			return nil, false
		}
		key = key[split:]
	}
	k, v := b.Cursor().Seek(key)
	if !bytes.Equal(k, key) {
		return nil, false
	}
	return v, true
}

func (e *engine) Get(_ context.Context, p store.Partition, key []byte) ([]byte, error) {
	var out []byte
	err := e.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(p.Name()))
		if b == nil {
			return notFound(p)
		}
		var long *bolt.Bucket
		if len(key) > split {
			long = tx.Bucket(longName(p.Name()))
		}
		v, ok := get(b, long, key)
		if !ok {
			return store.ErrNotFound
		}
		out = append(make([]byte, 0, len(v)), v...)
		return nil
	})
	if err != nil {
		return nil, wrap("get", err)
	}
	return out, nil
}

// wrap adds context to an error from bbolt; the contract's own errors pass
// unchanged.
func wrap(what string, err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPartitionNotFound) ||
		errors.Is(err, store.ErrInvalidArgument) {
		return err
	}
	return fmt.Errorf("bbolt: %s: %w", what, err)
}

// writer applies operations inside one write transaction, caching the
// buckets it has looked up.
type writer struct {
	tx *bolt.Tx
	// The last partition looked up, and the others (made on first need:
	// most batches write one partition).
	lastName string
	last     *bolt.Bucket
	parts    map[string]*bolt.Bucket
}

// bucket returns the bucket of p, or nil.
func (w *writer) bucket(p store.Partition) *bolt.Bucket {
	name := p.Name()
	if w.last != nil && name == w.lastName {
		return w.last
	}
	b, ok := w.parts[name]
	if !ok {
		if b = w.tx.Bucket([]byte(name)); b == nil {
			return nil
		}
		if w.last != nil {
			if w.parts == nil {
				w.parts = map[string]*bolt.Bucket{w.lastName: w.last}
			}
			w.parts[name] = b
		}
	}
	w.lastName, w.last = name, b
	return b
}

func (w *writer) apply(op store.Operation) error {
	if op.Kind == store.OpDeleteRange {
		return w.deleteRange(op)
	}
	if len(op.Key) <= split {
		b := w.bucket(op.Partition)
		if op.Kind == store.OpPut {
			return b.Put(op.Key, nonNil(op.Value))
		}
		return b.Delete(op.Key)
	}
	name := longName(op.Partition.Name())
	head, tail := op.Key[:split], op.Key[split:]
	if op.Kind == store.OpPut {
		long, err := w.tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		nb, err := long.CreateBucketIfNotExists(head)
		if err != nil {
			return err
		}
		return nb.Put(tail, nonNil(op.Value))
	}
	long := w.tx.Bucket(name)
	if long == nil {
		return nil
	}
	nb := long.Bucket(head)
	if nb == nil {
		return nil
	}
	if err := nb.Delete(tail); err != nil {
		return err
	}
	if k, _ := nb.Cursor().First(); k != nil {
		return nil
	}
	if err := long.DeleteBucket(head); err != nil {
		return err
	}
	if k, _ := long.Cursor().First(); k != nil {
		return nil
	}
	return w.tx.DeleteBucket(name)
}

// deleteRange removes the keys of op's partition in [op.Key, op.End): it
// collects them first (a bbolt cursor may skip keys when the bucket changes
// under it), then deletes each one as a point delete would.
func (w *writer) deleteRange(op store.Operation) error {
	var doomed [][]byte
	c := w.bucket(op.Partition).Cursor()
	for k, _ := c.Seek(op.Key); k != nil && bytes.Compare(k, op.End) < 0; k, _ = c.Next() {
		doomed = append(doomed, append([]byte(nil), k...))
	}
	// Long keys: a nested bucket per split-byte head holds the tails. Heads
	// all have split bytes, so (head, tail) order is key order, and no key
	// under a head before op.Key's first split bytes is in the range.
	if long := w.tx.Bucket(longName(op.Partition.Name())); long != nil {
		lc := long.Cursor()
	heads:
		for h, _ := lc.Seek(op.Key[:min(split, len(op.Key))]); h != nil; h, _ = lc.Next() {
			nb := long.Bucket(h)
			if nb == nil {
				continue
			}
			tc := nb.Cursor()
			for t, _ := tc.First(); t != nil; t, _ = tc.Next() {
				full := append(append(make([]byte, 0, len(h)+len(t)), h...), t...)
				if bytes.Compare(full, op.End) >= 0 {
					break heads
				}
				if bytes.Compare(full, op.Key) >= 0 {
					doomed = append(doomed, full)
				}
			}
		}
	}
	for _, k := range doomed {
		if err := w.apply(store.DeleteOp(op.Partition, k)); err != nil {
			return err
		}
	}
	return nil
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// write applies ops in one transaction, after checking every partition.
func (e *engine) write(what string, ops []store.Operation) error {
	return wrap(what, e.update(func(tx *bolt.Tx) error {
		w := &writer{tx: tx}
		for i, op := range ops {
			if w.bucket(op.Partition) == nil {
				if len(ops) == 1 {
					return notFound(op.Partition)
				}
				return fmt.Errorf("batch operation %d: %w", i, notFound(op.Partition))
			}
		}
		for i, op := range ops {
			if err := w.apply(op); err != nil {
				return fmt.Errorf("%s operation %d: %w", op.Kind, i, err)
			}
		}
		return nil
	}))
}

func (e *engine) Put(_ context.Context, p store.Partition, key, value []byte) error {
	return e.write("put", []store.Operation{store.PutOp(p, key, value)})
}

func (e *engine) Delete(_ context.Context, p store.Partition, key []byte) error {
	return e.write("delete", []store.Operation{store.DeleteOp(p, key)})
}

func (e *engine) Batch(_ context.Context, ops []store.Operation) error {
	return e.write("batch", ops)
}

func (e *engine) Scan(_ context.Context, p store.Partition, r store.Range) (store.Iterator, error) {
	e.gate.RLock()
	defer e.gate.RUnlock()
	tx, err := e.db.Begin(false)
	if err != nil {
		return nil, wrap("scan", err)
	}
	b := tx.Bucket([]byte(p.Name()))
	if b == nil {
		_ = tx.Rollback()
		return nil, notFound(p)
	}
	it := newIterator(e, tx, b, tx.Bucket(longName(p.Name())), r)
	e.register(it)
	return it, nil
}

func (e *engine) PartitionExists(_ context.Context, p store.Partition) (bool, error) {
	var ok bool
	err := e.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket([]byte(p.Name())) != nil
		return nil
	})
	return ok, wrap("partition exists", err)
}

func (e *engine) CreatePartition(_ context.Context, p store.Partition) error {
	return wrap("create partition", e.update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(p.Name()))
		return err
	}))
}

func (e *engine) ListPartitions(_ context.Context) ([]store.Partition, error) {
	var out []store.Partition
	err := e.db.View(func(tx *bolt.Tx) error {
		c := tx.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if bytes.IndexByte(k, 0) >= 0 {
				continue // the meta bucket and long-key buckets
			}
			p, err := store.NewPartition(string(k))
			if err != nil {
				return fmt.Errorf("bucket %q is not a partition: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list partitions", err)
	}
	// bbolt orders buckets bytewise, which is the order of names; sort
	// anyway rather than depend on it.
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	if out == nil {
		out = []store.Partition{}
	}
	return out, nil
}

func (e *engine) DropPartition(_ context.Context, p store.Partition) error {
	return wrap("drop partition", e.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte(p.Name())); err != nil {
			if errors.Is(err, berrors.ErrBucketNotFound) {
				return notFound(p)
			}
			return err
		}
		if err := tx.DeleteBucket(longName(p.Name())); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		return nil
	}))
}

func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: true, Durable: true}
}

func (e *engine) Close() error {
	// The wrapper closed every iterator first, so no read transaction is
	// left to make bbolt's Close wait.
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("bbolt: close: %w", err)
	}
	return nil
}

var _ store.Engine = (*engine)(nil)
