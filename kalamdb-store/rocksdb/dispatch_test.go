package rocksdb

import (
	"context"
	"os"
	"testing"

	"github.com/linxGnu/grocksdb"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// BenchmarkDispatch measures what the storage abstraction costs over calling
// RocksDB by hand (ADR-003: "trait dispatch overhead < 5% vs direct RocksDB
// calls"). Each <op> has two sub-benchmarks over the same database, column
// families, keys, values and RocksDB options:
//
//   - direct calls grocksdb by hand, the way a program without the
//     abstraction would, doing the same useful work;
//   - backend goes through a store.StorageBackend interface value (as the
//     server holds it): the argument checks and locking of store.New, then
//     this package's engine, then the same grocksdb calls.
//
// The operations, on 12-byte keys and 100-byte values:
//
//   - get: a point read of an existing key (data compacted into a table
//     file, blocks in the block cache). direct: DB.GetCF, then a copy into
//     a new Go slice owned by the caller, then Slice.Free. backend: Get.
//   - put: a write of one key into another column family. direct:
//     DB.PutCF. backend: Put.
//   - batch100: one atomic write of 100 puts. direct: NewWriteBatch,
//     100 × WriteBatch.PutCF, DB.Write, WriteBatch.Destroy. backend: Batch
//     with 100 store.Operations built before the timer starts.
//   - scan100: a prefix scan that returns exactly 100 keys, reading every
//     key and value. direct: read options with the prefix as lower bound
//     and its successor as upper bound (precomputed), NewIteratorCF, Seek,
//     Valid/Key/Value/Next to the end, Err, Close, ReadOptions.Destroy.
//     backend: Scan with ScanOptions{Prefix}, Next/Key/Value, Close.
//
// Every sub-benchmark starts with the write column family flushed and
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
	return fx.Ops(fx.be, fx.eng, storetest.Direct{
		GetBlock: 500,
		Get: func(b *testing.B, i int) {
			s, err := db.GetCF(fx.ro, fx.readH, fx.GetKey(i))
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
			if err := db.PutCF(fx.wo, fx.writeH, fx.PutKey(i), fx.Value); err != nil {
				b.Fatal(err)
			}
		},
		Batch100Block: 5,
		Batch100: func(b *testing.B, i int) {
			wb := grocksdb.NewWriteBatch()
			for _, k := range fx.BatchKeys[fx.BatchIndex(i)] {
				wb.PutCF(fx.writeH, k, fx.Value)
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
			ro.SetIterateLowerBound(fx.Prefixes[j])
			ro.SetIterateUpperBound(fx.Ends[j])
			it := db.NewIteratorCF(ro, fx.readH)
			n, size := 0, 0
			for it.Seek(fx.Prefixes[j]); it.Valid(); it.Next() {
				size += len(it.Key().Data()) + len(it.Value().Data())
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

	readH, writeH *grocksdb.ColumnFamilyHandle
	ro            *grocksdb.ReadOptions  // direct's own, as the engine's
	wo            *grocksdb.WriteOptions // direct's own, as the engine's
}

// fixture is the one dispatch fixture of the process.
var fixture storetest.Lazy[*dispatchFixture]

func dispatch(b *testing.B) *dispatchFixture { return fixture.Get(b, newDispatchFixture) }

func newDispatchFixture() (*dispatchFixture, error) {
	dir, err := os.MkdirTemp("", "kalamdb-dispatch-")
	if err != nil {
		return nil, err
	}
	c := DefaultConfig()
	c.Path = dir
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
	fx.readH, fx.writeH = read.h, write.h
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
	if fx, ok := fixture.Built(); ok {
		fx.close()
	}
	os.Exit(code)
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
