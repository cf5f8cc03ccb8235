package storetest

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// DispatchOp is one operation of a backend's BenchmarkDispatch, the
// ADR-003 measurement of what the storage abstraction costs over calling the
// engine by hand: the same useful work done three ways. i numbers the call,
// so that the functions can vary their keys.
type DispatchOp struct {
	// Name is the sub-benchmark prefix: "get", "put", "batch100", "scan100".
	Name string
	// Block is how many calls make one timed block of the paired run.
	Block int
	// Direct calls the engine's own client by hand.
	Direct func(b *testing.B, i int)
	// Backend does the same through a store.StorageBackend interface value
	// (store.New around the backend's engine), as the server holds it.
	Backend func(b *testing.B, i int)
	// Engine does the same through the backend's store.Engine alone,
	// without store.New's checks, to split the overhead.
	Engine func(b *testing.B, i int)
}

// RunDispatch runs, for each op, the sub-benchmarks <op>/direct and
// <op>/backend (ns/op, allocations and the process's CPU time per op as
// cpu-ns/op) and <op>/paired (see below). settle, when not nil, runs before
// each sub-benchmark, to let the engine finish background work.
//
// <op>/paired runs b.N rounds of three timed blocks of op.Block calls each,
// direct, engine and backend, in each of the six orders in turn, so that
// every side follows every other equally often (a side pays for what the one
// before it left behind: garbage to collect, a memtable to flush). It
// reports the medians of the rounds' ratios to direct, of wall time
// ("backend/direct", "engine/direct") and of the calling thread's CPU time
// ("cpu-backend/direct", "cpu-engine/direct"; Linux only), and each side's
// mean wall time per call. Load from other programs moves the three sides of
// a round alike, so these ratios hold steady on a busy machine where the
// separate runs' ns/op do not. tools/benchratio prints them as a table.
func RunDispatch(b *testing.B, ops []DispatchOp, settle func(b *testing.B)) {
	if settle == nil {
		settle = func(*testing.B) {}
	}
	for _, op := range ops {
		b.Run(op.Name+"/direct", func(b *testing.B) {
			settle(b)
			runSide(b, op.Direct)
		})
		b.Run(op.Name+"/backend", func(b *testing.B) {
			settle(b)
			runSide(b, op.Backend)
		})
		b.Run(op.Name+"/paired", func(b *testing.B) {
			settle(b)
			paired(b, op)
		})
	}
}

func runSide(b *testing.B, side func(*testing.B, int)) {
	b.ReportAllocs()
	start := processCPU()
	n := 0
	for i := 0; b.Loop(); i++ {
		side(b, i)
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(n), "cpu-ns/op")
	}
}

// orders are the six orders of the three sides of a paired round.
var orders = [6][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}

func paired(b *testing.B, op DispatchOp) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sides := []func(*testing.B, int){op.Direct, op.Engine, op.Backend}
	var wall, cpu [3][]float64 // per side: ratios to direct (index 0 unused)
	var total [3]time.Duration
	b.ResetTimer()
	for r := 0; r < b.N; r++ {
		first := r * op.Block
		var w, c [3]time.Duration
		for _, s := range orders[r%len(orders)] {
			c0, w0 := threadCPU(), time.Now()
			for i := first; i < first+op.Block; i++ {
				sides[s](b, i)
			}
			w[s], c[s] = time.Since(w0), threadCPU()-c0
		}
		for s := 1; s < 3; s++ {
			wall[s] = append(wall[s], float64(w[s])/float64(w[0]))
			if c[0] > 0 && c[s] > 0 {
				cpu[s] = append(cpu[s], float64(c[s])/float64(c[0]))
			}
		}
		for s := range total {
			total[s] += w[s]
		}
	}
	b.StopTimer()
	for s, name := range []string{"", "engine", "backend"} {
		if s == 0 {
			continue
		}
		b.ReportMetric(median(wall[s]), name+"/direct")
		if len(cpu[s]) == b.N {
			b.ReportMetric(median(cpu[s]), "cpu-"+name+"/direct")
		}
	}
	calls := float64(b.N * op.Block)
	for s, name := range []string{"direct", "engine", "backend"} {
		b.ReportMetric(float64(total[s])/calls, name+"-ns/op")
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// The workload of every backend's BenchmarkDispatch.
const (
	// DispatchKeys is how many keys DispatchLoad preloads.
	DispatchKeys = 10000
	// DispatchKeyLen is the length of every key: "row/" and 8 digits.
	DispatchKeyLen = len("row/00000000")
	// DispatchValueLen is the length of every value.
	DispatchValueLen = 100
)

// DispatchLoad is the data every backend's BenchmarkDispatch works on, so
// that the backends' figures describe the same work: gets of preloaded keys,
// puts and batches of 100 into another partition, and scans of 100-key
// prefixes.
type DispatchLoad struct {
	Read  store.Partition // preloaded with Keys, never written afterwards
	Write store.Partition // target of put and batch100

	Keys      [][]byte            // row/00000000 … row/00009999
	Value     []byte              // DispatchValueLen bytes
	BatchKeys [][][]byte          // 100 batches of 100 keys
	BatchOps  [][]store.Operation // the same batches as puts into Write
	Prefixes  [][]byte            // 100 prefixes of 100 keys each: row/000iii
	Ends      [][]byte            // their successors
}

// NewDispatchLoad builds the workload; Preload writes it into a backend.
func NewDispatchLoad() *DispatchLoad {
	l := &DispatchLoad{
		Read:  store.MustPartition("read"),
		Write: store.MustPartition("write"),
		Value: make([]byte, DispatchValueLen),
	}
	for i := range l.Value {
		l.Value[i] = byte(i)
	}
	for i := 0; i < DispatchKeys; i++ {
		l.Keys = append(l.Keys, []byte(fmt.Sprintf("row/%08d", i)))
	}
	for i := 0; i < DispatchKeys/100; i++ {
		keys := l.Keys[i*100 : (i+1)*100]
		l.BatchKeys = append(l.BatchKeys, keys)
		ops := make([]store.Operation, len(keys))
		for j, k := range keys {
			ops[j] = store.PutOp(l.Write, k, l.Value)
		}
		l.BatchOps = append(l.BatchOps, ops)
		prefix := []byte(fmt.Sprintf("row/000%03d", i)) // row/000iii00 to row/000iii99
		l.Prefixes = append(l.Prefixes, prefix)
		l.Ends = append(l.Ends, store.PrefixSuccessor(prefix))
	}
	return l
}

// Preload creates Read and Write in be and writes every key into Read, in
// one batch or, on a backend with batch limits, in as few as they allow.
func (l *DispatchLoad) Preload(ctx context.Context, be store.StorageBackend) error {
	for _, p := range []store.Partition{l.Read, l.Write} {
		if err := be.CreatePartition(ctx, p); err != nil {
			return err
		}
	}
	ops := make([]store.Operation, 0, len(l.Keys))
	for _, k := range l.Keys {
		ops = append(ops, store.PutOp(l.Read, k, l.Value))
	}
	for _, batch := range be.Capabilities().Split(ops) {
		if err := be.Batch(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// CheckScan fails b unless a scan of one prefix read n = 100 keys and
// size bytes of keys and values.
func CheckScan(b *testing.B, n, size int) {
	if n != 100 || size != 100*(DispatchKeyLen+DispatchValueLen) {
		b.Fatalf("scan read %d keys, %d bytes", n, size)
	}
}

// DrainScan reads the iterator a Scan returned (with its error) to the end,
// closes it and checks it with CheckScan.
func DrainScan(b *testing.B, it store.Iterator, err error) {
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
	CheckScan(b, n, size)
}

// Warm reads every key of Read once through be, so that the first timed
// gets find what the engine caches.
func (l *DispatchLoad) Warm(ctx context.Context, be store.StorageBackend) error {
	for _, k := range l.Keys {
		if _, err := be.Get(ctx, l.Read, k); err != nil {
			return err
		}
	}
	return nil
}

// Lazy is a value built on first use and kept for the rest of the process:
// a backend's dispatch fixture, which every sub-benchmark of its
// BenchmarkDispatch shares so that direct and backend work on the very same
// data. The zero Lazy is ready to use.
type Lazy[T any] struct {
	once  sync.Once
	v     T
	err   error
	built bool
}

// Get returns the value, building it with build on the first call; it
// fails b if building failed.
func (l *Lazy[T]) Get(b testing.TB, build func() (T, error)) T {
	l.once.Do(func() {
		l.v, l.err = build()
		l.built = l.err == nil
	})
	if l.err != nil {
		b.Fatal(l.err)
	}
	return l.v
}

// Built returns the value if a Get built it, for TestMain to release it.
func (l *Lazy[T]) Built() (T, bool) { return l.v, l.built }

// GetKey is the preloaded key that call i of get reads.
func (l *DispatchLoad) GetKey(i int) []byte { return l.Keys[(i*7919)%len(l.Keys)] }

// PutKey is the key that call i of put writes into Write.
func (l *DispatchLoad) PutKey(i int) []byte { return l.Keys[i%len(l.Keys)] }

// BatchIndex is the index, in BatchKeys and BatchOps, of call i of batch100.
func (l *DispatchLoad) BatchIndex(i int) int { return i % len(l.BatchOps) }

// PrefixIndex is the index, in Prefixes and Ends, of call i of scan100.
func (l *DispatchLoad) PrefixIndex(i int) int { return (i * 37) % len(l.Prefixes) }

// Direct is a backend's own side of the dispatch benchmark: the four
// operations done by hand with the engine's client, on the keys that
// DispatchLoad's GetKey, PutKey, BatchIndex and PrefixIndex choose for call
// i, and how many calls make one paired block of each (a block should take
// about a millisecond).
type Direct struct {
	Get, Put, Batch100, Scan100                  func(b *testing.B, i int)
	GetBlock, PutBlock, Batch100Block, ScanBlock int
}

var dispatchSink []byte

// pointOps is what StorageBackend and Engine share for get, put and batch,
// so both sides run the same closure through one interface call each.
type pointOps interface {
	Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error)
	Put(ctx context.Context, p store.Partition, key, value []byte) error
	Batch(ctx context.Context, ops []store.Operation) error
}

// Ops returns the four DispatchOps of a backend: d's hand-written calls
// against the same work through be (the wrapped backend, as the server holds
// it) and through eng (the backend's engine without the wrapper).
func (l *DispatchLoad) Ops(be store.StorageBackend, eng store.Engine, d Direct) []DispatchOp {
	ctx := context.Background()
	get := func(s pointOps) func(*testing.B, int) {
		return func(b *testing.B, i int) {
			v, err := s.Get(ctx, l.Read, l.GetKey(i))
			if err != nil {
				b.Fatal(err)
			}
			dispatchSink = v
		}
	}
	put := func(s pointOps) func(*testing.B, int) {
		return func(b *testing.B, i int) {
			if err := s.Put(ctx, l.Write, l.PutKey(i), l.Value); err != nil {
				b.Fatal(err)
			}
		}
	}
	batch := func(s pointOps) func(*testing.B, int) {
		return func(b *testing.B, i int) {
			if err := s.Batch(ctx, l.BatchOps[l.BatchIndex(i)]); err != nil {
				b.Fatal(err)
			}
		}
	}
	return []DispatchOp{
		{Name: "get", Block: d.GetBlock, Direct: d.Get, Backend: get(be), Engine: get(eng)},
		{Name: "put", Block: d.PutBlock, Direct: d.Put, Backend: put(be), Engine: put(eng)},
		{Name: "batch100", Block: d.Batch100Block, Direct: d.Batch100, Backend: batch(be), Engine: batch(eng)},
		{Name: "scan100", Block: d.ScanBlock, Direct: d.Scan100,
			Backend: func(b *testing.B, i int) {
				it, err := be.Scan(ctx, l.Read, store.ScanOptions{Prefix: l.Prefixes[l.PrefixIndex(i)]})
				DrainScan(b, it, err)
			},
			Engine: func(b *testing.B, i int) {
				j := l.PrefixIndex(i)
				it, err := eng.Scan(ctx, l.Read, store.Range{Lower: l.Prefixes[j], Upper: l.Ends[j]})
				DrainScan(b, it, err)
			},
		},
	}
}
