package storetest

import (
	"runtime"
	"sort"
	"testing"
	"time"
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
