package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
	"github.com/kalamdb/kalamdb-go/tools/internal/serverproc"
)

// topology is one arrangement measured by -topology servers: n servers on
// one backend.
type topology struct {
	backend string // rocksdb, etcd or redis
	servers int
}

func (t topology) String() string { return fmt.Sprintf("%s/%d", t.backend, t.servers) }

// serverTopologies are the arrangements -topology servers measures, in
// order: single-node RocksDB, then 1, 2 and 3 servers on each shared
// backend.
func serverTopologies() []topology {
	ts := []topology{{"rocksdb", 1}}
	for _, b := range []string{"etcd", "redis"} {
		for n := 1; n <= 3; n++ {
			ts = append(ts, topology{b, n})
		}
	}
	return ts
}

// roundRobin returns the base URL for the i-th request: requests go to the
// servers in turn.
func roundRobin(bases []string, i int64) string {
	return bases[int(i%int64(len(bases)))]
}

// noFlushConfig is the configuration of a server of a shared backend:
// loopback, flush off as docs/deploy.md prescribes for several servers,
// section being the backend's [storage.*] section.
func noFlushConfig(dir, backend, section string) string {
	return fmt.Sprintf(`[server]
host = "127.0.0.1"
port = %%d

[storage]
backend = %q
parquet_dir = %q
%s
[flush]
default_rows = 1000000000
default_interval_seconds = 0
on_shutdown = false
compact_segments = 0
`, backend, filepath.Join(dir, "parquet"), section) + configTail()
}

// sharedBackend is a running etcd cluster or redis-server, with how to
// configure a server on it and how to read its count of requests served.
type sharedBackend struct {
	name     string
	section  func(prefix string) string // the [storage.*] section of a server
	requests func() (float64, error)    // requests the backend has served so far
	stop     func() error
}

// startEtcd starts a three-member etcd cluster under dir. Its request
// count is the sum over members of etcd's grpc_server_handled_total: one
// per gRPC call a client made, so one per round trip.
func startEtcd(dir string) (*sharedBackend, error) {
	c, err := etcdtest.Start(etcdtest.Options{Members: 3, Dir: dir})
	if err != nil {
		return nil, err
	}
	eps := make([]string, 0, len(c.Members))
	for _, e := range c.Endpoints() {
		eps = append(eps, strconv.Quote(e))
	}
	return &sharedBackend{
		name: "etcd",
		section: func(prefix string) string {
			return fmt.Sprintf("\n[storage.etcd]\nendpoints = [%s]\nprefix = %q\n", strings.Join(eps, ", "), prefix)
		},
		requests: func() (float64, error) {
			var sum float64
			for _, m := range c.Members {
				v, err := scrapeCounter(m.MetricsURL+"/metrics", "grpc_server_handled_total")
				if err != nil {
					return 0, err
				}
				sum += v
			}
			return sum, nil
		},
		stop: c.Stop,
	}, nil
}

// startRedis starts one redis-server without persistence under dir. Its
// request count is INFO's total_commands_processed less the INFO commands
// that read it.
func startRedis(dir string) (*sharedBackend, error) {
	s, err := redistest.Start(redistest.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	var infos float64
	return &sharedBackend{
		name: "redis",
		section: func(prefix string) string {
			return fmt.Sprintf("\n[storage.redis]\naddr = %q\nkey_prefix = %q\n", s.Addr, prefix)
		},
		requests: func() (float64, error) {
			v, err := redisCommands(s.Addr)
			infos++
			return v - infos, err
		},
		stop: s.Stop,
	}, nil
}

// scrapeCounter fetches a Prometheus text exposition from url and returns
// the sum of every sample of the metric name (all label sets).
func scrapeCounter(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return sumMetric(resp.Body, name)
}

// sumMetric returns the sum of the samples of the metric name in a
// Prometheus text exposition: lines "name value" or "name{labels} value".
// Comments and other metrics, including ones name is a prefix of, are
// skipped. A sample whose value does not parse is an error naming it.
func sumMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sum float64
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return 0, fmt.Errorf("metric %s: unterminated labels in %q", name, line)
			}
			rest = rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric whose name starts with name
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, fmt.Errorf("metric %s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: value of %q: %w", name, line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// redisCommands asks the redis-server at addr for INFO stats and returns
// its total_commands_processed.
func redisCommands(addr string) (float64, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n"); err != nil {
		return 0, err
	}
	br := bufio.NewReader(conn)
	head, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(head, "$") {
		return 0, fmt.Errorf("redis INFO: unexpected reply %q", head)
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		return 0, fmt.Errorf("redis INFO: reply length %q: %w", head, err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, err
	}
	return infoField(body, "total_commands_processed")
}

// infoField returns the numeric field of a Redis INFO reply ("field:value"
// lines).
func infoField(info []byte, field string) (float64, error) {
	for _, line := range bytes.Split(info, []byte("\n")) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), ":")
		if ok && k == field {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("redis INFO: no field %s", field)
}

// topoResult is what -topology servers measured of one topology.
type topoResult struct {
	topo          topology
	runs          map[string][]result
	opsPerInsert  []float64 // storage operations the servers counted, per single-row insert
	reqsPerInsert []float64 // requests the backend served, per single-row insert (shared backends)
	opsPerLookup  []float64
	reqsPerLookup []float64
}

// runServers is -topology servers: insert and lookup latency at
// concurrency 1 and throughput at clients, through 1, 2 and 3 servers on
// one etcd cluster and on one redis-server, beside one server on RocksDB.
func runServers(binary string, duration time.Duration, count, clients int, out string) error {
	dir, err := os.MkdirTemp("", "kalamdb-bench-servers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	etcdDir := filepath.Join(dir, "etcd")
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		// etcd fsyncs every commit, as the e2e suite runs it: in memory.
		if d, err := os.MkdirTemp("/dev/shm", "kalamdb-bench-etcd-"); err == nil {
			defer os.RemoveAll(d)
			etcdDir = d
		}
	}

	fmt.Fprintln(os.Stderr, "starting a 3-member etcd cluster and a redis-server…")
	etcd, err := startEtcd(etcdDir)
	if err != nil {
		return err
	}
	defer etcd.stop()
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return err
	}
	redis, err := startRedis(rdir)
	if err != nil {
		return err
	}
	defer redis.stop()
	backends := map[string]*sharedBackend{"etcd": etcd, "redis": redis}

	var all []topoResult
	var bench bytes.Buffer
	fmt.Fprintf(&bench, "goos: %s\ngoarch: %s\npkg: kalamdb-server/servers\ncpu: %d logical CPUs\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	for _, t := range serverTopologies() {
		r, err := measureTopology(binary, filepath.Join(dir, t.String()), t, backends[t.backend], duration, count, clients, &bench)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		all = append(all, r)
	}
	if out != "" {
		if err := os.WriteFile(out, bench.Bytes(), 0o644); err != nil {
			return err
		}
	}
	reportServers(all, clients, duration, count)
	return nil
}

// measureTopology starts t's servers (on backend b, a fresh prefix of it,
// unless t is RocksDB), runs every measurement count times and stops them.
func measureTopology(binary, dir string, t topology, b *sharedBackend, duration time.Duration, count, clients int, bench *bytes.Buffer) (topoResult, error) {
	res := topoResult{topo: t, runs: map[string][]result{}}
	var bases []string
	for i := 0; i < t.servers; i++ {
		sdir := filepath.Join(dir, fmt.Sprintf("s%d", i))
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			return res, err
		}
		var cfg string
		if b == nil {
			cfg = noFlushConfig(sdir, "rocksdb", fmt.Sprintf("\n[storage.rocksdb]\npath = %q\n", filepath.Join(sdir, "rocksdb")))
		} else {
			// A prefix of its own per topology: each starts on an empty
			// database.
			cfg = noFlushConfig(sdir, b.name, b.section("bench"+strconv.Itoa(t.servers)))
		}
		// One at a time, as docs/deploy.md's servers may but need not.
		s, err := serverproc.Start(binary, sdir, cfg)
		if err != nil {
			return res, err
		}
		defer func() { _ = s.Stop() }()
		bases = append(bases, s.Base)
	}

	c := newClient(clients * 2)
	if err := setup(c, bases[0]); err != nil {
		return res, err
	}
	var seq atomic.Int64
	w := &workload{base: func() string { return roundRobin(bases, seq.Add(1)) }, warm: serverWarmRows}
	insertOne := func(c *client) (int, error) { return w.insert(c, 1) }
	lookup := w.lookup
	fmt.Fprintf(os.Stderr, "%s: warming up (%d rows)…\n", t, serverWarmRows)
	for w.nextID.Load() < serverWarmRows {
		// Twenty rows a request: within etcd's 64 operations a transaction.
		if _, err := w.insert(c, 20); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}

	// counts returns the storage operations every server has counted and
	// the requests the backend has served so far.
	counts := func() (ops, reqs float64, err error) {
		for _, base := range bases {
			v, err := scrapeCounter(base+"/metrics", "kalamdb_storage_operations_total")
			if err != nil {
				return 0, 0, err
			}
			ops += v
		}
		if b != nil {
			reqs, err = b.requests()
		}
		return ops, reqs, err
	}
	ms := []measurement{
		{"insert/c1", 1, insertOne},
		{"lookup/c1", 1, lookup},
		{"insert/c8", clients, insertOne},
		{"lookup/c8", clients, lookup},
	}
	for i := 0; i < count; i++ {
		for _, m := range ms {
			ops0, reqs0, err := counts()
			if err != nil {
				return res, err
			}
			r, err := measure(c, m.clients, duration, m.fn)
			if err != nil {
				return res, fmt.Errorf("%s: %w", m.name, err)
			}
			ops1, reqs1, err := counts()
			if err != nil {
				return res, err
			}
			res.runs[m.name] = append(res.runs[m.name], r)
			switch m.name {
			case "insert/c1":
				res.opsPerInsert = append(res.opsPerInsert, (ops1-ops0)/float64(r.ops))
				res.reqsPerInsert = append(res.reqsPerInsert, (reqs1-reqs0)/float64(r.ops))
			case "lookup/c1":
				res.opsPerLookup = append(res.opsPerLookup, (ops1-ops0)/float64(r.ops))
				res.reqsPerLookup = append(res.reqsPerLookup, (reqs1-reqs0)/float64(r.ops))
			}
			nsPerReq := float64(r.elapsed.Nanoseconds()) / float64(r.ops)
			fmt.Fprintf(bench, "BenchmarkServers/%s/%s/%s\t%d\t%.0f ns/op\t%.0f rows/s\n", t.backend, strconv.Itoa(t.servers)+"srv", m.name, r.ops, nsPerReq, r.rowsPerSec())
			fmt.Fprintf(os.Stderr, "%s run %d/%d %-10s %8.0f req/s\n", t, i+1, count, m.name, r.reqPerSec())
		}
	}
	return res, nil
}

// serverWarmRows are the rows each topology's lookups read.
const serverWarmRows = 5000

// medianOf returns the median of vals, 0 when there are none.
func medianOf(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	return s[len(s)/2]
}

func reportServers(all []topoResult, clients int, duration time.Duration, count int) {
	fmt.Printf("\nkalamdb-server over loopback, flush off, requests round-robin over the servers; %d CPUs shared by servers and backends; %d runs of %s each; medians.\n\n", runtime.NumCPU(), count, duration)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "backend\tservers\tinsert p50\tinsert p99\tlookup p50\tlookup p99\tinsert c=%d\tlookup c=%d\tstorage ops/insert\tbackend requests/insert\tbackend requests/lookup\n", clients, clients)
	for _, r := range all {
		p := func(name string, q float64) string {
			return us(median(r.runs[name], func(x result) float64 { return float64(x.percentile(q)) }))
		}
		rate := func(name string) string {
			return fmt.Sprintf("%.0f/s", median(r.runs[name], result.reqPerSec))
		}
		reqs, reqsL := "—", "—"
		if r.topo.backend != "rocksdb" {
			reqs = fmt.Sprintf("%.1f", medianOf(r.reqsPerInsert))
			reqsL = fmt.Sprintf("%.1f", medianOf(r.reqsPerLookup))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\n", r.topo.backend, r.topo.servers,
			p("insert/c1", .5), p("insert/c1", .99), p("lookup/c1", .5), p("lookup/c1", .99),
			rate("insert/c8"), rate("lookup/c8"), medianOf(r.opsPerInsert), reqs, reqsL)
	}
	_ = tw.Flush()
}
