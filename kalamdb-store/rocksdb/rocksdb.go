// Package rocksdb is the RocksDB storage backend, KalamDB's default engine
// (ADR-003). It uses RocksDB through github.com/linxGnu/grocksdb (cgo) and
// runs against the system's librocksdb (Debian's librocksdb-dev 7.8).
//
// Each Partition is a RocksDB column family, created, listed and dropped at
// run time and found again when the database is reopened. The column family
// of partition "x" is called "p/x" (one function holds the mapping), so a
// partition may be called "default" like any other: RocksDB's own "default"
// column family, which always exists and cannot be dropped, is never a
// partition.
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
// No RocksDB type appears in this package's API: callers see a
// store.StorageBackend and a Config.
package rocksdb

import (
	"context"
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
			return nil, fmt.Errorf("rocksdb: [storage.rocksdb]: %w", err)
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

// cfPrefix starts the name of every column family that holds a partition.
const cfPrefix = "p/"

// columnFamily returns the name of the column family that holds p. It and
// partitionOf are the one place where partitions map to column families.
func columnFamily(p store.Partition) string { return cfPrefix + p.Name() }

// partitionOf returns the partition that column family cf holds, or false
// when cf holds none (RocksDB's "default", or a column family this package
// did not create).
func partitionOf(cf string) (store.Partition, bool) {
	name, ok := strings.CutPrefix(cf, cfPrefix)
	if !ok {
		return store.Partition{}, false
	}
	p, err := store.NewPartition(name)
	return p, err == nil
}

// family is one open column family that holds a partition.
//
// refs counts the holders of the handle: 1 while the family is in
// engine.parts, plus 1 per open iterator. Whoever drops it to 0 destroys the
// handle, so a partition dropped under open iterators keeps its handle (and
// RocksDB its data) until the last of them closes.
type family struct {
	h    *grocksdb.ColumnFamilyHandle
	refs atomic.Int32
}

func newFamily(h *grocksdb.ColumnFamilyHandle) *family {
	f := &family{h: h}
	f.refs.Store(1)
	return f
}

// part is the map entry of a partition. It carries the handle itself, so
// that a Get, Put, Delete or Batch finds it in the map slot without reading
// the family.
type part struct {
	h  *grocksdb.ColumnFamilyHandle
	c  cFamily // h's C object, for the C API calls
	id uint32  // the column family's id, for batches (see batch.go)
	f  *family
}

func newPart(h *grocksdb.ColumnFamilyHandle) part {
	c := familyC(h)
	return part{h: h, c: c, id: c.id(), f: newFamily(h)}
}

func (f *family) release() {
	if f.refs.Add(-1) == 0 {
		f.h.Destroy()
	}
}

type engine struct {
	// The fields every operation reads come first, on one cache line.

	// parts is the current set of partitions. Data calls (Get, Put,
	// Delete, Batch, Scan) read it without a lock of their own: they run
	// inside the backend's gate (store.Gate), and DropPartition, after
	// installing a set without the partition, drains the gate, so that no
	// call still uses the column family when it is dropped and no write
	// reaches it afterwards.
	parts store.PartitionMap[part]
	db    *grocksdb.DB
	cdb   cDB                    // db's C object, for the read paths
	read  readOptions            // for Get
	write *grocksdb.WriteOptions // the write options (sync_writes)
	cw    cWrite                 // write's C object, which Put, Delete and Batch pass

	opts *options
	path string
	// other holds the handles of column families that are not partitions
	// ("default" and foreign ones); RocksDB requires them open.
	other []*grocksdb.ColumnFamilyHandle

	// ddl serialises CreatePartition, DropPartition and Close.
	ddl sync.Mutex

	// gate is the backend's call gate, set by store.New (UseGate).
	gate store.Gate

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
	if err := os.MkdirAll(c.Path, 0o750); err != nil {
		return nil, fmt.Errorf("rocksdb: creating storage.rocksdb.path: %w", err)
	}
	opts := newOptions(c)
	names, err := existingColumnFamilies(opts.db, c.Path)
	if err != nil {
		opts.destroy()
		return nil, err
	}
	cfOpts := make([]*grocksdb.Options, len(names))
	for i := range cfOpts {
		cfOpts[i] = opts.db
	}
	db, handles, err := grocksdb.OpenDbColumnFamilies(opts.db, c.Path, names, cfOpts)
	if err != nil {
		opts.destroy()
		return nil, fmt.Errorf("rocksdb: opening %s: %w", c.Path, err)
	}
	parts := make(map[string]part, len(names))
	e := &engine{
		db: db, cdb: dbC(db), read: opts.read, cw: writeC(opts.write), write: opts.write, opts: opts, path: c.Path,
	}
	for i, name := range names {
		if p, ok := partitionOf(name); ok {
			parts[p.Name()] = newPart(handles[i])
		} else {
			e.other = append(e.other, handles[i])
		}
	}
	e.parts.Replace(parts)
	return e, nil
}

// UseGate implements store.Gated.
func (e *engine) UseGate(g store.Gate) { e.gate = g }

// existingColumnFamilies lists the column families of the database at path,
// or just "default" when there is no database there yet.
func existingColumnFamilies(opts *grocksdb.Options, path string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(path, "CURRENT")); errors.Is(err, os.ErrNotExist) {
		return []string{"default"}, nil
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
	v, err := getC(e.cdb, e.read, pt.c, key)
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
	err := putC(e.cdb, e.cw, pt.c, key, value)
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
	err := deleteC(e.cdb, e.cw, pt.c, key)
	if err != nil {
		return fmt.Errorf("rocksdb: delete from %q: %w", p.Name(), err)
	}
	return nil
}

// Batch resolves every operation's partition in one snapshot of the
// partition map and encodes one WriteBatch (see batch.go), then writes it,
// all inside the gate that DropPartition drains: either every partition
// exists and the whole batch is written, or nothing is.
func (e *engine) Batch(_ context.Context, ops []store.Operation) error {
	bp := repPool.Get().(*[]byte)
	rep, err := encodeBatch((*bp)[:0], e.parts.Snapshot(), ops)
	if err == nil {
		if err = writeRepC(e.cdb, e.cw, rep); err != nil {
			err = fmt.Errorf("rocksdb: batch of %d operations: %w", len(ops), err)
		}
	}
	if cap(rep) <= maxPooledRep {
		*bp = rep[:0]
		repPool.Put(bp)
	}
	return err
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

// CreatePartition creates the column family while reads and writes of
// other partitions go on; the partition becomes visible once it exists.
func (e *engine) CreatePartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	if _, ok := e.parts.Get(p.Name()); ok {
		return nil
	}
	h, err := e.db.CreateColumnFamily(e.opts.db, columnFamily(p))
	if err != nil {
		return fmt.Errorf("rocksdb: creating partition %q: %w", p.Name(), err)
	}
	pt := newPart(h)
	e.parts.Set(p.Name(), pt)
	return nil
}

func (e *engine) ListPartitions(_ context.Context) ([]store.Partition, error) {
	return e.parts.Partitions()
}

// DropPartition takes the partition out of the partition set first, then
// drains the gate (waits for the data calls in flight, which may have found
// it), then drops the column family. From the removal on, every operation
// on the partition fails with ErrPartitionNotFound; iterators opened before
// keep reading their snapshot. Should RocksDB refuse the drop, the
// partition is put back, untouched, and the error returned.
func (e *engine) DropPartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	found, err := e.parts.Drop(e.gate, p.Name(), func(pt part) error {
		if err := e.db.DropColumnFamily(pt.h); err != nil {
			return fmt.Errorf("rocksdb: dropping partition %q: %w", p.Name(), err)
		}
		pt.f.release()
		return nil
	})
	if err == nil && !found {
		return missing(p)
	}
	return err
}

func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: true, Durable: true}
}

// Close destroys every column-family handle, then closes the database, then
// frees the options. store.New calls it once, after every iterator was
// closed, so each partition's handle has exactly its own reference left.
func (e *engine) Close() error {
	e.iters.Wait()
	e.ddl.Lock()
	defer e.ddl.Unlock()
	parts := e.parts.Snapshot()
	var stuck []string
	for name, pt := range parts {
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
		pt.f.release()
	}
	e.parts.Replace(nil)
	for _, h := range e.other {
		h.Destroy()
	}
	e.other = nil
	e.db.Close()
	e.opts.destroy()
	return nil
}
