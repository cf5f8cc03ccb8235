// Command greedy probes kalamdb-server as a greedy client would, over
// loopback, and shows that the server stays up with bounded memory. It
// starts the real binary on RocksDB with a temporary configuration and
// runs two cases:
//
//   - big rows: a user stores 20 rows of almost 8 MiB each (the largest
//     body the server takes) made of '<', then 8 clients list the table
//     with ?limit=1000 again and again. The pages are cut by
//     server.max_page_bytes, and the server's peak resident memory
//     (VmHWM) is reported before and after, beside the 160 MB stored;
//   - many connections: one client address opens idle keep-alive
//     connections until -conns are open or refused, then /healthz is asked
//     from another loopback address, a row is written and the table
//     flushed (which opens files). The server keeps at most
//     server.max_connections_per_client connections of one address and
//     closes the others on arrival, so it keeps its file descriptors.
//
// Every loop is bounded in count and time, every connection goes to
// 127.0.0.0/8, and the server is stopped at the end. Usage:
//
//	go run ./tools/greedy -binary bin/kalamdb-server [-conns 3000]
//
// (make greedy). It prints a report and exits non-zero if the server died,
// a response was larger than the bound allows, or the server stopped
// answering another client.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kalamdb/kalamdb-go/tools/internal/serverproc"
)

const token = "greedy-admin-token-0123456789abcdef"

const (
	bigRows     = 20
	rowBytes    = 8<<20 - 1024 // a row that fits one 8 MiB request body
	listClients = 8
	listRounds  = 5
	pageBytes   = 8 << 20 // server.max_page_bytes, the default
)

func main() {
	binary := flag.String("binary", "bin/kalamdb-server", "kalamdb-server binary to start")
	conns := flag.Int("conns", 3000, "idle connections one address tries to open")
	flag.Parse()
	if err := run(*binary, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "greedy: FAIL:", err)
		os.Exit(1)
	}
}

func run(binary string, conns int) error {
	dir, err := os.MkdirTemp("", "kalamdb-greedy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := serverproc.Start(binary, dir, fmt.Sprintf(`[server]
host = "127.0.0.1"
port = %%d

[storage]
backend = "rocksdb"
parquet_dir = %q

[storage.rocksdb]
path = %q

[log]
level = "warn"

[[auth.users]]
id = "admin"
role = "admin"
token = %q
`, filepath.Join(dir, "parquet"), filepath.Join(dir, "rocksdb"), token))
	if err != nil {
		return err
	}
	defer s.Stop()
	c := &http.Client{Timeout: 2 * time.Minute}
	if err := call(c, "POST", s.Base+"/v1/namespaces", `{"name":"greedy"}`, http.StatusCreated, nil); err != nil {
		return err
	}
	if err := call(c, "POST", s.Base+"/v1/namespaces/greedy/tables", `{"name":"big","type":"user","primary_key":"id",
		"columns":[{"name":"id","type":"int64"},{"name":"body","type":"string"}],"flush":{"rows":100000000,"interval_seconds":0}}`, http.StatusCreated, nil); err != nil {
		return err
	}
	if err := bigRowsCase(c, s); err != nil {
		return fmt.Errorf("big rows: %w", err)
	}
	if err := connectionsCase(c, s, conns); err != nil {
		return fmt.Errorf("many connections: %w", err)
	}
	if !s.Running() {
		return errors.New("the server is no longer running")
	}
	if err := s.Stop(); err != nil {
		return fmt.Errorf("stopping the server: %w", err)
	}
	fmt.Println("PASS: the server stayed up, with bounded responses and connections")
	return nil
}

func bigRowsCase(c *http.Client, s *serverproc.Server) error {
	before, _ := peakRSS(s.Pid)
	body := strings.Repeat("<", rowBytes)
	for i := range bigRows {
		req := fmt.Sprintf(`{"rows":[{"id":%d,"body":"%s"}]}`, i, body)
		if err := call(c, "POST", s.Base+"/v1/namespaces/greedy/tables/big/rows", req, http.StatusCreated, nil); err != nil {
			return fmt.Errorf("insert %d: %w", i, err)
		}
	}
	afterInsert, _ := peakRSS(s.Pid)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		largest int
		pages   int
		first   error
	)
	for range listClients {
		wg.Go(func() {
			for range listRounds {
				var n int
				err := call(c, "GET", s.Base+"/v1/namespaces/greedy/tables/big/rows?limit=1000", "", http.StatusOK, &n)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				largest, pages = max(largest, n), pages+1
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	after, _ := peakRSS(s.Pid)
	fmt.Printf("big rows: %d rows of %.1f MiB stored (%d MB in all); %d listings of ?limit=1000 by %d clients\n",
		bigRows, float64(rowBytes)/(1<<20), bigRows*rowBytes/1000000, pages, listClients)
	fmt.Printf("  largest response %.1f MB (bound: max_page_bytes %d MiB plus one row)\n", float64(largest)/1e6, pageBytes>>20)
	fmt.Printf("  server peak resident memory: %s at start, %s after the inserts, %s after the listings\n", mib(before), mib(afterInsert), mib(after))
	if largest > 2*pageBytes+rowBytes {
		return fmt.Errorf("a response of %d bytes is beyond max_page_bytes plus one row", largest)
	}
	return nil
}

func connectionsCase(c *http.Client, s *serverproc.Server, n int) error {
	addr := strings.TrimPrefix(s.Base, "http://")
	var open []net.Conn
	defer func() {
		for _, cn := range open {
			cn.Close()
		}
	}()
	refused := 0
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		cn, ok := keepAlive(addr)
		if !ok {
			refused++
			continue
		}
		open = append(open, cn)
	}
	other := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	start := time.Now()
	resp, err := other.Get(s.Base + "/healthz")
	if err != nil {
		return fmt.Errorf("/healthz from another address while one address holds %d connections: %w", len(open), err)
	}
	resp.Body.Close()
	healthz := time.Since(start)
	if err := call(other, "POST", s.Base+"/v1/namespaces/greedy/tables/big/rows", `{"rows":[{"id":1000,"body":"x"}]}`, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("a write from another address: %w", err)
	}
	if err := call(other, "POST", s.Base+"/v1/namespaces/greedy/tables/big/flush", "", http.StatusOK, nil); err != nil {
		return fmt.Errorf("a flush while connections are held: %w", err)
	}
	fmt.Printf("many connections: one address opened %d idle connections and had %d refused on arrival\n", len(open), refused)
	fmt.Printf("  /healthz from another address answered in %v; a write and a flush (%d rows of 8 MiB to Parquet) succeeded\n",
		healthz.Round(time.Microsecond), bigRows+1)
	if refused == 0 && n > 256 {
		return errors.New("no connection was refused: server.max_connections_per_client did not hold")
	}
	return nil
}

// keepAlive opens a connection that the server answers once and keeps
// open, or reports that the server closed it on arrival.
func keepAlive(addr string) (net.Conn, bool) {
	cn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, false
	}
	_ = cn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(cn, "GET /healthz HTTP/1.1\r\nHost: greedy\r\n\r\n"); err != nil {
		cn.Close()
		return nil, false
	}
	resp, err := http.ReadResponse(bufio.NewReader(cn), nil)
	if err != nil {
		cn.Close()
		return nil, false
	}
	resp.Body.Close()
	_ = cn.SetDeadline(time.Time{})
	return cn, true
}

// call sends a request with the admin token and checks the status; n, when
// not nil, receives the size of the response body.
func call(c *http.Client, method, url, body string, want int, n *int) error {
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
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if n != nil {
		*n = int(got)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, url, resp.StatusCode, want)
	}
	return nil
}

// peakRSS reads the peak resident memory of process pid, in bytes, from
// /proc (Linux); 0 elsewhere.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
