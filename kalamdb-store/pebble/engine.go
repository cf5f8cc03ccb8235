package pebble

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// formatVersion is the value of the format record; a store with another
// value is refused.
const formatVersion = "kalamdb-pebble/1"

var (
	// formatKey holds formatVersion.
	formatKey = []byte("\x00format")
	// partPrefix starts the key of each partition's entry.
	partPrefix = []byte("\x00part\x00")
	// metaUpper bounds every record of the backend: [0x00, 0x01).
	metaUpper = []byte{0x01}
)

// engine is the store.Engine over one Pebble database.
type engine struct {
	db *pdb.DB
	wo *pdb.WriteOptions
	// lock is the directory lock, released after the database is closed.
	lock *pdb.Lock

	// parts mirrors the partition entries of the database. Data calls look
	// partitions up without a lock of their own: they run inside the
	// backend's gate (store.Gate), and DropPartition, after removing the
	// partition from parts, drains the gate before deleting its keys, so a
	// partition's existence check is atomic with the operation on it.
	parts store.PartitionMap[struct{}]
	// ddl serialises CreatePartition and DropPartition.
	ddl sync.Mutex
	// gate is the backend's call gate, set by store.New (UseGate).
	gate store.Gate

	// cond makes the checks of a Batch atomic with its write: a Batch with
	// checks holds it exclusively from reading its checked keys until its
	// write returned, every other write holds it shared, so no write comes
	// between. Reads take no part in it.
	cond sync.RWMutex

	// keyBuf pools the buffers Get builds its prefixed key in.
	keyBuf sync.Pool
}

func openEngine(cfg Config) (*engine, error) {
	cache := pdb.NewCache(int64(cfg.BlockCacheMB) << 20)
	defer cache.Unref() // the DB holds its own reference
	opts := &pdb.Options{
		Cache:              cache,
		MemTableSize:       uint64(cfg.MemTableMB) << 20,
		FormatMajorVersion: pdb.FormatNewest,
		Logger:             quietLogger{},
	}
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("pebble: creating %q: %w", cfg.Path, err)
	}
	// The directory lock is taken first, on its own, so that a database in
	// use is told apart from any other failure to open.
	lock, err := pdb.LockDirectory(cfg.Path, vfs.Default)
	if err != nil {
		return nil, fmt.Errorf("pebble: %q is in use: another process, or another backend of this one, has the database open, "+
			"and an embedded database belongs to one process at a time (use a server backend, such as etcd or redis, to share one): %w", cfg.Path, err)
	}
	opts.Lock = lock
	db, err := pdb.Open(cfg.Path, opts)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("pebble: opening %q: %w", cfg.Path, err)
	}
	e := &engine{db: db, lock: lock, wo: pdb.NoSync}
	if cfg.SyncWrites {
		e.wo = pdb.Sync
	}
	e.keyBuf.New = func() any { b := make([]byte, 0, 64); return &b }
	if err := e.load(cfg.Path); err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, err
	}
	return e, nil
}

// load checks the format record (writing it into an empty database) and
// reads the partition entries.
func (e *engine) load(path string) error {
	v, closer, err := e.db.Get(formatKey)
	switch {
	case err == nil:
		ver := string(v)
		_ = closer.Close()
		if ver != formatVersion {
			return fmt.Errorf("pebble: %q holds layout %q; this version reads %q", path, ver, formatVersion)
		}
	case errors.Is(err, pdb.ErrNotFound):
		empty, err := e.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: pebble: %q holds a Pebble database that was not written by KalamDB (no format record)",
				store.ErrInvalidArgument, path)
		}
		if err := e.db.Set(formatKey, []byte(formatVersion), pdb.Sync); err != nil {
			return fmt.Errorf("pebble: writing the format record: %w", err)
		}
	default:
		return fmt.Errorf("pebble: reading the format record: %w", err)
	}

	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: partPrefix, UpperBound: store.PrefixSuccessor(partPrefix)})
	if err != nil {
		return fmt.Errorf("pebble: listing partitions: %w", err)
	}
	parts := map[string]struct{}{}
	for ok := it.First(); ok; ok = it.Next() {
		name := string(it.Key()[len(partPrefix):])
		if err := store.ValidatePartitionName(name); err != nil {
			_ = it.Close()
			return fmt.Errorf("pebble: corrupt partition entry: %w", err)
		}
		parts[name] = struct{}{}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble: listing partitions: %w", err)
	}
	e.parts.Replace(parts)
	return nil
}

func (e *engine) isEmpty() (bool, error) {
	it, err := e.db.NewIter(nil)
	if err != nil {
		return false, fmt.Errorf("pebble: %w", err)
	}
	found := it.First()
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("pebble: %w", err)
	}
	return !found, nil
}

func notFound(p store.Partition) error {
	return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
}

// UseGate implements store.Gated.
func (e *engine) UseGate(g store.Gate) { e.gate = g }

// exists reports whether p exists.
func (e *engine) exists(p store.Partition) bool {
	_, ok := e.parts.Get(p.Name())
	return ok
}

// appendKey appends the stored form of key in partition name to dst.
func appendKey(dst []byte, name string, key []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, 0)
	return append(dst, key...)
}

func partEntry(name string) []byte {
	return append(append([]byte(nil), partPrefix...), name...)
}

// bounds returns the interval of stored keys of partition name.
func bounds(name string) (lower, upper []byte) {
	lower = append(append(make([]byte, 0, len(name)+1), name...), 0)
	upper = append(append(make([]byte, 0, len(name)+1), name...), 1)
	return lower, upper
}

func (e *engine) Get(_ context.Context, p store.Partition, key []byte) ([]byte, error) {
	bp := e.keyBuf.Get().(*[]byte)
	k := appendKey((*bp)[:0], p.Name(), key)
	defer func() {
		*bp = k[:0]
		e.keyBuf.Put(bp)
	}()

	if !e.exists(p) {
		return nil, notFound(p)
	}
	v, closer, err := e.db.Get(k)
	if err != nil {
		if errors.Is(err, pdb.ErrNotFound) {
			return nil, store.ErrNotFound
		}
		return nil, fmt.Errorf("pebble: get from %q: %w", p.Name(), err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("pebble: get from %q: %w", p.Name(), err)
	}
	return out, nil
}

// addOp encodes op into b, copying the key and value straight into the
// batch.
func addOp(b *pdb.Batch, op store.Operation) error {
	name := op.Partition.Name()
	var d *pdb.DeferredBatchOp
	switch op.Kind {
	case store.OpPut:
		d = b.SetDeferred(len(name)+1+len(op.Key), len(op.Value))
		copy(d.Value, op.Value)
	case store.OpDeleteRange:
		// A range tombstone's "value" is its exclusive end key.
		d = b.DeleteRangeDeferred(len(name)+1+len(op.Key), len(name)+1+len(op.End))
		appendKey(d.Value[:0], name, op.End)
	default:
		d = b.DeleteDeferred(len(name) + 1 + len(op.Key))
	}
	appendKey(d.Key[:0], name, op.Key)
	return d.Finish()
}

// apply writes the writes of ops as one batch (checks write nothing); the
// caller, a data call, has checked the partitions and holds cond.
func (e *engine) apply(ops ...store.Operation) error {
	b := e.db.NewBatch()
	defer b.Close()
	for i, op := range ops {
		if op.Kind.IsCheck() {
			continue
		}
		if err := addOp(b, op); err != nil {
			return fmt.Errorf("pebble: batch operation %d: %w", i, err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := e.db.Apply(b, e.wo); err != nil {
		return fmt.Errorf("pebble: write: %w", err)
	}
	return nil
}

// applyShared is apply under cond held shared: a write without checks.
func (e *engine) applyShared(ops ...store.Operation) error {
	e.cond.RLock()
	defer e.cond.RUnlock()
	return e.apply(ops...)
}

// readCheck is the reader store.EvalChecks calls for the check ops[i].
func (e *engine) readCheck(ops []store.Operation) func(i int) ([]byte, bool, error) {
	return func(i int) ([]byte, bool, error) {
		op := &ops[i]
		v, closer, err := e.db.Get(appendKey(nil, op.Partition.Name(), op.Key))
		if errors.Is(err, pdb.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("pebble: batch operation %d: reading the key of a %s in %q: %w", i, op.Kind, op.Partition.Name(), err)
		}
		out := append(make([]byte, 0, len(v)), v...)
		if err := closer.Close(); err != nil {
			return nil, false, fmt.Errorf("pebble: batch operation %d: %w", i, err)
		}
		return out, true, nil
	}
}

func (e *engine) Put(_ context.Context, p store.Partition, key, value []byte) error {
	if !e.exists(p) {
		return notFound(p)
	}
	return e.applyShared(store.PutOp(p, key, value))
}

func (e *engine) Delete(_ context.Context, p store.Partition, key []byte) error {
	if !e.exists(p) {
		return notFound(p)
	}
	return e.applyShared(store.DeleteOp(p, key))
}

// maxBatchBytes is the size of the largest batch Pebble applies (it panics
// past it); batchBytes bounds the size a batch of operations encodes to.
const maxBatchBytes = min(math.MaxUint32, math.MaxInt) - 1

func batchBytes(ops []store.Operation) uint64 {
	n := uint64(batchHeaderBytes)
	for _, op := range ops {
		n += recordOverhead + uint64(len(op.Partition.Name())+1+len(op.Key))
		switch op.Kind {
		case store.OpPut:
			n += uint64(len(op.Value))
		case store.OpDeleteRange:
			n += uint64(len(op.Partition.Name()) + 1 + len(op.End))
		}
	}
	return n
}

const (
	batchHeaderBytes = 12 // sequence number and count
	recordOverhead   = 11 // kind and two varint lengths
)

func (e *engine) Batch(_ context.Context, ops []store.Operation) error {
	if n := batchBytes(ops); n > maxBatchBytes {
		return fmt.Errorf("%w: batch of %d operations encodes to %d bytes; Pebble applies at most %d bytes at once",
			store.ErrInvalidArgument, len(ops), n, uint64(maxBatchBytes))
	}
	// Each partition is looked up once per run of operations on it; one
	// dropped meanwhile is deleted only once the batch returned (the gate).
	last := ""
	for i, op := range ops {
		if name := op.Partition.Name(); name != last {
			if !e.exists(op.Partition) {
				return fmt.Errorf("batch operation %d: %w", i, notFound(op.Partition))
			}
			last = name
		}
	}
	if !store.HasChecks(ops) {
		return e.applyShared(ops...)
	}
	// No other write of this process comes between the reads of the
	// checked keys and the write (Pebble is open in this process alone).
	e.cond.Lock()
	defer e.cond.Unlock()
	if err := store.EvalChecks(ops, e.readCheck(ops)); err != nil {
		return err
	}
	return e.apply(ops...)
}

func (e *engine) Scan(_ context.Context, p store.Partition, r store.Range) (store.Iterator, error) {
	name := p.Name()
	// Both bounds in one allocation: name 0x00 Lower, then name 0x00 Upper
	// (name 0x01 when Upper is nil).
	n := len(name) + 1
	buf := make([]byte, 0, 2*n+len(r.Lower)+len(r.Upper))
	lower := appendKey(buf, name, r.Lower)
	var upper []byte
	if r.Upper != nil {
		upper = appendKey(lower[len(lower):], name, r.Upper)
	} else {
		upper = append(append(lower[len(lower):], name...), 1)
	}
	it := &iterator{strip: n, reverse: r.Reverse}
	if !e.exists(p) {
		return nil, notFound(p)
	}
	var err error
	it.it, err = e.db.NewIter(&pdb.IterOptions{LowerBound: lower[:len(lower):len(lower)], UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("pebble: scan of %q: %w", name, err)
	}
	return it, nil
}

func (e *engine) PartitionExists(_ context.Context, p store.Partition) (bool, error) {
	return e.exists(p), nil
}

func (e *engine) CreatePartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	if e.exists(p) {
		return nil
	}
	if err := e.db.Set(partEntry(p.Name()), nil, pdb.Sync); err != nil {
		return fmt.Errorf("pebble: creating partition %q: %w", p.Name(), err)
	}
	e.parts.Set(p.Name(), struct{}{})
	return nil
}

func (e *engine) ListPartitions(_ context.Context) ([]store.Partition, error) {
	return e.parts.Partitions()
}

// DropPartition removes the partition from parts, drains the gate (waits
// for the data calls in flight, which may have found it), then deletes its
// entry and keys in one synced batch. Should that fail, the partition is put
// back and the error returned.
func (e *engine) DropPartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	found, err := e.parts.Drop(e.gate, p.Name(), func(struct{}) error { return e.dropKeys(p) })
	if err == nil && !found {
		return notFound(p)
	}
	return err
}

// dropKeys deletes the entry and every key of p in one synced batch.
func (e *engine) dropKeys(p store.Partition) error {
	lower, upper := bounds(p.Name())
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.Delete(partEntry(p.Name()), nil); err != nil {
		return fmt.Errorf("pebble: dropping partition %q: %w", p.Name(), err)
	}
	if err := b.DeleteRange(lower, upper, nil); err != nil {
		return fmt.Errorf("pebble: dropping partition %q: %w", p.Name(), err)
	}
	if err := e.db.Apply(b, pdb.Sync); err != nil {
		return fmt.Errorf("pebble: dropping partition %q: %w", p.Name(), err)
	}
	return nil
}

func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: true, Durable: true, MultiProcess: false}
}

func (e *engine) Close() error {
	err := e.db.Close()
	if lerr := e.lock.Close(); err == nil && lerr != nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("pebble: close: %w", err)
	}
	return nil
}

// iterator walks a Pebble iterator whose bounds are the scan's range; it
// strips the partition prefix from the keys.
type iterator struct {
	it      *pdb.Iterator
	strip   int
	reverse bool
	started bool
	done    bool
	err     error
	key     []byte
	val     []byte
}

func (i *iterator) Next() bool {
	if i.done {
		return false
	}
	var ok bool
	switch {
	case !i.started:
		i.started = true
		if i.reverse {
			ok = i.it.Last()
		} else {
			ok = i.it.First()
		}
	case i.reverse:
		ok = i.it.Prev()
	default:
		ok = i.it.Next()
	}
	if ok {
		v, err := i.it.ValueAndErr()
		if err == nil {
			i.key, i.val = i.it.Key()[i.strip:], v
			if i.val == nil {
				i.val = []byte{}
			}
			return true
		}
		i.err = fmt.Errorf("pebble: scan: %w", err)
	} else if err := i.it.Error(); err != nil {
		i.err = fmt.Errorf("pebble: scan: %w", err)
	}
	i.done, i.key, i.val = true, nil, nil
	return false
}

func (i *iterator) Key() []byte   { return i.key }
func (i *iterator) Value() []byte { return i.val }
func (i *iterator) Err() error    { return i.err }

func (i *iterator) Close() error {
	i.done, i.key, i.val = true, nil, nil
	if i.it == nil {
		return i.err
	}
	err := i.it.Close()
	i.it = nil
	if err != nil && i.err == nil {
		i.err = fmt.Errorf("pebble: closing a scan: %w", err)
	}
	return i.err
}

var _ store.Engine = (*engine)(nil)

// quietLogger drops Pebble's informational messages (one per WAL replayed
// at open, …) and passes errors on to Pebble's default logger.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Errorf(format string, args ...any) {
	pdb.DefaultLogger.Errorf(format, args...)
}

func (quietLogger) Fatalf(format string, args ...any) {
	pdb.DefaultLogger.Fatalf(format, args...)
}
