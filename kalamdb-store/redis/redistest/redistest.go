// Package redistest starts redis-server processes for tests: the Redis
// backend's own tests, the differential fuzz test, and any other test that
// needs a real server. Each server listens on a free loopback port, keeps its
// files in a directory of the caller's choice, and is stopped by the test
// that started it.
//
// Tests never skip for want of a server: when redis-server is not
// installed, Start fails with a message that says how to install it
// (scripts/deps.sh does it for CI and `make deps`).
package redistest

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

// InstallHint is the error message when redis-server cannot be found.
const InstallHint = "redis-server is not installed; the Redis backend's tests start their own server. " +
	"Install it with `apt-get install redis-server` (or run scripts/deps.sh, or make deps)"

// Options configure a server. The zero value is a server without
// persistence in a temporary directory.
type Options struct {
	// Dir is the server's working directory (--dir). Start requires it;
	// StartT uses t.TempDir() when it is empty.
	Dir string
	// Persistent turns on the append-only file with appendfsync always, so
	// that a restart on the same Dir finds every acknowledged write.
	Persistent bool
	// Password sets requirepass.
	Password string
	// Cluster starts the server in cluster mode (cluster-enabled yes).
	Cluster bool
	// TLSCertFile and TLSKeyFile, when set, make the server speak TLS only
	// (tls-port instead of port) with this certificate, without asking
	// clients for certificates.
	TLSCertFile, TLSKeyFile string
	// Extra are more redis-server arguments, such as "--maxmemory", "4mb".
	// They come last and override the ones above.
	Extra []string
	// ReadyWithin bounds the wait for the server to accept connections;
	// 20s when zero.
	ReadyWithin time.Duration
	// Port, when not zero, is the port to listen on, such as the port of a
	// server that was stopped, to bring it back on its address; zero picks
	// a free one.
	Port int
}

// Server is a running redis-server.
type Server struct {
	// Addr is the server's host:port on the loopback interface.
	Addr string
	// Dir is the server's working directory.
	Dir string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	mu  sync.Mutex
	log bytes.Buffer // what the server printed
}

// StartT starts a server for the test t and stops it in t.Cleanup. It fails
// t when the server cannot start.
func StartT(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping redis-server: %v", err)
		}
	})
	return s
}

// Start starts redis-server and returns once it accepts connections. A port
// taken by another process between choosing it and binding it is retried on
// another port. The caller must Stop the server.
func Start(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("redistest: Options.Dir is empty")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(InstallHint)
	}
	if o.ReadyWithin == 0 {
		o.ReadyWithin = 20 * time.Second
	}
	if o.Port != 0 {
		return startOn(bin, o.Port, o)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s, err := startOn(bin, port, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// FreePort returns a loopback TCP port that was free when it looked.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startOn(bin string, port int, o Options) (*Server, error) {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", o.Dir,
		"--daemonize", "no",
		"--logfile", "",
		"--save", "",
		"--databases", "4",
	}
	if o.Persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password)
	}
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		args[1] = "0"
		args = append(args, "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", o.TLSCertFile, "--tls-key-file", o.TLSKeyFile, "--tls-auth-clients", "no")
	}
	if o.Cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf")
	}
	args = append(args, o.Extra...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: o.Dir, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: starting redis-server: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if !signalled && strings.Contains(line, "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	timer := time.NewTimer(o.ReadyWithin)
	defer timer.Stop()
	select {
	case <-ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("redistest: redis-server on port %d exited before accepting connections:\n%s", port, s.Output())
	case <-timer.C:
		_ = s.Stop()
		return nil, fmt.Errorf("redistest: redis-server on port %d was not ready within %s:\n%s", port, o.ReadyWithin, s.Output())
	}
}

// Output returns what the server has printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Stop shuts the server down gracefully (SIGTERM, after which it flushes its
// append-only file) and waits for it to exit. Stopping a stopped server
// returns nil.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-s.done:
		return nil
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("redistest: redis-server %s did not stop on SIGTERM within 30s", s.Addr)
	}
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	prefixes   atomic.Int64
)

// Shared returns a server without persistence that the whole test process
// shares, started on first use. Tests keep out of each other's way by
// opening backends with their own FreshPrefix.
//
// The shared server lives as long as the process: on Linux the kernel stops
// it when the test binary exits; elsewhere call StopShared from TestMain.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start(Options{Dir: os.TempDir()}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the shared server if Shared started one.
func StopShared() error {
	if shared == nil {
		return nil
	}
	return shared.Stop()
}

// FreshPrefix returns a key prefix no other caller in this process got, for
// a backend that must start empty on a shared server.
func FreshPrefix() string { return fmt.Sprintf("test%d-%d", os.Getpid(), prefixes.Add(1)) }
