package bbolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

var (
	metaBucket = []byte("\x00kalamdb")
	formatKey  = []byte("format")
)

// overflowSuffix ends the name of the bucket in which earlier versions kept
// a partition's keys longer than bbolt's 32 KiB, when the contract allowed
// keys of up to 64 KiB. Open refuses a file in which one holds keys and
// removes empty ones (see checkOverflow).
const overflowSuffix = "\x00long"

// Every key fits a bbolt key: the partition bucket holds it as it is.
var _ [bolt.MaxKeySize - store.MaxKeySize]struct{}

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
	if err := os.MkdirAll(c.Path, 0o700); err != nil {
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
			return nil, fmt.Errorf("bbolt: %q is in use: it is locked by another process, or another backend of this one, that has the database open "+
				"(waited %s, lock_timeout_seconds), and an embedded database belongs to one process at a time "+
				"(use a server backend, such as etcd or redis, to share one): %w", file, timeout, err)
		}
		return nil, fmt.Errorf("bbolt: opening %q: %w", file, err)
	}
	e := &engine{db: db, initialMap: initial, iters: map[*iterator]struct{}{}}
	if err := e.checkFormat(file); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := e.checkOverflow(file); err != nil {
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

// checkOverflow looks for the overflow buckets of earlier versions, in
// which keys longer than 32 KiB were split. This version reads none of them:
// a file in which one holds keys is refused, naming its partitions, rather
// than opened with those keys out of sight; empty ones are removed.
func (e *engine) checkOverflow(file string) error {
	type overflow struct {
		name      []byte
		partition string
		keys      int
	}
	var found []overflow
	err := e.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			partition, ok := strings.CutSuffix(string(name), overflowSuffix)
			if !ok || store.ValidatePartitionName(partition) != nil {
				return nil
			}
			found = append(found, overflow{name: bytes.Clone(name), partition: partition, keys: overflowKeys(b)})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("bbolt: %q: looking for overflow buckets: %w", file, err)
	}
	var held []string
	for _, o := range found {
		if o.keys > 0 {
			held = append(held, fmt.Sprintf("%d in partition %q", o.keys, o.partition))
		}
	}
	if len(held) > 0 {
		return fmt.Errorf("%w: bbolt: %q holds keys longer than %d bytes, which this version no longer supports: %s. "+
			"An earlier version, which allowed keys of up to 64 KiB, wrote them (keys over 32 KiB, in a bucket named after the partition and 0x00 \"long\"). "+
			"Open the file with that version and delete those keys or drop their partitions, then open it with this one (ADR-012)",
			store.ErrUnsupported, file, store.MaxKeySize, strings.Join(held, ", "))
	}
	if len(found) == 0 {
		return nil
	}
	return e.update(func(tx *bolt.Tx) error {
		for _, o := range found {
			if err := tx.DeleteBucket(o.name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return fmt.Errorf("bbolt: %q: removing the empty overflow bucket of partition %q: %w", file, o.partition, err)
			}
		}
		return nil
	})
}

// overflowKeys counts the keys of an overflow bucket: its entries were
// buckets named by a key's first 32 KiB that held the rest of each key.
func overflowKeys(b *bolt.Bucket) int {
	n := 0
	_ = b.ForEach(func(k, v []byte) error {
		if v != nil {
			n++ // not the layout, but a key all the same
		} else if nb := b.Bucket(k); nb != nil {
			n += nb.Stats().KeyN
		}
		return nil
	})
	return n
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

func (e *engine) Get(_ context.Context, p store.Partition, key []byte) ([]byte, error) {
	var out []byte
	err := e.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(p.Name()))
		if b == nil {
			return notFound(p)
		}
		k, v := b.Cursor().Seek(key)
		if !bytes.Equal(k, key) {
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
		errors.Is(err, store.ErrInvalidArgument) || errors.Is(err, store.ErrConditionFailed) {
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
	b := w.bucket(op.Partition)
	switch op.Kind {
	case store.OpPut:
		return b.Put(op.Key, nonNil(op.Value))
	case store.OpDelete:
		return b.Delete(op.Key)
	}
	return deleteRange(b, op.Key, op.End)
}

// deleteRange removes the keys of b in [start, end): it collects them first
// (a bbolt cursor may skip keys when the bucket changes under it), then
// deletes each one.
func deleteRange(b *bolt.Bucket, start, end []byte) error {
	var doomed [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(start); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// checks evaluates the checks of ops, if any, on the transaction.
func (w *writer) checks(ops []store.Operation) error {
	if !store.HasChecks(ops) {
		return nil
	}
	return store.EvalChecks(ops, func(i int) ([]byte, bool, error) {
		k, v := w.bucket(ops[i].Partition).Cursor().Seek(ops[i].Key)
		if !bytes.Equal(k, ops[i].Key) {
			return nil, false, nil
		}
		return v, true, nil
	})
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
		// Checks read the transaction before its first write: the state
		// before the batch. bbolt runs one write transaction at a time, so
		// no other write comes between.
		if err := w.checks(ops); err != nil {
			return err
		}
		for i, op := range ops {
			if op.Kind.IsCheck() {
				continue
			}
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
	it := newIterator(e, tx, b, r)
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
				continue // the meta bucket
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
		return nil
	}))
}

func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: true, Durable: true, MultiProcess: false}
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
