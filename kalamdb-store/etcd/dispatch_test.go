package etcd

import (
	"context"
	"os"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// BenchmarkDispatch measures what the storage abstraction costs over
// calling etcd by hand with clientv3, on a one-member cluster of its own
// (data in /dev/shm where the system has it, so that fsync latency does
// not drown the difference), over the same client, keys and values:
//
//   - direct does the same useful work by hand: a transaction on this
//     package's keys (prefix/d/<id><key>) that compares the partition's
//     registry entry, so that the read or write is atomic with a drop of
//     the partition by any process. (On etcd 3.4 a transaction costs about
//     twice a plain Put or Get, compare or not: the price of checking the
//     partition at all, which the contract requires.)
//   - backend goes through a store.StorageBackend interface value: the
//     checks of store.New, then this package's engine, whose transactions
//     also read the registry entry in their failure branch;
//   - paired runs direct, backend and engine (store.Engine without
//     store.New) in turn in blocks and reports the medians of the
//     per-round ratios to direct (see storetest.RunDispatch).
//
// The operations, on 12-byte keys and 100-byte values:
//
//   - get: a point read of an existing key. direct: the etcd key built,
//     compare, range. backend: Get.
//   - put: a write of one key. direct: the etcd key built and the value
//     made a string (clientv3 takes strings), compare, put. backend: Put.
//   - batch64: one atomic write of 64 keys, the most a batch holds with
//     etcd's default --max-txn-ops. direct: 64 puts built so, compare.
//     backend: Batch of 64 store.Operations built before the timer
//     starts.
//   - scan100: a prefix scan of exactly 100 keys with their values, one
//     page. direct: compare, range. backend: Scan with
//     ScanOptions{Prefix}.
func BenchmarkDispatch(b *testing.B) {
	fx := dispatch(b)
	storetest.RunDispatch(b, fx.ops(), nil)
}

func (fx *dispatchFixture) ops() []storetest.DispatchOp {
	ctx := context.Background()
	c := fx.eng.client
	txn := func(b *testing.B, p store.Partition, id int64, ops ...clientv3.Op) *clientv3.TxnResponse {
		resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(fx.eng.l.entry(p.Name())), "=", id)).Then(ops...).Commit()
		if err != nil || !resp.Succeeded {
			b.Fatal("direct transaction: ", err)
		}
		return resp
	}
	get := func(s interface {
		Get(context.Context, store.Partition, []byte) ([]byte, error)
	}) func(*testing.B, int) {
		return func(b *testing.B, i int) {
			v, err := s.Get(ctx, fx.Read, fx.GetKey(i))
			if err != nil {
				b.Fatal(err)
			}
			sink = v
		}
	}
	put := func(s interface {
		Put(context.Context, store.Partition, []byte, []byte) error
	}) func(*testing.B, int) {
		return func(b *testing.B, i int) {
			if err := s.Put(ctx, fx.Write, fx.PutKey(i), fx.Value); err != nil {
				b.Fatal(err)
			}
		}
	}
	batch := func(s interface {
		Batch(context.Context, []store.Operation) error
	}) func(*testing.B, int) {
		return func(b *testing.B, i int) {
			if err := s.Batch(ctx, fx.batches[fx.BatchIndex(i)]); err != nil {
				b.Fatal(err)
			}
		}
	}
	scan := func(s interface {
		Scan(context.Context, store.Partition, store.ScanOptions) (store.Iterator, error)
	}) func(*testing.B, int) {
		return func(b *testing.B, i int) {
			it, err := s.Scan(ctx, fx.Read, store.ScanOptions{Prefix: fx.Prefixes[fx.PrefixIndex(i)]})
			storetest.DrainScan(b, it, err)
		}
	}
	direct := make([]clientv3.Op, fx.eng.caps.MaxBatchOps) // reused by batch64
	return []storetest.DispatchOp{
		{Name: "get", Block: 20, Backend: get(fx.be), Engine: get(fx.eng), Direct: func(b *testing.B, i int) {
			kvs := txn(b, fx.Read, fx.readID, clientv3.OpGet(fx.eng.l.key(fx.readID, fx.GetKey(i)))).Responses[0].GetResponseRange().Kvs
			if len(kvs) != 1 {
				b.Fatal("direct get: no key")
			}
			sink = kvs[0].Value
		}},
		{Name: "put", Block: 10, Backend: put(fx.be), Engine: put(fx.eng), Direct: func(b *testing.B, i int) {
			txn(b, fx.Write, fx.writeID, clientv3.OpPut(fx.eng.l.key(fx.writeID, fx.PutKey(i)), string(fx.Value)))
		}},
		{Name: "batch64", Block: 5, Backend: batch(fx.be), Engine: batch(fx.eng), Direct: func(b *testing.B, i int) {
			keys := fx.BatchKeys[fx.BatchIndex(i)][:len(direct)]
			for j, k := range keys {
				direct[j] = clientv3.OpPut(fx.eng.l.key(fx.writeID, k), string(fx.Value))
			}
			txn(b, fx.Write, fx.writeID, direct...)
		}},
		{Name: "scan100", Block: 10, Backend: scan(fx.be), Engine: scanEngine(fx), Direct: func(b *testing.B, i int) {
			j := fx.PrefixIndex(i)
			resp := txn(b, fx.Read, fx.readID, clientv3.OpGet(fx.lowers[j], clientv3.WithRange(fx.uppers[j]), clientv3.WithLimit(int64(fx.eng.chunk))))
			n, size := 0, 0
			for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
				size += len(kv.Key) - fx.eng.l.dataPrefixLen() + len(kv.Value)
				n++
			}
			storetest.CheckScan(b, n, size)
		}},
	}
}

func scanEngine(fx *dispatchFixture) func(*testing.B, int) {
	return func(b *testing.B, i int) {
		j := fx.PrefixIndex(i)
		it, err := fx.eng.Scan(context.Background(), fx.Read, store.Range{Lower: fx.Prefixes[j], Upper: fx.Ends[j]})
		storetest.DrainScan(b, it, err)
	}
}

var sink []byte

// dispatchFixture is one backend on a cluster of its own, used by every
// BenchmarkDispatch run of the process.
type dispatchFixture struct {
	*storetest.DispatchLoad // Read (preloaded, never written afterwards), Write, Keys, …

	cluster         *etcdtest.Cluster
	dir             string
	readID, writeID int64 // the partitions' ids
	eng             *engine
	be              store.StorageBackend // store.New(eng): the interface value the server holds

	batches        [][]store.Operation // the first MaxBatchOps operations of each of BatchOps
	lowers, uppers []string            // the etcd bounds of Prefixes in Read
}

// fixture is the one dispatch fixture of the process.
var fixture storetest.Lazy[*dispatchFixture]

func dispatch(b *testing.B) *dispatchFixture { return fixture.Get(b, newDispatchFixture) }

func newDispatchFixture() (*dispatchFixture, error) {
	dir, err := os.MkdirTemp(shmOrTemp(), "kalamdb-etcd-dispatch-")
	if err != nil {
		return nil, err
	}
	cl, err := etcdtest.Start(etcdtest.Options{Members: 1, Dir: dir})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	c := DefaultConfig()
	c.Endpoints, c.Prefix = cl.Endpoints(), "dispatch"
	eng, err := openEngine(ctx, c)
	if err != nil {
		_ = cl.Stop()
		return nil, err
	}
	fx := &dispatchFixture{cluster: cl, dir: dir, eng: eng, be: store.New(eng), DispatchLoad: storetest.NewDispatchLoad()}
	if err := fx.Preload(ctx, fx.be); err != nil {
		return nil, err
	}
	readID, _, err := eng.id(ctx, fx.Read.Name())
	if err != nil {
		return nil, err
	}
	writeID, _, err := eng.id(ctx, fx.Write.Name())
	if err != nil {
		return nil, err
	}
	fx.readID, fx.writeID = readID, writeID
	n := eng.caps.MaxBatchOps
	for _, ops := range fx.BatchOps {
		fx.batches = append(fx.batches, ops[:n])
	}
	for j, prefix := range fx.Prefixes {
		lo, hi := eng.l.span(readID, store.Range{Lower: prefix, Upper: fx.Ends[j]})
		fx.lowers, fx.uppers = append(fx.lowers, lo), append(fx.uppers, hi)
	}
	return fx, fx.Warm(ctx, fx.be)
}

func shmOrTemp() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (fx *dispatchFixture) close() {
	_ = fx.be.Close()
	_ = fx.cluster.Stop()
	_ = os.RemoveAll(fx.dir)
}
