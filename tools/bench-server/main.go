// Command bench-server measures kalamdb-server over loopback HTTP: it starts
// the real binary on the RocksDB backend with a temporary configuration,
// creates a user table, and measures
//
//   - single-row insert and primary-key lookup latency at concurrency 1
//     (mean, p50, p99);
//   - throughput at 8 concurrent clients for single-row inserts, lookups and
//     50-row bulk inserts (rows/s);
//
// each beside the same measurement of a trivial net/http JSON handler (the
// floor any HTTP server on this machine stands on), run as a separate
// process over loopback like the server, in the same run, as a ratio. Every measurement is repeated -count
// times; the table shows medians, and -out writes every run in Go benchmark
// format for benchstat.
//
// With -topology servers it measures instead several servers on one
// database, with the flush off as docs/deploy.md prescribes: 1, 2 and 3
// servers on one three-member etcd cluster and on one redis-server (started
// by the etcdtest and redistest packages on free loopback ports, data in
// temporary directories), beside one server on RocksDB. Requests go to the
// servers in turn. It reports insert and lookup p50/p99 at concurrency 1,
// requests/s at -clients, and where an insert's time goes: the storage
// operations the servers counted (kalamdb_storage_operations_total) and the
// requests the backend served (etcd's grpc_server_handled_total over its
// members, Redis's total_commands_processed) per insert and per lookup,
// read before and after each measurement.
//
// Usage:
//
//	go run ./tools/bench-server -binary bin/kalamdb-server [-duration 2s] [-count 5] [-out bench.txt]
//	go run ./tools/bench-server -binary bin/kalamdb-server -topology servers [-duration 1s] [-count 3]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kalamdb/kalamdb-go/tools/internal/serverproc"
)

const token = "bench-admin-token-0123456789abcdef"

func main() {
	binary := flag.String("binary", "bin/kalamdb-server", "kalamdb-server binary to start")
	duration := flag.Duration("duration", 2*time.Second, "length of each measurement")
	count := flag.Int("count", 5, "repetitions of each measurement")
	clients := flag.Int("clients", 8, "concurrent clients of the throughput measurements")
	bulk := flag.Int("bulk", 50, "rows per bulk insert")
	out := flag.String("out", "", "also write every run in Go benchmark format to this file")
	syncWrites := flag.Bool("sync-writes", false, "run RocksDB with sync_writes = true (fsync per write)")
	serveFloor := flag.Bool("serve-floor", false, "internal: serve the net/http floor handler and print its address")
	topo := flag.String("topology", "single", "single: one server on RocksDB beside the net/http floor; servers: 1, 2 and 3 servers on one etcd cluster and on one Redis, beside one on RocksDB")
	flag.Parse()
	if *serveFloor {
		if err := runFloor(); err != nil {
			fmt.Fprintln(os.Stderr, "bench-server floor:", err)
			os.Exit(1)
		}
		return
	}
	var err error
	switch *topo {
	case "single":
		err = run(*binary, *duration, *count, *clients, *bulk, *out, *syncWrites)
	case "servers":
		err = runServers(*binary, *duration, *count, *clients, *out)
	default:
		err = fmt.Errorf("-topology %q: want single or servers", *topo)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-server:", err)
		os.Exit(1)
	}
}

// result is one run of one measurement.
type result struct {
	ops     int // requests
	rows    int // rows moved
	elapsed time.Duration
	lat     []time.Duration // per request, concurrency-1 runs only
}

func (r result) rowsPerSec() float64 { return float64(r.rows) / r.elapsed.Seconds() }
func (r result) reqPerSec() float64  { return float64(r.ops) / r.elapsed.Seconds() }

func (r result) percentile(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func (r result) mean() time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range r.lat {
		sum += d
	}
	return sum / time.Duration(len(r.lat))
}

func run(binary string, duration time.Duration, count, clients, bulk int, out string, syncWrites bool) error {
	dir, err := os.MkdirTemp("", "kalamdb-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	base, stop, err := startServer(binary, dir, syncWrites)
	if err != nil {
		return err
	}
	defer stop()

	floor, floorStop, err := startFloor()
	if err != nil {
		return err
	}
	defer floorStop()

	c := newClient(clients * 2)
	if err := setup(c, base); err != nil {
		return err
	}

	w := &workload{base: func() string { return base }, warm: warmRows}
	insertOne := func(c *client) (int, error) { return w.insert(c, 1) }
	insertBulk := func(c *client) (int, error) { return w.insert(c, bulk) }
	lookup := w.lookup
	floorCall := func(c *client) (int, error) {
		return 1, c.do("POST", floor+"/echo", `{"rows":[{"id":1,"body":"message"}]}`, http.StatusOK)
	}

	// Warm up: the rows the lookups read, and the connections.
	fmt.Fprintf(os.Stderr, "warming up (%d rows)…\n", warmRows)
	for range warmRows / bulk {
		if _, err := insertBulk(c); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	if w.nextID.Load() < warmRows {
		return errors.New("warm-up wrote too few rows")
	}

	ms := []measurement{
		{"floor/c1", 1, floorCall},
		{"insert/c1", 1, insertOne},
		{"lookup/c1", 1, lookup},
		{"floor/c8", clients, floorCall},
		{"insert/c8", clients, insertOne},
		{"lookup/c8", clients, lookup},
		{"bulk50/c8", clients, insertBulk},
	}
	results := map[string][]result{}
	var bench bytes.Buffer
	fmt.Fprintf(&bench, "goos: %s\ngoarch: %s\npkg: kalamdb-server/loopback\ncpu: %d logical CPUs\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	for i := 0; i < count; i++ {
		for _, m := range ms {
			r, err := measure(c, m.clients, duration, m.fn)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results[m.name] = append(results[m.name], r)
			nsPerReq := float64(r.elapsed.Nanoseconds()) / float64(r.ops)
			fmt.Fprintf(&bench, "BenchmarkServer/%s\t%d\t%.0f ns/op\t%.0f rows/s\n", m.name, r.ops, nsPerReq, r.rowsPerSec())
			fmt.Fprintf(os.Stderr, "run %d/%d %-10s %8.0f req/s %9.0f rows/s\n", i+1, count, m.name, r.reqPerSec(), r.rowsPerSec())
		}
	}
	if out != "" {
		if err := os.WriteFile(out, bench.Bytes(), 0o644); err != nil {
			return err
		}
	}
	report(results, clients, bulk, duration, count, syncWrites)
	return nil
}

const warmRows = 20000

// measurement is one thing measured: fn run by clients goroutines.
type measurement struct {
	name    string
	clients int
	fn      func(*client) (int, error)
}

// measure runs fn from n goroutines for d and returns what they did.
func measure(c *client, n int, d time.Duration, fn func(*client) (int, error)) (result, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total result
		first error
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local result
			for time.Now().Before(deadline) {
				t0 := time.Now()
				rows, err := fn(c)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if n == 1 {
					local.lat = append(local.lat, time.Since(t0))
				}
				local.ops++
				local.rows += rows
			}
			mu.Lock()
			total.ops += local.ops
			total.rows += local.rows
			total.lat = append(total.lat, local.lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	return total, first
}

func median(rs []result, f func(result) float64) float64 {
	vals := make([]float64, len(rs))
	for i, r := range rs {
		vals[i] = f(r)
	}
	slices.Sort(vals)
	return vals[len(vals)/2]
}

func us(d float64) string { return fmt.Sprintf("%.0f µs", d/1e3) }

func report(results map[string][]result, clients, bulk int, duration time.Duration, count int, syncWrites bool) {
	fmt.Printf("\nkalamdb-server over loopback, RocksDB backend (sync_writes = %v), %d CPUs, %d runs of %s each; medians.\n\n", syncWrites, runtime.NumCPU(), count, duration)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tkalamdb-server\tnet/http floor\tserver/floor")

	lat := func(name string, f func(result) time.Duration) float64 {
		return median(results[name], func(r result) float64 { return float64(f(r)) })
	}
	for _, row := range []struct {
		label, name string
		f           func(result) time.Duration
	}{
		{"insert 1 row, c=1, mean", "insert/c1", result.mean},
		{"insert 1 row, c=1, p50", "insert/c1", func(r result) time.Duration { return r.percentile(.5) }},
		{"insert 1 row, c=1, p99", "insert/c1", func(r result) time.Duration { return r.percentile(.99) }},
		{"lookup by key, c=1, mean", "lookup/c1", result.mean},
		{"lookup by key, c=1, p50", "lookup/c1", func(r result) time.Duration { return r.percentile(.5) }},
		{"lookup by key, c=1, p99", "lookup/c1", func(r result) time.Duration { return r.percentile(.99) }},
	} {
		s := lat(row.name, row.f)
		fl := lat("floor/c1", row.f)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\n", row.label, us(s), us(fl), s/fl)
	}
	floorRate := median(results["floor/c8"], result.reqPerSec)
	for _, row := range []struct{ label, name string }{
		{fmt.Sprintf("insert 1 row, c=%d", clients), "insert/c8"},
		{fmt.Sprintf("lookup by key, c=%d", clients), "lookup/c8"},
		{fmt.Sprintf("insert %d rows, c=%d", bulk, clients), "bulk50/c8"},
	} {
		rows := median(results[row.name], result.rowsPerSec)
		reqs := median(results[row.name], result.reqPerSec)
		fmt.Fprintf(tw, "%s\t%.0f rows/s (%.0f req/s)\t%.0f req/s\t%.2f (req/s)\n", row.label, rows, reqs, floorRate, reqs/floorRate)
	}
	_ = tw.Flush()
}

// workload makes the requests of the measurements on the table setup
// creates: inserts of new rows with ascending ids, and lookups of the rows
// the warm-up wrote.
type workload struct {
	base      func() string // the base URL of the next request
	warm      int64         // lookups read ids 1..warm
	nextID    atomic.Int64  // the last id inserted
	lookupSeq atomic.Int64
}

// insert inserts n new rows in one request.
func (w *workload) insert(c *client, n int) (int, error) {
	var b strings.Builder
	b.WriteString(`{"rows":[`)
	for i := 0; i < n; i++ {
		id := w.nextID.Add(1)
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"body":"message number %d, some text of a usual size","at":"2026-01-02T03:04:05Z"}`, id, id)
	}
	b.WriteString(`]}`)
	return n, c.do("POST", w.base()+"/v1/namespaces/bench/tables/messages/rows", b.String(), http.StatusCreated)
}

// lookup reads one row by primary key. Only ids the warm-up wrote are
// read, so every lookup hits.
func (w *workload) lookup(c *client) (int, error) {
	id := w.lookupSeq.Add(7919)%w.warm + 1
	return 1, c.do("GET", fmt.Sprintf("%s/v1/namespaces/bench/tables/messages/rows/%d", w.base(), id), "", http.StatusOK)
}

// client is an HTTP client with enough idle connections for the load.
type client struct{ http *http.Client }

func newClient(conns int) *client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *client) do(method, url, body string, want int) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, bytes.TrimSpace(data))
	}
	return nil
}

func setup(c *client, base string) error {
	if err := c.do("POST", base+"/v1/namespaces", `{"name":"bench"}`, http.StatusCreated); err != nil {
		return err
	}
	return c.do("POST", base+"/v1/namespaces/bench/tables", `{"name":"messages","type":"user",
		"columns":[{"name":"id","type":"int64"},{"name":"body","type":"string","nullable":true},{"name":"at","type":"timestamp"}],
		"primary_key":"id","flush":{"rows":100000000,"interval_seconds":0}}`, http.StatusCreated)
}

// startServer runs the binary with RocksDB under dir and waits for
// /readyz.
func startServer(binary, dir string, syncWrites bool) (string, func(), error) {
	cfg := fmt.Sprintf(`[server]
host = "127.0.0.1"
port = %%d

[storage]
backend = "rocksdb"
parquet_dir = %q

[storage.rocksdb]
path = %q
sync_writes = %v

[flush]
default_rows = 100000000
default_interval_seconds = 0
on_shutdown = false
`, filepath.Join(dir, "parquet"), filepath.Join(dir, "rocksdb"), syncWrites) + configTail()
	s, err := serverproc.Start(binary, dir, cfg)
	if err != nil {
		return "", nil, err
	}
	return s.Base, func() { _ = s.Stop() }, nil
}

// configTail is the end of every configuration of this program: warnings
// only in the log, and the admin user whose token the requests carry.
func configTail() string {
	return fmt.Sprintf(`
[log]
level = "warn"

[[auth.users]]
id = "admin"
role = "admin"
token = %q
`, token)
}

// startFloor runs the trivial JSON handler the server is compared with in
// a child process (this program with -serve-floor), so that it crosses the
// same process boundary as the server, and returns its base URL.
func startFloor() (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-serve-floor")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line := make([]byte, 0, 64)
	buf := make([]byte, 1)
	for {
		if _, err := out.Read(buf); err != nil {
			stop()
			return "", nil, fmt.Errorf("floor server: %w", err)
		}
		if buf[0] == '\n' {
			break
		}
		line = append(line, buf[0])
	}
	return "http://" + string(line), stop, nil
}

// floorHandler decodes the JSON request body and answers a small JSON
// object, nothing else: the least any JSON API does per request.
func floorHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"inserted": len(v)})
	})
	return mux
}

// runFloor serves floorHandler until SIGTERM.
func runFloor() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: floorHandler()}
	fmt.Println(l.Addr().String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
