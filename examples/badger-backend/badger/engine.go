package badger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	bdb "github.com/dgraph-io/badger/v4"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// formatVersion is the layout version the registry records; a database
// with another one is refused.
const formatVersion = "kalamdb-badger/1"

// genLen is the length of the generation in front of every key.
const genLen = 8

// Registry keys, all in the key range of generation 0.
var (
	formatKey   = metaKey("format")
	nextGenKey  = metaKey("next")
	partPrefix  = metaKey("part/")
	purgePrefix = metaKey("purge/")
)

// Every key fits a Badger key (at most 65,000 bytes) with its generation.
var _ [65000 - genLen - store.MaxKeySize]struct{}

// entryOverhead is what Badger counts against a transaction's size for one
// entry beyond the key and value we give it (see Capabilities): the
// generation in front of the key, 2 bytes of metadata and 10 more per entry.
const entryOverhead = genLen + 2 + 10

// commitOverhead is more than what Badger counts, from the start, for the
// entry it adds to every transaction at commit, its end-of-transaction
// marker (21 bytes).
const commitOverhead = 64

// engine is the store.Engine over one Badger database.
type engine struct {
	db *bdb.DB

	// parts maps partition names to generations. Data calls look them up
	// without a lock: the engine is store.Gated, and DropPartition drains
	// the wrapper's gate before the generation stops being valid.
	parts store.PartitionMap[uint64]
	gate  store.Gate
	// ddl serialises CreatePartition, DropPartition and purges.
	ddl sync.Mutex

	// writeMu is held shared by every write, and exclusively by a batch
	// with a range delete, so that nothing is written into the range
	// between the moment its keys are read and the commit.
	writeMu sync.RWMutex

	// maxOps and maxBytes are the batch limits (Capabilities).
	maxOps, maxBytes int
}

// afterPurgeChunk, when set (by tests), runs after each committed chunk of
// a purge; an error stops the purge there, as a crash would.
var afterPurgeChunk func(gen uint64) error

func openEngine(c Config) (*engine, error) {
	opts := bdb.DefaultOptions(c.Path).
		WithSyncWrites(c.SyncWrites).
		WithMemTableSize(int64(c.MemTableMB) << 20).
		// Every write transaction writes without reading, except a range
		// delete or a batch with checks, which hold writeMu exclusively,
		// and partition changes, which ddl serialises: no transaction can
		// conflict.
		WithDetectConflicts(false).
		WithLoggingLevel(bdb.WARNING)
	db, err := bdb.Open(opts)
	if err != nil && (errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "Cannot acquire directory lock")) {
		return nil, fmt.Errorf("badger: %q is in use: another process, or another backend of this one, has the database open, "+
			"and an embedded database belongs to one process at a time: %w", c.Path, err)
	}
	if err != nil {
		return nil, err
	}
	e := &engine{db: db}
	// The batch limits: see Capabilities.
	e.maxOps = int(db.MaxBatchCount()) - 2
	e.maxBytes = int(db.MaxBatchSize()) - 1 - commitOverhead - e.maxOps*entryOverhead
	if err := e.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return e, nil
}

// load checks the layout version, reads the registry and finishes the
// purges a crash or a failure interrupted.
func (e *engine) load() error {
	parts := map[string]uint64{}
	var purges []uint64
	err := e.db.Update(func(txn *bdb.Txn) error {
		item, err := txn.Get(formatKey)
		switch {
		case errors.Is(err, bdb.ErrKeyNotFound):
			if !e.empty(txn) {
				return fmt.Errorf("%w: the database holds keys that KalamDB did not write (no layout version)", store.ErrInvalidArgument)
			}
			return txn.Set(formatKey, []byte(formatVersion))
		case err != nil:
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if string(v) != formatVersion {
			return fmt.Errorf("the database holds layout %q; this version reads %q", v, formatVersion)
		}
		it := txn.NewIterator(bdb.IteratorOptions{PrefetchValues: false, Prefix: metaKey("")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if name, ok := bytes.CutPrefix(k, partPrefix); ok {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				if parts[string(name)], err = readGen(v); err != nil {
					return fmt.Errorf("registry entry of partition %q: %w", name, err)
				}
			} else if g, ok := bytes.CutPrefix(k, purgePrefix); ok {
				gen, err := readGen(g)
				if err != nil {
					return fmt.Errorf("pending-purge record %x: %w", k, err)
				}
				purges = append(purges, gen)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.parts.Replace(parts)
	for _, gen := range purges {
		if err := e.purge(gen); err != nil {
			return err
		}
	}
	return nil
}

// empty reports whether the database holds no key at all.
func (e *engine) empty(txn *bdb.Txn) bool {
	it := txn.NewIterator(bdb.IteratorOptions{PrefetchValues: false})
	defer it.Close()
	it.Rewind()
	return !it.Valid()
}

// metaKey returns the registry key called name (generation 0).
func metaKey(name string) []byte { return append(make([]byte, genLen, genLen+len(name)), name...) }

// genKey returns the 8 bytes of gen.
func genKey(gen uint64) []byte { return binary.BigEndian.AppendUint64(nil, gen) }

// readGen decodes the 8 bytes of a generation.
func readGen(b []byte) (uint64, error) {
	if len(b) != genLen {
		return 0, fmt.Errorf("a generation of %d bytes, not %d: the registry is damaged", len(b), genLen)
	}
	return binary.BigEndian.Uint64(b), nil
}

// dataKey returns key as stored in the partition of generation gen: the
// one function that maps partitions onto Badger's key space.
func dataKey(gen uint64, key []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, genLen+len(key)), gen), key...)
}

func notFound(p store.Partition) error {
	return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
}

// UseGate implements store.Gated.
func (e *engine) UseGate(g store.Gate) { e.gate = g }

func (e *engine) Get(_ context.Context, p store.Partition, key []byte) ([]byte, error) {
	gen, ok := e.parts.Get(p.Name())
	if !ok {
		return nil, notFound(p)
	}
	txn := e.db.NewTransaction(false)
	defer txn.Discard()
	item, err := txn.Get(dataKey(gen, key))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("badger: get: %w", err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("badger: get: %w", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (e *engine) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	return e.Batch(ctx, []store.Operation{store.PutOp(p, key, value)})
}

func (e *engine) Delete(ctx context.Context, p store.Partition, key []byte) error {
	return e.Batch(ctx, []store.Operation{store.DeleteOp(p, key)})
}

// Batch applies ops in one Badger transaction. Badger is done with the
// keys and values it was given once the commit returns, so nothing is
// copied but the keys, which get their generation in front.
func (e *engine) Batch(_ context.Context, ops []store.Operation) error {
	gens := make([]uint64, len(ops))
	exclusive := false // a range delete or a check reads in the transaction
	for i, op := range ops {
		gen, ok := e.parts.Get(op.Partition.Name())
		if !ok {
			return notFound(op.Partition)
		}
		gens[i] = gen
		exclusive = exclusive || op.Kind == store.OpDeleteRange || op.Kind.IsCheck()
	}
	if exclusive {
		e.writeMu.Lock()
		defer e.writeMu.Unlock()
	} else {
		e.writeMu.RLock()
		defer e.writeMu.RUnlock()
	}
	err := e.db.Update(func(txn *bdb.Txn) error {
		// The checks see the state before the batch: they are read before
		// any of its writes.
		err := store.EvalChecks(ops, func(i int) ([]byte, bool, error) {
			item, err := txn.Get(dataKey(gens[i], ops[i].Key))
			if errors.Is(err, bdb.ErrKeyNotFound) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			v, err := item.ValueCopy(nil)
			return v, err == nil, err
		})
		if err != nil {
			return err
		}
		for i, op := range ops {
			var err error
			switch op.Kind {
			case store.OpPut:
				err = txn.Set(dataKey(gens[i], op.Key), op.Value)
			case store.OpDelete:
				err = txn.Delete(dataKey(gens[i], op.Key))
			case store.OpDeleteRange:
				err = deleteRange(txn, dataKey(gens[i], op.Key), dataKey(gens[i], op.End))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrConditionFailed) {
		return err
	}
	if errors.Is(err, bdb.ErrTxnTooBig) {
		return fmt.Errorf("%w: badger: the batch, counting every key its range deletes remove, is more than one Badger transaction holds (%d entries, %d bytes); nothing was applied",
			store.ErrInvalidArgument, e.db.MaxBatchCount(), e.db.MaxBatchSize())
	}
	if err != nil {
		return fmt.Errorf("badger: batch: %w", err)
	}
	return nil
}

// deleteRange deletes, in txn, every key in [lower, upper). The iterator
// sees what earlier operations of the transaction wrote.
func deleteRange(txn *bdb.Txn, lower, upper []byte) error {
	it := txn.NewIterator(bdb.IteratorOptions{PrefetchValues: false, Prefix: lower[:genLen]})
	defer it.Close()
	for it.Seek(lower); it.Valid(); it.Next() {
		k := it.Item().Key()
		if bytes.Compare(k, upper) >= 0 {
			break
		}
		if err := txn.Delete(bytes.Clone(k)); err != nil {
			return err
		}
	}
	return nil
}

func (e *engine) Scan(_ context.Context, p store.Partition, r store.Range) (store.Iterator, error) {
	gen, ok := e.parts.Get(p.Name())
	if !ok {
		return nil, notFound(p)
	}
	it := &iterator{reverse: r.Reverse, lower: dataKey(gen, r.Lower), upper: dataKey(gen, r.Upper)}
	if r.Upper == nil {
		it.upper = dataKey(gen+1, nil) // the end of the generation's range
	}
	it.txn = e.db.NewTransaction(false)
	it.it = it.txn.NewIterator(bdb.IteratorOptions{
		Prefix:         scanPrefix(it.lower, it.upper),
		Reverse:        r.Reverse,
		PrefetchValues: r.Bulk, // read ahead for a large one-off read
		PrefetchSize:   100,
	})
	return it, nil
}

// scanPrefix returns the longest prefix shared by every key in [lower,
// upper): the generation, or more when both bounds start alike. Badger skips
// the tables that cannot hold a key with it.
func scanPrefix(lower, upper []byte) []byte {
	n := 0
	for n < len(lower) && n < len(upper) && lower[n] == upper[n] {
		n++
	}
	return lower[:max(n, genLen)]
}

func (e *engine) PartitionExists(_ context.Context, p store.Partition) (bool, error) {
	_, ok := e.parts.Get(p.Name())
	return ok, nil
}

// CreatePartition hands out the next generation and registers it, in one
// transaction.
func (e *engine) CreatePartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	if _, ok := e.parts.Get(p.Name()); ok {
		return nil
	}
	var gen uint64
	err := e.db.Update(func(txn *bdb.Txn) error {
		item, err := txn.Get(nextGenKey)
		switch {
		case errors.Is(err, bdb.ErrKeyNotFound):
			gen = 1
		case err != nil:
			return err
		default:
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if gen, err = readGen(v); err != nil {
				return err
			}
			gen++
		}
		if err := txn.Set(nextGenKey, genKey(gen)); err != nil {
			return err
		}
		return txn.Set(append(bytes.Clone(partPrefix), p.Name()...), genKey(gen))
	})
	if err != nil {
		return fmt.Errorf("badger: creating partition %q: %w", p.Name(), err)
	}
	e.parts.Set(p.Name(), gen)
	return nil
}

func (e *engine) ListPartitions(context.Context) ([]store.Partition, error) {
	return e.parts.Partitions()
}

// DropPartition takes the partition out of parts and drains the gate
// (store.PartitionMap.Drop), removes its registry entry and records its
// generation as pending purge in one transaction, then purges it.
func (e *engine) DropPartition(_ context.Context, p store.Partition) error {
	e.ddl.Lock()
	defer e.ddl.Unlock()
	var gen uint64
	found, err := e.parts.Drop(e.gate, p.Name(), func(g uint64) error {
		gen = g
		return e.db.Update(func(txn *bdb.Txn) error {
			if err := txn.Delete(append(bytes.Clone(partPrefix), p.Name()...)); err != nil {
				return err
			}
			return txn.Set(append(bytes.Clone(purgePrefix), genKey(g)...), nil)
		})
	})
	switch {
	case err != nil:
		return fmt.Errorf("badger: dropping partition %q: %w", p.Name(), err)
	case !found:
		return notFound(p)
	}
	if err := e.purge(gen); err != nil {
		return fmt.Errorf("badger: partition %q is dropped, but deleting its keys failed; the next open resumes it: %w", p.Name(), err)
	}
	return nil
}

// purge deletes every key of generation gen, in chunks that fit one
// transaction, and with the last chunk its pending-purge record.
func (e *engine) purge(gen uint64) error {
	for done := false; !done; {
		err := e.db.Update(func(txn *bdb.Txn) error {
			it := txn.NewIterator(bdb.IteratorOptions{PrefetchValues: false, Prefix: genKey(gen)})
			defer it.Close()
			n, size := 0, 0
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().KeyCopy(nil)
				// Stay one entry and 64 bytes under the batch limits: room
				// for the delete of the pending-purge record.
				if n+1 == e.maxOps || size+len(k) > e.maxBytes-64 {
					return nil // the next chunk goes on from here
				}
				if err := txn.Delete(k); err != nil {
					return err
				}
				n, size = n+1, size+len(k)
			}
			done = true
			return txn.Delete(append(bytes.Clone(purgePrefix), genKey(gen)...))
		})
		if err != nil {
			return fmt.Errorf("purging generation %d: %w", gen, err)
		}
		if afterPurgeChunk != nil {
			if err := afterPurgeChunk(gen); err != nil {
				return err
			}
		}
	}
	return nil
}

// Capabilities: scans are snapshots (a Badger read transaction), data
// survives a reopen, and a batch is bounded by what one Badger transaction
// holds. Badger refuses a transaction of MaxBatchCount entries, its commit
// marker included, or of MaxBatchSize bytes, counting for each entry its
// key, its value (or a 12-byte pointer, for a value kept in the value log)
// and 12 bytes; with the generation in front of every key, an operation
// costs at most entryOverhead bytes beyond its key and value. So MaxBatchOps
// leaves room for the marker, and MaxBatchBytes for the overhead of
// MaxBatchOps operations: a batch within both is one Badger transaction.
func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: true, Durable: true, MaxBatchOps: e.maxOps, MaxBatchBytes: e.maxBytes}
}

func (e *engine) Close() error {
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("badger: close: %w", err)
	}
	return nil
}

// iterator walks a Badger iterator, in a read-only transaction, over the
// stored keys [lower, upper); it strips the generation from the keys.
type iterator struct {
	txn          *bdb.Txn
	it           *bdb.Iterator
	lower, upper []byte
	reverse      bool
	started      bool
	done         bool
	key, value   []byte
	err          error
}

func (i *iterator) Next() bool {
	i.key = nil
	if i.done || i.it == nil {
		return false
	}
	switch {
	case i.started:
		i.it.Next()
	case i.reverse:
		// Seek in reverse finds the last key <= upper; upper is excluded.
		i.it.Seek(i.upper)
		if i.it.Valid() && bytes.Equal(i.it.Item().Key(), i.upper) {
			i.it.Next()
		}
	default:
		i.it.Seek(i.lower)
	}
	i.started = true
	if !i.it.Valid() {
		i.done = true
		return false
	}
	item := i.it.Item()
	k := item.Key()
	if (i.reverse && bytes.Compare(k, i.lower) < 0) || (!i.reverse && bytes.Compare(k, i.upper) >= 0) {
		i.done = true
		return false
	}
	v, err := item.ValueCopy(i.value[:0])
	if err != nil {
		i.err, i.done = fmt.Errorf("badger: scan: %w", err), true
		return false
	}
	i.key, i.value = k[genLen:], v
	return true
}

func (i *iterator) Key() []byte { return i.key }

func (i *iterator) Value() []byte {
	if i.key == nil {
		return nil
	}
	return i.value
}

func (i *iterator) Err() error { return i.err }

func (i *iterator) Close() error {
	if i.it != nil {
		i.it.Close()
		i.txn.Discard()
		i.it, i.key = nil, nil
	}
	return i.err
}
