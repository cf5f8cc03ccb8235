package pebble

import (
	"context"
	"errors"
	"os"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// BenchmarkDispatch measures what the storage abstraction costs over
// calling Pebble by hand (ADR-003: dispatch overhead < 5% over direct
// calls). Each <op> runs over the same database, keys, values and write
// options (sync_writes = false, so that fsync latency does not drown the
// difference) in three sub-benchmarks:
//
//   - direct calls Pebble by hand with this package's key layout
//     (partition name, 0x00, key), doing the same useful work;
//   - backend goes through a store.StorageBackend interface value (as the
//     server holds it): the checks and locking of store.New, then this
//     package's engine, then the same Pebble calls;
//   - paired runs direct, backend and engine (this package's store.Engine
//     without store.New) in turn in short blocks and reports the medians of
//     the per-round ratios to direct (see storetest.RunDispatch): the figure a busy
//     machine disturbs least, and engine/direct against backend/direct
//     splits the overhead between this package and store.New.
//
// The operations, on 12-byte keys and 100-byte values:
//
//   - get: a point read of an existing key (flushed to a table file).
//     direct: the prefixed key built in a reused buffer, DB.Get, a copy
//     into a new slice owned by the caller, closer.Close. backend: Get.
//   - put: a write of one key into another partition. direct: the
//     prefixed key in a reused buffer, DB.Set. backend: Put.
//   - batch100: one atomic write of 100 puts. direct: NewBatch, 100 ×
//     Batch.Set of prefixed keys built in a reused buffer, DB.Apply,
//     Batch.Close. backend: Batch with 100 store.Operations built before
//     the timer starts.
//   - scan100: a prefix scan that returns exactly 100 keys, reading every
//     key and value. direct: NewIter with the prefixed bounds (precomputed),
//     First/Next to the end, reading Key and ValueAndErr, Error, Close.
//     backend: Scan with ScanOptions{Prefix}, Next/Key/Value, Close.
//
// Every sub-benchmark starts with the written partition flushed and
// compacted, so none pays for background work another caused, and reports
// cpu-ns/op, the process's CPU time per op, beside ns/op. scripts/bench.sh
// runs it with -count 6 and prints backend/direct ratios.
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
			kb = appendKey(kb[:0], "read", fx.GetKey(i))
			v, closer, err := db.Get(kb)
			if err != nil {
				b.Fatal(err)
			}
			out := append(make([]byte, 0, len(v)), v...)
			if err := closer.Close(); err != nil {
				b.Fatal(err)
			}
			sink = out
		},
		PutBlock: 200,
		Put: func(b *testing.B, i int) {
			kb = appendKey(kb[:0], "write", fx.PutKey(i))
			if err := db.Set(kb, fx.Value, pdb.NoSync); err != nil {
				b.Fatal(err)
			}
		},
		Batch100Block: 5,
		Batch100: func(b *testing.B, i int) {
			wb := db.NewBatch()
			for _, k := range fx.BatchKeys[fx.BatchIndex(i)] {
				kb = appendKey(kb[:0], "write", k)
				if err := wb.Set(kb, fx.Value, nil); err != nil {
					b.Fatal(err)
				}
			}
			err := db.Apply(wb, pdb.NoSync)
			_ = wb.Close()
			if err != nil {
				b.Fatal(err)
			}
		},
		ScanBlock: 25,
		Scan100: func(b *testing.B, i int) {
			j := fx.PrefixIndex(i)
			it, err := db.NewIter(&pdb.IterOptions{LowerBound: fx.lowers[j], UpperBound: fx.uppers[j]})
			if err != nil {
				b.Fatal(err)
			}
			n, size := 0, 0
			for ok := it.First(); ok; ok = it.Next() {
				v, err := it.ValueAndErr()
				if err != nil {
					b.Fatal(err)
				}
				size += len(it.Key()) - len("read\x00") + len(v)
				n++
			}
			if err := errors.Join(it.Error(), it.Close()); err != nil {
				b.Fatal(err)
			}
			storetest.CheckScan(b, n, size)
		},
	})
}

var sink []byte

// dispatchFixture is one database shared by every BenchmarkDispatch
// run of the process, so that direct and backend read the very same files
// and block cache.
type dispatchFixture struct {
	*storetest.DispatchLoad // Read (preloaded, never written afterwards), Write, Keys, …

	dir string
	eng *engine
	be  store.StorageBackend // store.New(eng): the interface value the server holds

	lowers, uppers [][]byte // the stored bounds of Prefixes in partition "read"
}

// fixture is the one dispatch fixture of the process.
var fixture storetest.Lazy[*dispatchFixture]

func dispatch(b *testing.B) *dispatchFixture { return fixture.Get(b, newDispatchFixture) }

func newDispatchFixture() (*dispatchFixture, error) {
	dir, err := os.MkdirTemp("", "kalamdb-pebble-dispatch-")
	if err != nil {
		return nil, err
	}
	c := DefaultConfig()
	c.Path, c.SyncWrites = dir, false
	eng, err := openEngine(c)
	if err != nil {
		return nil, err
	}
	fx := &dispatchFixture{
		dir: dir, eng: eng, be: store.New(eng),
		DispatchLoad: storetest.NewDispatchLoad(),
	}
	ctx := context.Background()
	if err := fx.Preload(ctx, fx.be); err != nil {
		return nil, err
	}
	if err := eng.db.Flush(); err != nil {
		return nil, err
	}
	for i := 0; i < storetest.DispatchKeys/100; i++ {
		prefix := fx.Prefixes[i]
		fx.lowers = append(fx.lowers, appendKey(nil, "read", prefix))
		fx.uppers = append(fx.uppers, appendKey(nil, "read", store.PrefixSuccessor(prefix)))
	}
	// Warm the block cache.
	if err := fx.Warm(ctx, fx.be); err != nil {
		return nil, err
	}
	return fx, nil
}

func (fx *dispatchFixture) close() {
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

// settle flushes the memtable and compacts the written partition, so that
// a sub-benchmark does not pay for the background work of the one before.
func (fx *dispatchFixture) settle(b *testing.B) {
	if err := fx.eng.db.Flush(); err != nil {
		b.Fatal(err)
	}
	lo, hi := bounds("write")
	if err := fx.eng.db.Compact(context.Background(), lo, hi, false); err != nil {
		b.Fatal(err)
	}
}
