package pebble

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
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
	ctx := context.Background()
	db := fx.eng.db
	var be store.StorageBackend = fx.be
	var eng store.Engine = fx.eng
	kb := make([]byte, 0, 64)
	checkScan := func(b *testing.B, n, size int) {
		if n != 100 || size != 100*(dispatchKeyLen+dispatchValueLen) {
			b.Fatalf("scan read %d keys, %d bytes", n, size)
		}
	}
	scan := func(b *testing.B, it store.Iterator, err error) {
		if err != nil {
			b.Fatal(err)
		}
		n, size := 0, 0
		for it.Next() {
			size += len(it.Key()) + len(it.Value())
			n++
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
		checkScan(b, n, size)
	}
	return []storetest.DispatchOp{{
		Name: "get", Block: 500,
		Direct: func(b *testing.B, i int) {
			kb = appendKey(kb[:0], "read", fx.keys[(i*7919)%dispatchKeys])
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
		Backend: func(b *testing.B, i int) {
			v, err := be.Get(ctx, fx.read, fx.keys[(i*7919)%dispatchKeys])
			if err != nil {
				b.Fatal(err)
			}
			sink = v
		},
		Engine: func(b *testing.B, i int) {
			v, err := eng.Get(ctx, fx.read, fx.keys[(i*7919)%dispatchKeys])
			if err != nil {
				b.Fatal(err)
			}
			sink = v
		},
	}, {
		Name: "put", Block: 200,
		Direct: func(b *testing.B, i int) {
			kb = appendKey(kb[:0], "write", fx.keys[i%dispatchKeys])
			if err := db.Set(kb, fx.val, pdb.NoSync); err != nil {
				b.Fatal(err)
			}
		},
		Backend: func(b *testing.B, i int) {
			if err := be.Put(ctx, fx.write, fx.keys[i%dispatchKeys], fx.val); err != nil {
				b.Fatal(err)
			}
		},
		Engine: func(b *testing.B, i int) {
			if err := eng.Put(ctx, fx.write, fx.keys[i%dispatchKeys], fx.val); err != nil {
				b.Fatal(err)
			}
		},
	}, {
		Name: "batch100", Block: 5,
		Direct: func(b *testing.B, i int) {
			wb := db.NewBatch()
			for _, k := range fx.batchKeys[i%len(fx.batchKeys)] {
				kb = appendKey(kb[:0], "write", k)
				if err := wb.Set(kb, fx.val, nil); err != nil {
					b.Fatal(err)
				}
			}
			err := db.Apply(wb, pdb.NoSync)
			_ = wb.Close()
			if err != nil {
				b.Fatal(err)
			}
		},
		Backend: func(b *testing.B, i int) {
			if err := be.Batch(ctx, fx.batchOps[i%len(fx.batchOps)]); err != nil {
				b.Fatal(err)
			}
		},
		Engine: func(b *testing.B, i int) {
			if err := eng.Batch(ctx, fx.batchOps[i%len(fx.batchOps)]); err != nil {
				b.Fatal(err)
			}
		},
	}, {
		Name: "scan100", Block: 25,
		Direct: func(b *testing.B, i int) {
			j := (i * 37) % len(fx.prefixes)
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
			checkScan(b, n, size)
		},
		Backend: func(b *testing.B, i int) {
			j := (i * 37) % len(fx.prefixes)
			it, err := be.Scan(ctx, fx.read, store.ScanOptions{Prefix: fx.prefixes[j]})
			scan(b, it, err)
		},
		Engine: func(b *testing.B, i int) {
			j := (i * 37) % len(fx.prefixes)
			it, err := eng.Scan(ctx, fx.read, store.Range{Lower: fx.prefixes[j], Upper: fx.ends[j]})
			scan(b, it, err)
		},
	}}
}

var sink []byte

const (
	dispatchKeys     = 10000
	dispatchKeyLen   = len("row/00000000")
	dispatchValueLen = 100
)

// dispatchFixture is one database shared by every BenchmarkDispatch
// run of the process, so that direct and backend read the very same files
// and block cache.
type dispatchFixture struct {
	dir   string
	eng   *engine
	be    store.StorageBackend // store.New(eng): the interface value the server holds
	read  store.Partition      // preloaded and flushed, never written afterwards
	write store.Partition      // target of put and batch100

	keys      [][]byte
	val       []byte
	batchKeys [][][]byte          // 100 batches of 100 keys
	batchOps  [][]store.Operation // the same batches as operations
	prefixes  [][]byte            // 100 prefixes of 100 keys each
	ends      [][]byte            // their successors
	lowers    [][]byte            // their stored bounds in partition "read"
	uppers    [][]byte
}

var (
	fixtureOnce sync.Once
	fixture     *dispatchFixture
	fixtureErr  error
)

func dispatch(b *testing.B) *dispatchFixture {
	fixtureOnce.Do(func() { fixture, fixtureErr = newDispatchFixture() })
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixture
}

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
		read: store.MustPartition("read"), write: store.MustPartition("write"),
		val: make([]byte, dispatchValueLen),
	}
	for i := range fx.val {
		fx.val[i] = byte(i)
	}
	ctx := context.Background()
	for _, p := range []store.Partition{fx.read, fx.write} {
		if err := fx.be.CreatePartition(ctx, p); err != nil {
			return nil, err
		}
	}
	ops := make([]store.Operation, 0, dispatchKeys)
	for i := 0; i < dispatchKeys; i++ {
		k := []byte(fmt.Sprintf("row/%08d", i))
		fx.keys = append(fx.keys, k)
		ops = append(ops, store.PutOp(fx.read, k, fx.val))
	}
	if err := fx.be.Batch(ctx, ops); err != nil {
		return nil, err
	}
	if err := eng.db.Flush(); err != nil {
		return nil, err
	}
	for i := 0; i < dispatchKeys/100; i++ {
		keys := fx.keys[i*100 : (i+1)*100]
		fx.batchKeys = append(fx.batchKeys, keys)
		bops := make([]store.Operation, len(keys))
		for j, k := range keys {
			bops[j] = store.PutOp(fx.write, k, fx.val)
		}
		fx.batchOps = append(fx.batchOps, bops)
		prefix := []byte(fmt.Sprintf("row/000%03d", i)) // row/000iii00 to row/000iii99
		fx.prefixes = append(fx.prefixes, prefix)
		fx.ends = append(fx.ends, store.PrefixSuccessor(prefix))
		fx.lowers = append(fx.lowers, appendKey(nil, "read", prefix))
		fx.uppers = append(fx.uppers, appendKey(nil, "read", store.PrefixSuccessor(prefix)))
	}
	// Warm the block cache.
	for _, k := range fx.keys {
		if _, err := fx.be.Get(ctx, fx.read, k); err != nil {
			return nil, err
		}
	}
	return fx, nil
}

func (fx *dispatchFixture) close() {
	_ = fx.be.Close()
	_ = os.RemoveAll(fx.dir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture != nil {
		fixture.close()
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
