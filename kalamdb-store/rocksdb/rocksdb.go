// Package rocksdb is the RocksDB storage backend, KalamDB's default engine
// (ADR-003). It uses RocksDB through github.com/linxGnu/grocksdb (cgo) and
// runs against the system's librocksdb (Debian's librocksdb-dev 7.8).
//
// Partitions are key ranges of one shared column family (ADR-010): the keys
// of a partition start with its id, a number never given twice, and a
// registry in RocksDB's "default" column family maps names to ids, so that
// partitions survive a reopen. Creating a partition is one small write
// whatever the number of partitions; dropping one deletes its registry
// entry and range-deletes its keys in one atomic write, so a crash leaves
// the whole partition or none of it, and a partition created again under
// the same name gets a new id and never sees the old keys. See layout.go
// for the exact layout. Databases written by earlier versions, which gave
// partition "x" a column family "p/x" of its own, open with all their
// partitions: those stay in their column families until dropped.
//
// Reads and writes go straight to RocksDB: Get copies the value into one Go
// slice, Put and Delete are single RocksDB writes, and Batch is one RocksDB
// WriteBatch, so it is atomic across partitions; these and scans call
// RocksDB's C API directly, without grocksdb's per-call allocations (see
// capi.go and batch.go). A Scan is a RocksDB
// iterator whose lower and upper bounds are the scan's range (prefix and
// start), so RocksDB never reads past the range; the iterator reads the
// sequence number current when Scan returned, so it sees nothing written
// afterwards (Capabilities.SnapshotScans), not even a DropPartition.
//
// The checks of a Batch (store.CheckAbsentOp, store.CheckValueOp) are point
// reads made while the engine's write lock is held exclusively, until the
// batch is written; every other write holds that lock shared, so no write
// of the process comes between a batch's checks and its write, and writes
// without checks never wait on each other. The database belongs to one
// process (RocksDB's LOCK file): a second open of its path is refused with
// an error that says it is in use (Capabilities.MultiProcess is false).
//
// No RocksDB type appears in this package's API: callers see a
// store.StorageBackend and a Config.
package rocksdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/linxGnu/grocksdb"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Name is the name the RocksDB backend registers under.
const Name = "rocksdb"

// Register adds the RocksDB backend to r under Name.
func Register(r *store.Registry) {
	r.Register(Name, Open)
}

// Open is the registry Factory of the RocksDB backend. It decodes cfg (the
// [storage.rocksdb] section) strictly over DefaultConfig, so that an unknown
// or misspelled key is an error naming it, validates the values and opens
// the database.
func Open(ctx context.Context, cfg store.Config) (store.StorageBackend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rocksdb: open: %w", err)
	}
	c := DefaultConfig()
	if cfg != nil {
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
	}
	return OpenWith(c)
}

// OpenWith opens (creating it when missing) the database that c describes.
// Fields of c left at their zero value are not defaulted: start from
// DefaultConfig and change what you need.
func OpenWith(c Config) (store.StorageBackend, error) {
	e, err := openEngine(c)
	if err != nil {
		return nil, err
	}
	return store.New(e), nil
}

// family is the column family of a legacy partition (see layout.go).
//
// refs counts the holders of the handle: 1 while the family is in
// engine.parts, plus 1 per open iterator. Whoever drops it to 0 destroys the
// handle, so a legacy partition dropped under open iterators keeps its
// handle (and RocksDB its data) until the last of them closes.
type family struct {
	h    *grocksdb.ColumnFamilyHandle
	refs atomic.Int32
}

func (f *family) release() {
	if f.refs.Add(-1) == 0 {
		f.h.Destroy()
	}
}

// part is the map entry of a partition: everything a Get, Put, Delete,
// Batch or Scan needs, in the map slot itself.
type part struct {
	h      *grocksdb.ColumnFamilyHandle // the column family that holds the partition
	c      cFamily                      // h's C object, for the C API calls
	cf     uint32                       // the column family's id, for batches (see batch.go)
	prefix keyPrefix                    // the key prefix; empty for a legacy partition
	id     uint64                       // the partition's id; 0 for a legacy partition
	f      *family                      // a legacy partition's column family; nil otherwise
}

// sharedPart returns the entry of the partition with id in the shared
// column family h.
func sharedPart(h *grocksdb.ColumnFamilyHandle, id uint64) part {
	c := familyC(h)
	return part{h: h, c: c, cf: c.id(), prefix: prefixOf(id), id: id}
}

// legacyPart returns the entry of a partition that has the column family h
// to itself.
func legacyPart(h *grocksdb.ColumnFamilyHandle) part {
	c := familyC(h)
	f := &family{h: h}
	f.refs.Store(1)
	return part{h: h, c: c, cf: c.id(), f: f}
}

type engine struct {
	// The fields every operation reads come first, on one cache line.

	// parts is the current set of partitions. Data calls (Get, Put,
	// Delete, Batch, Scan) read it without a lock of their own: they run
	// inside the backend's gate (store.Gate), and DropPartition, after
	// installing a set without the partition, drains the gate, so that no
	// call still uses the partition when its keys are deleted (or its
	// legacy column family dropped) and no write reaches it afterwards.
	parts store.PartitionMap[part]
	db    *grocksdb.DB
	cdb   cDB                    // db's C object, for the read paths
	read  readOptions            // for Get
	write *grocksdb.WriteOptions // the write options (sync_writes)
	cw    cWrite                 // write's C object, which Put, Delete and Batch pass

	opts *options
	path string
	// meta is the "default" column family, which holds the format record,
	// the id counter and the registry.
	meta *grocksdb.ColumnFamilyHandle
	// shared is the column family of every partition that is not legacy.
	shared *grocksdb.ColumnFamilyHandle
	// other holds the handles of column families that are neither of these
	// nor a legacy partition (foreign ones); RocksDB requires them open.
	other []*grocksdb.ColumnFamilyHandle

	// ddl serialises CreatePartition, DropPartition and Close, and guards
	// next.
	ddl sync.Mutex
	// next is the id the next CreatePartition gives.
	next uint64

	// gate is the backend's call gate, set by store.New (UseGate).
	gate store.Gate

	// cond makes the checks of a Batch atomic with its write: a Batch with
	// checks holds it exclusively from reading its checked keys until its
	// write returned, every other write (Put, Delete, a Batch without
	// checks) holds it shared, so no write comes between. Reads take no
	// part in it.
	cond sync.RWMutex

	// iters counts the iterators not yet closed; Close waits for them, so
	// that no handle is destroyed and no iterator freed after the database
	// is closed, even when an iterator's Close races with the backend's.
	iters sync.WaitGroup
}

func openEngine(c Config) (*engine, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkBinding(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Path, 0o700); err != nil {
		return nil, fmt.Errorf("rocksdb: creating storage.rocksdb.path: %w", err)
	}
	opts := newOptions(c)
	names, err := existingColumnFamilies(opts.db, c.Path)
	if err != nil {
		opts.destroy()
		return nil, err
	}
	cfOpts := make([]*grocksdb.Options, len(names))
	for i, name := range names {
		cfOpts[i] = opts.db
		if name == metaColumnFamily {
			cfOpts[i] = opts.meta
		} else if _, ok := legacyPartitionOf(name); ok {
			cfOpts[i] = opts.legacy
		}
	}
	db, handles, err := grocksdb.OpenDbColumnFamilies(opts.db, c.Path, names, cfOpts)
	if err != nil {
		opts.destroy()
		if lockHeld(err) {
			return nil, fmt.Errorf("rocksdb: %s is in use: another process, or another backend of this one, has the database open, "+
				"and an embedded database belongs to one process at a time (use a server backend, such as etcd or redis, to share one): %w", c.Path, err)
		}
		return nil, fmt.Errorf("rocksdb: opening %s: %w", c.Path, err)
	}
	e := &engine{
		db: db, cdb: dbC(db), read: opts.read, cw: writeC(opts.write), write: opts.write, opts: opts, path: c.Path,
	}
	legacy := map[string]*grocksdb.ColumnFamilyHandle{}
	for i, name := range names {
		if name == metaColumnFamily {
			e.meta = handles[i]
		} else if name == sharedColumnFamily {
			e.shared = handles[i]
		} else if p, ok := legacyPartitionOf(name); ok {
			legacy[p.Name()] = handles[i]
		} else {
			e.other = append(e.other, handles[i])
		}
	}
	if err := e.load(legacy); err != nil {
		for _, h := range legacy {
			h.Destroy()
		}
		e.closeDB()
		return nil, err
	}
	return e, nil
}

// load reads the registry, creates the shared column family of a database
// that lacks it (a new one, or one written by an earlier version) and fills
// the partition map with the registry's partitions and the legacy ones.
func (e *engine) load(legacy map[string]*grocksdb.ColumnFamilyHandle) error {
	if e.meta == nil {
		return fmt.Errorf("rocksdb: %s has no default column family", e.path)
	}
	reg, err := loadRegistry(e.db, e.meta, e.path)
	if err != nil {
		return err
	}
	for name := range legacy {
		if _, dup := reg.ids[name]; dup {
			return fmt.Errorf("rocksdb: %s: partition %q %w", e.path, name, errBothLayouts)
		}
	}
	if e.shared == nil {
		if len(reg.ids) > 0 {
			return fmt.Errorf("rocksdb: %s: the registry lists %d partitions but the column family %q that holds them is missing",
				e.path, len(reg.ids), sharedColumnFamily)
		}
		if e.shared, err = e.db.CreateColumnFamily(e.opts.db, sharedColumnFamily); err != nil {
			return fmt.Errorf("rocksdb: %s: creating the column family %q: %w", e.path, sharedColumnFamily, err)
		}
	}
	parts := make(map[string]part, len(reg.ids)+len(legacy))
	for name, id := range reg.ids {
		parts[name] = sharedPart(e.shared, id)
	}
	for name, h := range legacy {
		parts[name] = legacyPart(h)
	}
	e.next = reg.next
	e.parts.Replace(parts)
	return nil
}

// UseGate implements store.Gated.
func (e *engine) UseGate(g store.Gate) { e.gate = g }

// lockHeld reports whether err is RocksDB's refusal to open a database
// whose LOCK file another process holds ("While lock file: …/LOCK:
// Resource temporarily unavailable") or this one does ("lock hold by
// current process").
func lockHeld(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "/LOCK:") &&
		(strings.Contains(msg, "While lock file") || strings.Contains(msg, "lock hold by current process"))
}

// existingColumnFamilies lists the column families of the database at path,
// or just "default" when there is no database there yet.
func existingColumnFamilies(opts *grocksdb.Options, path string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(path, "CURRENT")); errors.Is(err, os.ErrNotExist) {
		return []string{metaColumnFamily}, nil
	}
	names, err := grocksdb.ListColumnFamilies(opts, path)
	if err != nil {
		return nil, fmt.Errorf("rocksdb: listing the column families of %s: %w", path, err)
	}
	return names, nil
}

func missing(p store.Partition) error {
	return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
}

func (e *engine) Get(_ context.Context, p store.Partition, key []byte) ([]byte, error) {
	pt, ok := e.parts.Get(p.Name())
	if !ok {
		return nil, missing(p)
	}
	v, err := getC(e.cdb, e.read, pt.c, pt.prefix, key)
	if err != nil {
		if err == errNotFound {
			return nil, store.ErrNotFound
		}
		return nil, fmt.Errorf("rocksdb: get from %q: %w", p.Name(), err)
	}
	return v, nil
}

func (e *engine) Put(_ context.Context, p store.Partition, key, value []byte) error {
	pt, ok := e.parts.Get(p.Name())
	if !ok {
		return missing(p)
	}
	e.cond.RLock()
	err := putC(e.cdb, e.cw, pt.c, pt.prefix, key, value)
	e.cond.RUnlock()
	if err != nil {
		return fmt.Errorf("rocksdb: put into %q: %w", p.Name(), err)
	}
	return nil
}

func (e *engine) Delete(_ context.Context, p store.Partition, key []byte) error {
	pt, ok := e.parts.Get(p.Name())
	if !ok {
		return missing(p)
	}
	e.cond.RLock()
	err := deleteC(e.cdb, e.cw, pt.c, pt.prefix, key)
	e.cond.RUnlock()
	if err != nil {
		return fmt.Errorf("rocksdb: delete from %q: %w", p.Name(), err)
	}
	return nil
}

// Batch looks every operation's partition up in the partition map and
// encodes one WriteBatch (see batch.go), then writes it, all inside the
// gate that DropPartition drains: either every partition exists and the
// whole batch is written, or nothing is. A partition dropped after it was
// looked up is deleted only once the batch returned. A batch with checks
// reads its checked keys and writes while holding cond exclusively, so
// that no other write of this process comes between (RocksDB itself is
// open in this process alone).
func (e *engine) Batch(_ context.Context, ops []store.Operation) error {
	checks := store.HasChecks(ops)
	bp := repPool.Get().(*[]byte)
	rep, err := encodeBatch((*bp)[:0], &e.parts, ops)
	if err == nil {
		if checks {
			e.cond.Lock()
			err = store.EvalChecks(ops, e.readCheck(ops))
		} else {
			e.cond.RLock()
		}
		if err == nil && binary.LittleEndian.Uint32(rep[8:repHeader]) > 0 {
			if err = writeRepC(e.cdb, e.cw, rep); err != nil {
				err = fmt.Errorf("rocksdb: batch of %d operations: %w", len(ops), err)
			}
		}
		if checks {
			e.cond.Unlock()
		} else {
			e.cond.RUnlock()
		}
	}
	if cap(rep) <= maxPooledRep {
		*bp = rep[:0]
		repPool.Put(bp)
	}
	return err
}

// readCheck returns the reader store.EvalChecks calls for the checks of
// ops, whose partitions encodeBatch found.
func (e *engine) readCheck(ops []store.Operation) func(i int) ([]byte, bool, error) {
	return func(i int) ([]byte, bool, error) {
		op := &ops[i]
		pt, ok := e.parts.Get(op.Partition.Name())
		if !ok {
			return nil, false, fmt.Errorf("batch operation %d: %w", i, missing(op.Partition))
		}
		v, err := getC(e.cdb, e.read, pt.c, pt.prefix, op.Key)
		switch {
		case err == errNotFound:
			return nil, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("rocksdb: batch operation %d: reading the key of a %s in %q: %w", i, op.Kind, op.Partition.Name(), err)
		}
		return v, true, nil
	}
}

func (e *engine) Scan(_ context.Context, p store.Partition, r store.Range) (store.Iterator, error) {
	pt, ok := e.parts.Get(p.Name())
	if !ok {
		return nil, missing(p)
	}
	return newIterator(e, pt, r)
}

func (e *engine) PartitionExists(_ context.Context, p store.Partition) (bool, error) {
	_, ok := e.parts.Get(p.Name())
	return ok, nil
}

// CreatePartition gives the partition the next id and writes its registry
// entry and the advanced id counter in one small synced write, whatever the
// number of partitions; reads and writes of other partitions go on. The
// partition becomes visible once the write returned.
func (e *engine) CreatePartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	if _, ok := e.parts.Get(p.Name()); ok {
		return nil
	}
	id := e.next
	if id > maxID {
		return fmt.Errorf("rocksdb: creating partition %q: every partition id up to %d was given", p.Name(), uint64(maxID))
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.PutCF(e.meta, partEntry(p.Name()), binary.AppendUvarint(nil, id))
	wb.PutCF(e.meta, nextKey, binary.BigEndian.AppendUint64(nil, id+1))
	if err := writeSynced(e.db, wb); err != nil {
		return fmt.Errorf("rocksdb: creating partition %q: %w", p.Name(), err)
	}
	e.next = id + 1
	e.parts.Set(p.Name(), sharedPart(e.shared, id))
	return nil
}

func (e *engine) ListPartitions(_ context.Context) ([]store.Partition, error) {
	return e.parts.Partitions()
}

// DropPartition takes the partition out of the partition set first, then
// drains the gate (waits for the data calls in flight, which may have found
// it), then deletes it: in one synced, atomic write, its registry entry and
// its keys (one range deletion over its id's prefix); a legacy partition's
// column family is dropped instead. From the removal on, every operation on
// the partition fails with ErrPartitionNotFound; iterators opened before
// keep reading their snapshot. Should RocksDB refuse the write or the drop,
// the partition is put back, untouched, and the error returned.
func (e *engine) DropPartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	found, err := e.parts.Drop(e.gate, p.Name(), func(pt part) error {
		if err := e.drop(p, pt); err != nil {
			return fmt.Errorf("rocksdb: dropping partition %q: %w", p.Name(), err)
		}
		return nil
	})
	if err == nil && !found {
		return missing(p)
	}
	return err
}

func (e *engine) drop(p store.Partition, pt part) error {
	if pt.f != nil {
		if err := e.db.DropColumnFamily(pt.h); err != nil {
			return err
		}
		pt.f.release()
		return nil
	}
	lower, upper := pt.prefix.span()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.DeleteCF(e.meta, partEntry(p.Name()))
	wb.DeleteRangeCF(e.shared, lower, upper)
	return writeSynced(e.db, wb)
}

// Capabilities: snapshot scans, durable, and owned by one process (the
// database's LOCK file; cond makes checks atomic within the process).
func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: true, Durable: true, MultiProcess: false}
}

// Close destroys every column-family handle, then closes the database, then
// frees the options. store.New calls it once, after every iterator was
// closed, so each legacy partition's handle has exactly its own reference
// left.
func (e *engine) Close() error {
	e.iters.Wait()
	e.ddl.Lock()
	defer e.ddl.Unlock()
	parts := e.parts.Snapshot()
	var stuck []string
	for name, pt := range parts {
		if pt.f == nil {
			continue
		}
		if n := pt.f.refs.Load(); n != 1 {
			stuck = append(stuck, fmt.Sprintf("%q (%d references)", name, n))
		}
	}
	if len(stuck) > 0 {
		// Closing the database now would abort the process (RocksDB
		// asserts that no handle outlives it). This cannot happen through
		// store.New, which closes iterators first.
		sort.Strings(stuck)
		return fmt.Errorf("rocksdb: not closing %s: column families still in use: %s", e.path, strings.Join(stuck, ", "))
	}
	for _, pt := range parts {
		if pt.f != nil {
			pt.f.release()
		}
	}
	e.parts.Replace(nil)
	e.closeDB()
	return nil
}

// closeDB destroys the meta, shared and foreign handles, closes the
// database and frees the options; the legacy handles must be destroyed
// already.
func (e *engine) closeDB() {
	for _, h := range []*grocksdb.ColumnFamilyHandle{e.meta, e.shared} {
		if h != nil {
			h.Destroy()
		}
	}
	e.meta, e.shared = nil, nil
	for _, h := range e.other {
		h.Destroy()
	}
	e.other = nil
	e.db.Close()
	e.opts.destroy()
}
