package redis

import (
	"context"
	"fmt"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// BenchmarkRedis runs the cross-backend benchmarks of storetest.Bench over
// loopback TCP: "volatile" on a server without persistence, "aof" on one
// with appendonly yes and appendfsync everysec (the usual production
// setting).
func BenchmarkRedis(b *testing.B) {
	b.Run("volatile", func(b *testing.B) {
		storetest.Bench(b, harness("redis", sharedAddr, 0))
	})
	b.Run("aof", func(b *testing.B) {
		srv := redistest.StartT(b, redistest.Options{Persistent: true, Extra: []string{"--appendfsync", "everysec"}})
		storetest.Bench(b, harness("redis-aof", func() string { return srv.Addr }, 0))
	})
}

// BenchmarkDispatch measures what the storage abstraction costs over
// calling Redis by hand with go-redis. Each <op> has sub-benchmarks on the
// same server, over the same keys and values:
//
//   - direct does the same useful work the way a program without the
//     abstraction would, with the same client options (RESP2, no retries);
//   - backend goes through a store.StorageBackend interface value: the
//     checks of store.New, then this package's engine and its scripts;
//   - paired runs direct, backend and engine (this package's store.Engine
//     without store.New) in turn in blocks of about a millisecond and
//     reports the medians of the per-round ratios to direct (see storetest.RunDispatch).
//     Load from other programs moves the sides of a round alike, so these
//     ratios hold steady on a busy machine where separate runs' ns/op do
//     not; engine/direct against backend/direct splits the overhead between
//     this package and store.New. The cpu- ratios count the client's CPU
//     time only: the server's work and the network are not in them.
//
// The operations, on 12-byte keys and 100-byte values:
//
//   - get: a point read of an existing key. direct: HGET on the values
//     hash. backend: Get (the same HGET).
//   - put: a write that keeps the key ordered. direct: MULTI, ZADD, HSET,
//     EXEC in one round trip. backend: Put (one script that also checks the
//     partition and the key types).
//   - batch100: one atomic write of 100 keys. direct: MULTI, 100 × (ZADD,
//     HSET), EXEC. backend: Batch of 100 store.Operations built before the
//     timer starts (one script).
//   - scan100: a prefix scan of exactly 100 keys with their values. direct:
//     ZRANGEBYLEX with the prefix bounds and LIMIT 0 100, then HMGET of the
//     keys: two round trips. backend: Scan with ScanOptions{Prefix}: two
//     round trips, each a pipeline that also reads the partition's generation
//     twice, and a copy of the keys and values into one buffer.
func BenchmarkDispatch(b *testing.B) {
	fx := dispatch(b)
	storetest.RunDispatch(b, fx.ops(), nil)
}

func (fx *dispatchFixture) ops() []storetest.DispatchOp {
	ctx := context.Background()
	c := fx.eng.client
	var be store.StorageBackend = fx.be
	var eng store.Engine = fx.eng
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
		Name: "get", Block: 30,
		Direct: func(b *testing.B, i int) {
			v, err := c.HGet(ctx, fx.readHash, string(fx.keys[(i*7919)%dispatchKeys])).Bytes()
			if err != nil {
				b.Fatal(err)
			}
			sink = v
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
		Name: "put", Block: 30,
		Direct: func(b *testing.B, i int) {
			k := fx.keys[i%dispatchKeys]
			_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.ZAdd(ctx, fx.writeZset, goredis.Z{Member: k})
				p.HSet(ctx, fx.writeHash, k, fx.val)
				return nil
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
		Name: "batch100", Block: 3,
		Direct: func(b *testing.B, i int) {
			keys := fx.batchKeys[i%len(fx.batchKeys)]
			_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				for _, k := range keys {
					p.ZAdd(ctx, fx.writeZset, goredis.Z{Member: k})
					p.HSet(ctx, fx.writeHash, k, fx.val)
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
		Name: "scan100", Block: 8,
		Direct: func(b *testing.B, i int) {
			j := (i * 37) % len(fx.prefixes)
			keys, err := c.ZRangeByLex(ctx, fx.readZset, &goredis.ZRangeBy{
				Min: fx.lexMin[j], Max: fx.lexMax[j], Count: 100,
			}).Result()
			if err != nil {
				b.Fatal(err)
			}
			vals, err := c.HMGet(ctx, fx.readHash, keys...).Result()
			if err != nil {
				b.Fatal(err)
			}
			n, size := 0, 0
			for k, key := range keys {
				v, _ := vals[k].(string)
				size += len(key) + len(v)
				n++
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
			it, err := eng.Scan(ctx, fx.read, store.Range{Lower: fx.prefixes[j], Upper: fx.uppers[j]})
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

// dispatchFixture is one backend on the shared server, used by every
// BenchmarkDispatch run of the process.
type dispatchFixture struct {
	eng   *engine
	be    store.StorageBackend // store.New(eng): the interface value the server holds
	read  store.Partition      // preloaded, never written afterwards
	write store.Partition      // target of put and batch100

	readZset, readHash, writeZset, writeHash string

	keys      [][]byte
	val       []byte
	batchKeys [][][]byte          // 100 batches of 100 keys
	batchOps  [][]store.Operation // the same batches as operations
	prefixes  [][]byte            // 100 prefixes of 100 keys each
	uppers    [][]byte            // their successors
	lexMin    []string            // "[prefix"
	lexMax    []string            // "(successor"
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
	ctx := context.Background()
	c := DefaultConfig()
	c.Addr = shared.Addr
	c.KeyPrefix = freshPrefix()
	eng, err := openEngine(ctx, c)
	if err != nil {
		return nil, err
	}
	fx := &dispatchFixture{
		eng: eng, be: store.New(eng),
		read: store.MustPartition("read"), write: store.MustPartition("write"),
		val: make([]byte, dispatchValueLen),
	}
	fx.readZset, fx.readHash = eng.partKeys("read")
	fx.writeZset, fx.writeHash = eng.partKeys("write")
	for i := range fx.val {
		fx.val[i] = byte(i)
	}
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
		fx.uppers = append(fx.uppers, store.PrefixSuccessor(prefix))
		fx.lexMin = append(fx.lexMin, "["+string(prefix))
		fx.lexMax = append(fx.lexMax, "("+string(store.PrefixSuccessor(prefix)))
	}
	return fx, nil
}
