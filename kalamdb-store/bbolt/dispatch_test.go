package bbolt

import (
	"bytes"
	"context"
	"fmt"
	"os"
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
	db := fx.eng.db
	readName, writeName := []byte("read"), []byte("write")
	return fx.Ops(fx.be, fx.eng, storetest.Direct{
		GetBlock: 500,
		Get: func(b *testing.B, i int) {
			k := fx.GetKey(i)
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
		PutBlock: 50,
		Put: func(b *testing.B, i int) {
			k := fx.PutKey(i)
			err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(writeName).Put(k, fx.Value)
			})
			if err != nil {
				b.Fatal(err)
			}
		},
		Batch100Block: 5,
		Batch100: func(b *testing.B, i int) {
			keys := fx.BatchKeys[fx.BatchIndex(i)]
			err := db.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket(writeName)
				for _, k := range keys {
					if err := bk.Put(k, fx.Value); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		},
		ScanBlock: 25,
		Scan100: func(b *testing.B, i int) {
			prefix := fx.Prefixes[fx.PrefixIndex(i)]
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
			storetest.CheckScan(b, n, size)
		},
	})
}

var sink []byte

// dispatchFixture is one database shared by every BenchmarkDispatch
// run of the process, so that direct and backend read the very same file.
type dispatchFixture struct {
	*storetest.DispatchLoad // Read (preloaded, never written afterwards), Write, Keys, …

	dir string
	eng *engine
	be  store.StorageBackend // store.New(eng): the interface value the server holds
}

// fixture is the one dispatch fixture of the process.
var fixture storetest.Lazy[*dispatchFixture]

func dispatch(b *testing.B) *dispatchFixture { return fixture.Get(b, newDispatchFixture) }

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
		DispatchLoad: storetest.NewDispatchLoad(),
	}
	ctx := context.Background()
	if err := fx.Preload(ctx, fx.be); err != nil {
		return nil, err
	}
	// Read every page once.
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
