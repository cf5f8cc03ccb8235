package redis

import (
	"context"
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
	return fx.Ops(fx.be, fx.eng, storetest.Direct{
		GetBlock: 30,
		Get: func(b *testing.B, i int) {
			v, err := c.HGet(ctx, fx.readHash, string(fx.GetKey(i))).Bytes()
			if err != nil {
				b.Fatal(err)
			}
			sink = v
		},
		PutBlock: 30,
		Put: func(b *testing.B, i int) {
			k := fx.PutKey(i)
			_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.ZAdd(ctx, fx.writeZset, goredis.Z{Member: k})
				p.HSet(ctx, fx.writeHash, k, fx.Value)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		},
		Batch100Block: 3,
		Batch100: func(b *testing.B, i int) {
			keys := fx.BatchKeys[fx.BatchIndex(i)]
			_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				for _, k := range keys {
					p.ZAdd(ctx, fx.writeZset, goredis.Z{Member: k})
					p.HSet(ctx, fx.writeHash, k, fx.Value)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		},
		ScanBlock: 8,
		Scan100: func(b *testing.B, i int) {
			j := fx.PrefixIndex(i)
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
			storetest.CheckScan(b, n, size)
		},
	})
}

var sink []byte

// dispatchFixture is one backend on the shared server, used by every
// BenchmarkDispatch run of the process.
type dispatchFixture struct {
	*storetest.DispatchLoad // Read (preloaded, never written afterwards), Write, Keys, …

	eng *engine
	be  store.StorageBackend // store.New(eng): the interface value the server holds

	readZset, readHash, writeZset, writeHash string

	lexMin []string // "[prefix"
	lexMax []string // "(successor"
}

// fixture is the one dispatch fixture of the process.
var fixture storetest.Lazy[*dispatchFixture]

func dispatch(b *testing.B) *dispatchFixture { return fixture.Get(b, newDispatchFixture) }

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
		DispatchLoad: storetest.NewDispatchLoad(),
	}
	fx.readZset, fx.readHash = eng.partKeys("read")
	fx.writeZset, fx.writeHash = eng.partKeys("write")
	if err := fx.Preload(ctx, fx.be); err != nil {
		return nil, err
	}
	for i := 0; i < storetest.DispatchKeys/100; i++ {
		prefix := fx.Prefixes[i]
		fx.lexMin = append(fx.lexMin, "["+string(prefix))
		fx.lexMax = append(fx.lexMax, "("+string(store.PrefixSuccessor(prefix)))
	}
	return fx, nil
}
