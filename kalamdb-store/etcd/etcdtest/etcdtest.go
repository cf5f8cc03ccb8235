// Package etcdtest starts etcd clusters for tests: the etcd backend's own
// tests, the differential fuzz test, and any other test that needs a real
// cluster. Each member is an etcd process listening on free loopback ports,
// with its data in a directory of the caller's choice (in memory, under
// /dev/shm, where the system has it: etcd fsyncs every commit). Members can
// be stopped, killed (SIGKILL) and restarted on the same ports and data.
//
// Tests never skip for want of a server: when etcd is not installed, Start
// fails with a message that says how to install it (scripts/deps.sh does it
// for CI and `make deps`).
package etcdtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// InstallHint is the error message when the etcd binary cannot be found.
const InstallHint = "etcd is not installed; the etcd backend's tests start their own cluster. " +
	"Install it with `apt-get install etcd-server` (or run scripts/deps.sh, or make deps)"

// Options configure a cluster. The zero value is one member in a fresh
// directory.
type Options struct {
	// Members is the number of members, 1 when zero.
	Members int
	// Dir holds one data directory per member. Start requires it; StartT
	// uses a fresh directory when it is empty (under /dev/shm where the
	// system has it).
	Dir string
	// Extra are more etcd arguments given to every member, such as
	// "--max-txn-ops=16"; they come last.
	Extra []string
	// ReadyWithin bounds the wait for the cluster to serve; 60s when zero.
	ReadyWithin time.Duration
	// TLSCertFile and TLSKeyFile, when set, make the members serve clients
	// over TLS (https client URLs) with this certificate; TLSClientCAFile,
	// when set too, makes them ask clients for a certificate that this
	// authority signs (--client-cert-auth).
	TLSCertFile, TLSKeyFile, TLSClientCAFile string
}

// Member is one etcd process of a Cluster.
type Member struct {
	// Name is the member's name (m0, m1, …).
	Name string
	// ClientURL is where clients reach it: http://127.0.0.1:port.
	ClientURL string
	// PeerURL is where the other members reach it.
	PeerURL string
	// MetricsURL serves /health and /metrics over plain HTTP.
	MetricsURL string
	// Dir is its data directory.
	Dir string

	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	log  bytes.Buffer  // what its processes printed, last run last
}

// Cluster is a running etcd cluster.
type Cluster struct {
	Members []*Member
	opts    Options
}

// Endpoints returns the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// StartT starts a cluster for the test t and stops it in t.Cleanup. It fails
// t when the cluster cannot start.
func StartT(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Dir == "" {
		o.Dir = TempDir(t)
	}
	c, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the etcd cluster: %v", err)
		}
	})
	return c
}

// TempDir returns a fresh directory for t, in memory (/dev/shm) where the
// system has it, removed when t ends.
func TempDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "kalamdb-etcdtest-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// Start starts the members and returns once every one serves clients.
// Ports taken by another process between choosing and binding them are
// retried with others. The caller must Stop the cluster.
func Start(o Options) (*Cluster, error) {
	if o.Dir == "" {
		return nil, errors.New("etcdtest: Options.Dir is empty")
	}
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, errors.New(InstallHint)
	}
	if o.Members == 0 {
		o.Members = 1
	}
	if o.ReadyWithin == 0 {
		o.ReadyWithin = 60 * time.Second
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := startOnce(bin, o, attempt)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

var clusters atomic.Int64

func startOnce(bin string, o Options, attempt int) (*Cluster, error) {
	c := &Cluster{opts: o}
	var initial []string
	for i := 0; i < o.Members; i++ {
		cport, err := FreePort()
		if err != nil {
			return nil, err
		}
		pport, err := FreePort()
		if err != nil {
			return nil, err
		}
		mport, err := FreePort()
		if err != nil {
			return nil, err
		}
		scheme := "http://"
		if o.TLSCertFile != "" {
			scheme = "https://"
		}
		m := &Member{
			Name:       "m" + strconv.Itoa(i),
			ClientURL:  scheme + "127.0.0.1:" + strconv.Itoa(cport),
			PeerURL:    "http://127.0.0.1:" + strconv.Itoa(pport),
			MetricsURL: "http://127.0.0.1:" + strconv.Itoa(mport),
			Dir:        fmt.Sprintf("%s/a%d-m%d", o.Dir, attempt, i),
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	token := fmt.Sprintf("kalamdb-etcdtest-%d-%d", os.Getpid(), clusters.Add(1))
	for _, m := range c.Members {
		m.args = append([]string{
			"--name", m.Name,
			"--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--listen-metrics-urls", m.MetricsURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", token,
			"--initial-cluster-state", "new",
			"--logger", "zap",
			"--log-outputs", "stderr",
		}, o.Extra...)
		if o.TLSCertFile != "" {
			m.args = append(m.args, "--cert-file", o.TLSCertFile, "--key-file", o.TLSKeyFile)
			if o.TLSClientCAFile != "" {
				m.args = append(m.args, "--client-cert-auth", "--trusted-ca-file", o.TLSClientCAFile)
			}
		}
		if err := m.start(bin); err != nil {
			_ = c.Stop()
			return nil, err
		}
	}
	for _, m := range c.Members {
		if err := m.waitReady(o.ReadyWithin); err != nil {
			_ = c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// FreePort returns a loopback TCP port that was free when it looked.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("etcdtest: finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the member's process.
func (m *Member) start(bin string) error {
	cmd := exec.Command(bin, m.args...)
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = cmd.Stderr
	done := make(chan struct{})
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcdtest: starting etcd member %s: %w", m.Name, err)
	}
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	fmt.Fprintf(&m.log, "--- start of %s\n", m.Name)
	m.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			m.mu.Lock()
			m.log.WriteString(sc.Text() + "\n")
			m.mu.Unlock()
		}
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// waitReady waits until the member answers on its client port with a
// health check of the cluster (which needs a leader), the process exits,
// or within passes.
func (m *Member) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	for {
		if healthy(m.MetricsURL) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("etcdtest: etcd member %s exited before serving:\n%s", m.Name, m.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcdtest: etcd member %s did not serve within %s:\n%s", m.Name, within, m.Output())
		}
	}
}

// healthy asks the /health endpoint at url (a member's metrics URL, plain
// HTTP whatever the client URLs speak), which answers true once the
// cluster has a leader and the member serves.
func healthy(url string) bool {
	host := strings.TrimPrefix(url, "http://")
	conn, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /health HTTP/1.0\r\nHost: %s\r\n\r\n", host); err != nil {
		return false
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(conn)
	return bytes.Contains(buf.Bytes(), []byte(`"health":"true"`))
}

// Output returns what the member's processes have printed so far.
func (m *Member) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

// Running reports whether the member's process is running.
func (m *Member) Running() bool {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Stop stops the member gracefully (SIGTERM) and waits for it to exit.
// Stopping a stopped member returns nil.
func (m *Member) Stop() error { return m.signal(syscall.SIGTERM) }

// Kill kills the member (SIGKILL), as a crash would, and waits for it to
// exit.
func (m *Member) Kill() error { return m.signal(syscall.SIGKILL) }

func (m *Member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("etcdtest: etcd member %s did not exit on %v within 30s", m.Name, sig)
	}
}

// Restart starts a stopped or killed member again on its ports and data,
// and waits until it serves (which needs a quorum of the cluster).
func (m *Member) Restart() error {
	if m.Running() {
		return fmt.Errorf("etcdtest: etcd member %s is running", m.Name)
	}
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return errors.New(InstallHint)
	}
	if err := m.start(bin); err != nil {
		return err
	}
	return m.waitReady(60 * time.Second)
}

// Stop stops every member. Stopping a stopped cluster returns nil.
func (c *Cluster) Stop() error {
	var errs []error
	for _, m := range c.Members {
		if err := m.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
	prefixes   atomic.Int64
)

// Shared returns a three-member cluster that the whole test process
// shares, started on first use, its data under /dev/shm (or the temporary
// directory). Tests keep out of each other's way by opening backends with
// their own FreshPrefix.
//
// The shared cluster lives as long as the process: on Linux the kernel
// stops it when the test binary exits; call StopShared from TestMain to
// stop it and remove its data.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		base := os.TempDir()
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm"
		}
		dir, err := os.MkdirTemp(base, "kalamdb-etcdtest-shared-")
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = Start(Options{Members: 3, Dir: dir})
		if sharedErr != nil {
			_ = os.RemoveAll(dir)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the shared cluster if Shared started one, and removes
// its data.
func StopShared() error {
	if shared == nil {
		return nil
	}
	err := shared.Stop()
	_ = os.RemoveAll(shared.opts.Dir)
	return err
}

// FreshPrefix returns a key prefix no other caller in this process got, for
// a backend that must start empty on a shared cluster.
func FreshPrefix() string { return fmt.Sprintf("test%d-%d", os.Getpid(), prefixes.Add(1)) }
