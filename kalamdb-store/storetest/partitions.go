package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// PartitionCounts are the numbers of partitions BenchCreatePartitions and
// BenchCreateStall measure at.
var PartitionCounts = []int{100, 1000, 10000}

// benchPartition is the i-th partition the partition benchmarks create.
func benchPartition(i int) store.Partition {
	return store.MustPartition(fmt.Sprintf("table-%06d", i))
}

// BenchCreatePartitions measures how fast partitions are created as they
// multiply. For each n of PartitionCounts, the sub-benchmark "n=<n>" opens
// a fresh backend and creates n partitions one after another (one op is the
// whole series, so run it with -benchtime 1x). It reports
//
//   - creates/s: n divided by the time of the whole series;
//   - tail-creates/s: the rate over the last tenth of the series, that is
//     with about n partitions already there;
//   - max-create-ms: the slowest single CreatePartition of the series.
//
// A backend whose creates cost O(1) shows the same rates at every n; one
// whose creates cost O(n) shows tail-creates/s falling with n.
func BenchCreatePartitions(b *testing.B, h Harness) {
	ctx := context.Background()
	for _, n := range PartitionCounts {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				be, _ := h.New(b)
				b.StartTimer()
				tail := n - n/10
				var tailStart time.Time
				var slowest time.Duration
				start := time.Now()
				for i := 0; i < n; i++ {
					if i == tail {
						tailStart = time.Now()
					}
					t0 := time.Now()
					if err := be.CreatePartition(ctx, benchPartition(i)); err != nil {
						b.Fatal(err)
					}
					slowest = max(slowest, time.Since(t0))
				}
				end := time.Now()
				b.StopTimer()
				b.ReportMetric(float64(n)/end.Sub(start).Seconds(), "creates/s")
				b.ReportMetric(float64(n-tail)/end.Sub(tailStart).Seconds(), "tail-creates/s")
				b.ReportMetric(float64(slowest.Microseconds())/1000, "max-create-ms")
				if err := be.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// StallCreates is how many partitions BenchCreateStall creates while its
// writer runs.
const StallCreates = 200

// BenchCreateStall measures what partition creates cost the writers of
// other partitions. For each n of PartitionCounts, the sub-benchmark
// "n=<n>" opens a fresh backend, creates n partitions and one more, "busy",
// then runs a writer that puts 100-byte values into "busy" in a loop, first
// alone for as many puts as it then makes during the creates (at least
// 2,000), then while StallCreates more partitions are created. It reports
// the writer's put latencies: quiet-p99-us and quiet-max-us alone,
// p50-us, p99-us and max-us during the creates, and create-ms, the mean
// CreatePartition time meanwhile. One op is the whole measurement: run it
// with -benchtime 1x.
func BenchCreateStall(b *testing.B, h Harness) {
	ctx := context.Background()
	for _, n := range PartitionCounts {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				be, _ := h.New(b)
				for i := 0; i < n; i++ {
					if err := be.CreatePartition(ctx, benchPartition(i)); err != nil {
						b.Fatal(err)
					}
				}
				busy := store.MustPartition("busy")
				if err := be.CreatePartition(ctx, busy); err != nil {
					b.Fatal(err)
				}
				val := make([]byte, BenchValueSize)
				var putErr atomic.Pointer[error]
				put := func(i int) time.Duration {
					t0 := time.Now()
					if err := be.Put(ctx, busy, BenchKey(i%BenchKeys), val); err != nil {
						putErr.CompareAndSwap(nil, &err)
					}
					return time.Since(t0)
				}

				// The writer during the creates.
				var stop atomic.Bool
				var during []time.Duration
				var wg sync.WaitGroup
				wg.Add(1)
				b.StartTimer()
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load() || len(during) < 2000; i++ {
						during = append(during, put(i))
					}
				}()
				start := time.Now()
				for i := 0; i < StallCreates; i++ {
					if err := be.CreatePartition(ctx, benchPartition(n+i)); err != nil {
						b.Fatal(err)
					}
				}
				creates := time.Since(start)
				stop.Store(true)
				wg.Wait()
				b.StopTimer()
				if err := putErr.Load(); err != nil {
					b.Fatal(*err)
				}

				// The same number of puts with nothing else going on.
				quiet := make([]time.Duration, len(during))
				for i := range quiet {
					quiet[i] = put(i)
				}
				q, d := percentiles(quiet), percentiles(during)
				b.ReportMetric(q.p99, "quiet-p99-us")
				b.ReportMetric(q.max, "quiet-max-us")
				b.ReportMetric(d.p50, "p50-us")
				b.ReportMetric(d.p99, "p99-us")
				b.ReportMetric(d.max, "max-us")
				b.ReportMetric(float64(creates.Microseconds())/1000/StallCreates, "create-ms")
				if err := be.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

type latencies struct{ p50, p99, max float64 }

// percentiles returns the median, 99th percentile and maximum of d, in
// microseconds.
func percentiles(d []time.Duration) latencies {
	s := slices.Clone(d)
	slices.Sort(s)
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1000 }
	return latencies{p50: us(s[len(s)/2]), p99: us(s[len(s)*99/100]), max: us(s[len(s)-1])}
}
