package badger

import (
	"context"
	"os"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// BenchmarkDispatch measures what the storage abstraction costs over
// calling Badger by hand (ADR-003 of KalamDB). Each <op> runs over the
// same database, keys and values, with sync_writes = false (so that fsync
// latency does not drown the difference), in three sub-benchmarks:
//
//   - direct calls Badger by hand with this package's key layout (the
//     partition's generation, then the key), doing the same useful work;
//   - backend goes through a store.StorageBackend interface value (as the
//     server holds it): the checks of store.New, then this package's
//     engine, then the same Badger calls;
//   - paired runs direct, backend and engine (the engine without
//     store.New) in turn in short blocks and reports the medians of the
//     per-round ratios to direct (see storetest.RunDispatch).
//
// The operations, on 12-byte keys and 100-byte values:
//
//   - get: a point read of an existing key. direct: the stored key built
//     in a reused buffer, a read-only transaction, Txn.Get, Item.ValueCopy
//     into a new slice, Txn.Discard. backend: Get.
//   - put: a write of one key into another partition. direct: DB.Update
//     with one Txn.Set of a freshly built stored key (Badger keeps the key
//     until the commit). backend: Put.
//   - batch100: one atomic write of 100 puts. direct: DB.Update with 100 ×
//     Txn.Set. backend: Batch with 100 store.Operations built before the
//     timer starts.
//   - scan100: a prefix scan that returns exactly 100 keys, reading every
//     key and value. direct: a read-only transaction, an iterator on the
//     stored prefix (precomputed), Seek, Item.Key and Item.ValueCopy into a
//     reused buffer while the key has the prefix, Close, Discard. backend:
//     Scan with ScanOptions{Prefix}, Next/Key/Value, Close.
func BenchmarkDispatch(b *testing.B) {
	fx := dispatch(b)
	storetest.RunDispatch(b, fx.ops(), nil)
}

func (fx *dispatchFixture) ops() []storetest.DispatchOp {
	db := fx.eng.db
	kb := make([]byte, 0, 64)
	var vb []byte
	return fx.Ops(fx.be, fx.eng, storetest.Direct{
		GetBlock: 500,
		Get: func(b *testing.B, i int) {
			kb = append(append(kb[:0], fx.read...), fx.GetKey(i)...)
			txn := db.NewTransaction(false)
			item, err := txn.Get(kb)
			if err != nil {
				b.Fatal(err)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				b.Fatal(err)
			}
			txn.Discard()
			sink = v
		},
		PutBlock: 100,
		Put: func(b *testing.B, i int) {
			k := fx.PutKey(i)
			err := db.Update(func(txn *bdb.Txn) error {
				return txn.Set(append(append(make([]byte, 0, len(fx.write)+len(k)), fx.write...), k...), fx.Value)
			})
			if err != nil {
				b.Fatal(err)
			}
		},
		Batch100Block: 5,
		Batch100: func(b *testing.B, i int) {
			err := db.Update(func(txn *bdb.Txn) error {
				for _, k := range fx.BatchKeys[fx.BatchIndex(i)] {
					if err := txn.Set(append(append(make([]byte, 0, len(fx.write)+len(k)), fx.write...), k...), fx.Value); err != nil {
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
			prefix := fx.prefixes[fx.PrefixIndex(i)]
			txn := db.NewTransaction(false)
			it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix})
			n, size := 0, 0
			for it.Seek(prefix); it.Valid(); it.Next() {
				item := it.Item()
				v, err := item.ValueCopy(vb[:0])
				if err != nil {
					b.Fatal(err)
				}
				vb = v
				size += len(item.Key()) - genLen + len(v)
				n++
			}
			it.Close()
			txn.Discard()
			storetest.CheckScan(b, n, size)
		},
	})
}

var sink []byte

// dispatchFixture is one database shared by every BenchmarkDispatch run of
// the process, so that direct and backend read the very same data.
type dispatchFixture struct {
	*storetest.DispatchLoad // Read (preloaded, never written afterwards), Write, Keys, …

	dir         string
	eng         *engine
	be          store.StorageBackend // store.New(eng): the interface value the server holds
	read, write []byte               // the generations of Read and Write, as stored
	prefixes    [][]byte             // the stored prefixes of Prefixes in Read
}

// fixture is the one dispatch fixture of the process.
var fixture storetest.Lazy[*dispatchFixture]

func dispatch(b *testing.B) *dispatchFixture { return fixture.Get(b, newDispatchFixture) }

func newDispatchFixture() (*dispatchFixture, error) {
	dir, err := os.MkdirTemp("", "kalamdb-badger-dispatch-")
	if err != nil {
		return nil, err
	}
	c := DefaultConfig()
	c.Path, c.SyncWrites = dir, false
	eng, err := openEngine(c)
	if err != nil {
		return nil, err
	}
	fx := &dispatchFixture{dir: dir, eng: eng, be: store.New(eng), DispatchLoad: storetest.NewDispatchLoad()}
	ctx := context.Background()
	if err := fx.Preload(ctx, fx.be); err != nil {
		return nil, err
	}
	read, _ := eng.parts.Get(fx.Read.Name())
	write, _ := eng.parts.Get(fx.Write.Name())
	fx.read, fx.write = genKey(read), genKey(write)
	for _, p := range fx.Prefixes {
		fx.prefixes = append(fx.prefixes, dataKey(read, p))
	}
	if err := fx.Warm(ctx, fx.be); err != nil {
		return nil, err
	}
	return fx, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fx, ok := fixture.Built(); ok {
		_ = fx.be.Close()
		_ = os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}
