package bbolt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// BenchmarkDispatch measures what the storage abstraction costs over
// calling bbolt by hand (ADR-003: dispatch overhead < 5% over direct
// calls). Each <op> runs over the same file, buckets, keys and values, with
// sync_writes = false (bbolt's NoSync, so that fsync latency does not drown
// the difference), in three sub-benchmarks:
//
//   - direct calls bbolt by hand on the partition's bucket, doing the same
//     useful work;
//   - backend goes through a store.StorageBackend interface value (as the
//     server holds it): the checks and locking of store.New, then this
//     package's engine, then bbolt;
//   - paired runs direct, backend and engine (this package's store.Engine
//     without store.New) in turn in short blocks and reports the medians of
//     the per-round ratios to direct (see storetest.RunDispatch): the figure a busy
//     machine disturbs least.
//
// The operations, on 12-byte keys and 100-byte values:
//
//   - get: a point read of an existing key. direct: DB.View, Tx.Bucket,
//     Bucket.Get, a copy into a new slice owned by the caller. backend: Get.
//   - put: a write of one key into another bucket. direct: DB.Update,
//     Tx.Bucket, Bucket.Put. backend: Put.
//   - batch100: one atomic write of 100 puts. direct: DB.Update,
//     Tx.Bucket, 100 × Bucket.Put. backend: Batch with 100 store.Operations
//     built before the timer starts.
//   - scan100: a prefix scan that returns exactly 100 keys, reading every
//     key and value. direct: DB.Begin(false), Tx.Bucket, Cursor.Seek to the
//     prefix, Next while the key has the prefix, Tx.Rollback. backend: Scan
//     with ScanOptions{Prefix}, Next/Key/Value, Close; it copies each key
//     and value out of the memory map, which direct does not.
//
// Each sub-benchmark reports cpu-ns/op, the process's CPU time per op,
// beside ns/op. scripts/bench.sh runs it with -count 6 and prints
// backend/direct ratios.
func BenchmarkDispatch(b *testing.B) {
	fx := dispatch(b)
	storetest.RunDispatch(b, fx.ops(), func(*testing.B) {})
}

func (fx *dispatchFixture) ops() []storetest.DispatchOp {
	ctx := context.Background()
	db := fx.eng.db
	var be store.StorageBackend = fx.be
	var eng store.Engine = fx.eng
	readName, writeName := []byte("read"), []byte("write")
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
			k := fx.keys[(i*7919)%dispatchKeys]
			err := db.View(func(tx *bolt.Tx) error {
				v := tx.Bucket(readName).Get(k)
				if v == nil {
					return fmt.Errorf("missing key %q", k)
				}
				sink = append(make([]byte, 0, len(v)), v...)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
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
		Name: "put", Block: 50,
		Direct: func(b *testing.B, i int) {
			k := fx.keys[i%dispatchKeys]
			err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(writeName).Put(k, fx.val)
			})
			if err != nil {
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
			keys := fx.batchKeys[i%len(fx.batchKeys)]
			err := db.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket(writeName)
				for _, k := range keys {
					if err := bk.Put(k, fx.val); err != nil {
						return err
					}
				}
				return nil
			})
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
			prefix := fx.prefixes[(i*37)%len(fx.prefixes)]
			tx, err := db.Begin(false)
			if err != nil {
				b.Fatal(err)
			}
			c := tx.Bucket(readName).Cursor()
			n, size := 0, 0
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				size += len(k) + len(v)
				n++
			}
			if err := tx.Rollback(); err != nil {
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
// run of the process, so that direct and backend read the very same file.
type dispatchFixture struct {
	dir   string
	eng   *engine
	be    store.StorageBackend // store.New(eng): the interface value the server holds
	read  store.Partition      // preloaded, never written afterwards
	write store.Partition      // target of put and batch100

	keys      [][]byte
	val       []byte
	batchKeys [][][]byte          // 100 batches of 100 keys
	batchOps  [][]store.Operation // the same batches as operations
	prefixes  [][]byte            // 100 prefixes of 100 keys each
	ends      [][]byte            // their successors
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
	dir, err := os.MkdirTemp("", "kalamdb-bbolt-dispatch-")
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
	}
	// Read every page once.
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
