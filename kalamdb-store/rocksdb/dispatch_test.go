package rocksdb

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/linxGnu/grocksdb"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// BenchmarkDispatch measures what the storage abstraction costs over calling
// RocksDB by hand (ADR-003: "trait dispatch overhead < 5% vs direct RocksDB
// calls"). Each <op> has two sub-benchmarks over the same database, column
// family, keys, values and RocksDB options:
//
//   - direct calls grocksdb by hand with this package's key layout (the
//     partition's prefix, then the key, in the shared column family), the
//     way a program without the abstraction would, doing the same useful
//     work;
//   - backend goes through a store.StorageBackend interface value (as the
//     server holds it): the argument checks and locking of store.New, then
//     this package's engine, then the same grocksdb calls.
//
// The operations, on 12-byte keys and 100-byte values:
//
//   - get: a point read of an existing key (data compacted into a table
//     file, blocks in the block cache). direct: the stored key (prefix and
//     key) built in a reused buffer, DB.GetCF, then a copy into a new Go
//     slice owned by the caller, then Slice.Free. backend: Get.
//   - put: a write of one key into another partition. direct: the stored
//     key in a reused buffer, DB.PutCF. backend: Put.
//   - batch100: one atomic write of 100 puts. direct: NewWriteBatch,
//     100 × WriteBatch.PutCF of stored keys built in a reused buffer,
//     DB.Write, WriteBatch.Destroy. backend: Batch with 100
//     store.Operations built before the timer starts.
//   - scan100: a prefix scan that returns exactly 100 keys, reading every
//     key (without the partition's prefix) and value. direct: read options
//     with the stored prefix as lower bound and its successor as upper
//     bound (precomputed), NewIteratorCF, Seek, Valid/Key/Value/Next to the
//     end, Err, Close, ReadOptions.Destroy. backend: Scan with
//     ScanOptions{Prefix}, Next/Key/Value, Close.
//
// Every sub-benchmark starts with the shared column family flushed and
// compacted (settle), so none pays for background work another caused, and
// reports cpu-ns/op, the process's CPU time per op, beside ns/op.
//
// A third sub-benchmark, <op>/paired, runs direct, backend and a third
// side, engine (this package's store.Engine called without store.New's
// wrapper), in turn in blocks of about a millisecond, and reports the median
// of the per-round ratios to direct ("backend/direct", "engine/direct", and
// the same in CPU time of the calling thread, "cpu-backend/direct"). Load
// from other programs moves the three sides of a round alike, so these
// ratios hold steady on a busy machine where the separate runs' ns/op do
// not; and engine/direct against backend/direct splits the overhead between
// this package and store.New. scripts/bench.sh prints both kinds.
func BenchmarkDispatch(b *testing.B) {
	fx := dispatch(b)
	storetest.RunDispatch(b, fx.ops(), fx.settle)
}

func (fx *dispatchFixture) ops() []storetest.DispatchOp {
	db := fx.eng.db
	kb := make([]byte, 0, 64)
	return fx.Ops(fx.be, fx.eng, storetest.Direct{
		GetBlock: 500,
		Get: func(b *testing.B, i int) {
			kb = append(append(kb[:0], fx.readPrefix...), fx.GetKey(i)...)
			s, err := db.GetCF(fx.ro, fx.readH, kb)
			if err != nil {
				b.Fatal(err)
			}
			if !s.Exists() {
				b.Fatal("missing key")
			}
			v := make([]byte, s.Size())
			copy(v, s.Data())
			s.Free()
			sink = v
		},
		PutBlock: 200,
		Put: func(b *testing.B, i int) {
			kb = append(append(kb[:0], fx.writePrefix...), fx.PutKey(i)...)
			if err := db.PutCF(fx.wo, fx.writeH, kb, fx.Value); err != nil {
				b.Fatal(err)
			}
		},
		Batch100Block: 5,
		Batch100: func(b *testing.B, i int) {
			wb := grocksdb.NewWriteBatch()
			for _, k := range fx.BatchKeys[fx.BatchIndex(i)] {
				kb = append(append(kb[:0], fx.writePrefix...), k...)
				wb.PutCF(fx.writeH, kb, fx.Value)
			}
			err := db.Write(fx.wo, wb)
			wb.Destroy()
			if err != nil {
				b.Fatal(err)
			}
		},
		ScanBlock: 25,
		Scan100: func(b *testing.B, i int) {
			j := fx.PrefixIndex(i)
			ro := grocksdb.NewDefaultReadOptions()
			ro.SetIterateLowerBound(fx.lowers[j])
			ro.SetIterateUpperBound(fx.uppers[j])
			it := db.NewIteratorCF(ro, fx.readH)
			n, size := 0, 0
			for it.Seek(fx.lowers[j]); it.Valid(); it.Next() {
				size += len(it.Key().Data()[len(fx.readPrefix):]) + len(it.Value().Data())
				n++
			}
			err := it.Err()
			it.Close()
			ro.Destroy()
			if err != nil {
				b.Fatal(err)
			}
			storetest.CheckScan(b, n, size)
		},
	})
}

var sink []byte

// dispatchFixture is one database shared by every BenchmarkDispatch run of
// the process, so that direct and backend read the very same files and
// block cache.
type dispatchFixture struct {
	*storetest.DispatchLoad // Read (preloaded, never written afterwards), Write, Keys, …

	dir string
	eng *engine
	be  store.StorageBackend // store.New(eng): the interface value the server holds

	readH, writeH           *grocksdb.ColumnFamilyHandle
	readPrefix, writePrefix []byte                 // the partitions' key prefixes, for direct
	lowers, uppers          [][]byte               // Prefixes and Ends behind readPrefix, for direct
	ro                      *grocksdb.ReadOptions  // direct's own, as the engine's
	wo                      *grocksdb.WriteOptions // direct's own, as the engine's
}

// fixture is the one dispatch fixture of the process.
var fixture storetest.Lazy[*dispatchFixture]

func dispatch(b *testing.B) *dispatchFixture {
	return fixture.Get(b, func() (*dispatchFixture, error) { return newDispatchFixture(false, DefaultConfig().WriteBufferMB) })
}

// newDispatchFixture builds the fixture in a new database with the default
// configuration but writeBufferMB; with legacy, a database of the earlier
// layout, where the partitions read and write have column families of their
// own (with memtables of at most legacyWriteBufferMB) and no key prefix.
func newDispatchFixture(legacy bool, writeBufferMB int) (*dispatchFixture, error) {
	dir, err := os.MkdirTemp("", "kalamdb-dispatch-")
	if err != nil {
		return nil, err
	}
	c := DefaultConfig()
	c.Path = dir
	c.WriteBufferMB = writeBufferMB
	if legacy {
		if err := makeLegacyDB(dir, "read", "write"); err != nil {
			return nil, err
		}
	}
	eng, err := openEngine(c)
	if err != nil {
		return nil, err
	}
	fx := &dispatchFixture{
		dir: dir, eng: eng, be: store.New(eng),
		DispatchLoad: storetest.NewDispatchLoad(),
		ro:           grocksdb.NewDefaultReadOptions(), wo: grocksdb.NewDefaultWriteOptions(),
	}
	fx.wo.SetSync(c.SyncWrites)
	ctx := context.Background()
	if err := fx.Preload(ctx, fx.be); err != nil {
		return nil, err
	}
	read, _ := eng.parts.Get("read")
	write, _ := eng.parts.Get("write")
	if (read.f != nil) != legacy || (write.f != nil) != legacy {
		return nil, fmt.Errorf("the fixture's partitions are not in the layout asked for (legacy %v)", legacy)
	}
	fx.readH, fx.writeH = read.h, write.h
	fx.readPrefix, fx.writePrefix = read.prefix.bytes(), write.prefix.bytes()
	for j := range fx.Prefixes {
		fx.lowers = append(fx.lowers, append(bytes.Clone(fx.readPrefix), fx.Prefixes[j]...))
		fx.uppers = append(fx.uppers, append(bytes.Clone(fx.readPrefix), fx.Ends[j]...))
	}
	if err := fx.compact(fx.readH); err != nil {
		return nil, err
	}
	// Warm the block cache.
	if err := fx.Warm(ctx, fx.be); err != nil {
		return nil, err
	}
	return fx, nil
}

// compact flushes the column family and compacts it into its last level,
// synchronously, so that no flush or compaction is left to run.
func (fx *dispatchFixture) compact(h *grocksdb.ColumnFamilyHandle) error {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	if err := fx.eng.db.FlushCF(h, fo); err != nil {
		return err
	}
	fx.eng.db.CompactRangeCF(h, grocksdb.Range{})
	return nil
}

// settle gives each sub-benchmark the same start: the writes of the
// previous ones flushed and compacted, so that no sub-benchmark pays for
// background work that another caused. It runs before b.Loop starts the
// timer.
func (fx *dispatchFixture) settle(b *testing.B) {
	if err := fx.compact(fx.writeH); err != nil {
		b.Fatal(err)
	}
}

func (fx *dispatchFixture) close() {
	fx.ro.Destroy()
	fx.wo.Destroy()
	_ = fx.be.Close()
	_ = os.RemoveAll(fx.dir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, l := range []*storetest.Lazy[*dispatchFixture]{&fixture, &legacyFixture, &largeFixture} {
		if fx, ok := l.Built(); ok {
			fx.close()
		}
	}
	for i := range dropFixtures {
		if fx, ok := dropFixtures[i].Built(); ok {
			fx.close()
		}
	}
	os.Exit(code)
}

// legacyFixture is BenchmarkPrefixCost's database in the earlier layout,
// largeFixture BenchmarkWriteBufferSize's database with larger memtables.
var legacyFixture, largeFixture storetest.Lazy[*dispatchFixture]

// compareFixtures runs the four operations through the backends of two
// fixtures, before as "direct" and after as "backend", in the paired run
// with a third side that does nothing, so that each database follows the
// other in half of the rounds. With a third side on one of the two
// databases, that database would more often run right after itself, with
// its data still in the processor's caches, and the comparison would lean
// its way: 10-15 % on get, whichever database it was.
func compareFixtures(b *testing.B, before, after *dispatchFixture) {
	noDirect := storetest.Direct{}
	beforeOps, afterOps := before.Ops(before.be, before.eng, noDirect), after.Ops(after.be, after.eng, noDirect)
	blocks := map[string]int{"get": 500, "put": 200, "batch100": 5, "scan100": 25}
	ops := make([]storetest.DispatchOp, len(beforeOps))
	for i := range beforeOps {
		ops[i] = storetest.DispatchOp{Name: beforeOps[i].Name, Block: blocks[beforeOps[i].Name],
			Direct: beforeOps[i].Backend, Backend: afterOps[i].Backend, Engine: func(*testing.B, int) {}}
	}
	storetest.RunDispatch(b, ops, func(b *testing.B) {
		before.settle(b)
		after.settle(b)
	})
}

// BenchmarkWriteBufferSize measures what larger memtables would cost or
// save now that one memtable buffers the writes of every partition: the
// same operations through the backend on two databases of the current
// layout, one with the default write_buffer_mb ("direct") and one with
// 32 MiB ("backend"). The separate runs' cpu-ns/op count the flushes and
// compactions that smaller memtables cause; the paired run counts the
// calling thread alone.
func BenchmarkWriteBufferSize(b *testing.B) {
	large := largeFixture.Get(b, func() (*dispatchFixture, error) { return newDispatchFixture(false, 32) })
	compareFixtures(b, dispatch(b), large)
}

// BenchmarkPrefixCost measures what the layout of ADR-010 costs the data
// calls: the same operations through the backend on a database of the
// earlier layout (each partition a column family of its own, keys as they
// are: "direct") and on one of the current layout (partitions as key
// ranges of the shared column family, each key behind its partition's
// prefix: "backend"), with the same options (the default configuration)
// and data (see compareFixtures). Run it with BenchmarkDispatch's settings;
// backend/direct above 1 is the layout's cost.
func BenchmarkPrefixCost(b *testing.B) {
	old := legacyFixture.Get(b, func() (*dispatchFixture, error) {
		return newDispatchFixture(true, DefaultConfig().WriteBufferMB)
	})
	compareFixtures(b, old, dispatch(b))
}

// makeLegacyDB creates, through grocksdb, a database of the earlier layout
// in dir with an empty column family "p/<name>" for each name.
func makeLegacyDB(dir string, names ...string) error {
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	db, err := grocksdb.OpenDb(o, dir)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, name := range names {
		h, err := db.CreateColumnFamily(o, legacyColumnFamily(store.MustPartition(name)))
		if err != nil {
			return err
		}
		h.Destroy()
	}
	return nil
}

// BenchmarkGetVariants compares two ways of reading a value into a Go slice
// with grocksdb, on the keys of BenchmarkDispatch/get, in interleaved blocks
// (see storetest.RunDispatch): "direct" is DB.GetCF (RocksDB copies the value into a
// malloc'd buffer; copy it into Go, free it), what the engine uses; "backend"
// is DB.GetPinnedCF (RocksDB pins the block instead of copying; read the
// pinned slice, copy it into Go, destroy the handle), and "engine" is GetCF
// again, an A/A comparison that shows the noise floor of the method.
// backend/direct above 1 means pinning is slower.
func BenchmarkGetVariants(b *testing.B) {
	fx := dispatch(b)
	db := fx.eng.db
	getCF := func(b *testing.B, i int) {
		s, err := db.GetCF(fx.ro, fx.readH, fx.GetKey(i))
		if err != nil || !s.Exists() {
			b.Fatal("get", err)
		}
		v := make([]byte, s.Size())
		copy(v, s.Data())
		s.Free()
		sink = v
	}
	pinned := func(b *testing.B, i int) {
		h, err := db.GetPinnedCF(fx.ro, fx.readH, fx.GetKey(i))
		if err != nil || !h.Exists() {
			b.Fatal("get pinned", err)
		}
		d := h.Data()
		v := make([]byte, len(d))
		copy(v, d)
		h.Destroy()
		sink = v
	}
	fx.settle(b)
	storetest.RunDispatch(b, []storetest.DispatchOp{{Name: "get", Block: 500, Direct: getCF, Backend: pinned, Engine: getCF}}, fx.settle)
}
