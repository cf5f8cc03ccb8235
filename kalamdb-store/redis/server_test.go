package redis

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
	"syscall"
	"testing"
	"time"
)

// installHint is the failure message when redis-server is missing. The
// tests do not skip: CI installs the server (scripts/deps.sh).
const installHint = "redis-server is not installed; the redis backend's tests start their own server. " +
	"Install it with `apt-get install redis-server` (or run scripts/deps.sh / make deps)"

// serverOptions configure a test server.
type serverOptions struct {
	dir         string   // data directory; a temporary one when empty
	persistent  bool     // appendonly yes, appendfsync always
	password    string   // requirepass
	cluster     bool     // cluster-enabled yes
	extra       []string // more redis-server arguments
	readyWithin time.Duration
}

// server is a redis-server process on a free loopback port.
type server struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	mu  sync.Mutex
	log bytes.Buffer // what the server printed
}

// startServer starts a redis-server for one test and stops it in t.Cleanup.
func startServer(t testing.TB, o serverOptions) *server {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	s, err := launchServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stopping redis-server: %v", err)
		}
	})
	return s
}

// launchServer starts redis-server and waits until it accepts connections.
// A port taken between choosing it and binding it is retried on another.
func launchServer(o serverOptions) (*server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(installHint)
	}
	if o.readyWithin == 0 {
		o.readyWithin = 20 * time.Second
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launchOn(bin, port, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launchOn(bin string, port int, o serverOptions) (*server, error) {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", o.dir,
		"--daemonize", "no",
		"--logfile", "",
		"--save", "",
		"--databases", "4",
	}
	if o.persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if o.password != "" {
		args = append(args, "--requirepass", o.password)
	}
	if o.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf")
	}
	args = append(args, o.extra...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	s := &server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: o.dir, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
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
	timer := time.NewTimer(o.readyWithin)
	defer timer.Stop()
	select {
	case <-ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("redis-server on port %d exited before accepting connections:\n%s", port, s.output())
	case <-timer.C:
		_ = s.stop()
		return nil, fmt.Errorf("redis-server on port %d was not ready within %s:\n%s", port, o.readyWithin, s.output())
	}
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop shuts the server down gracefully (SIGTERM: it flushes its append-only
// file first) and waits for it to exit.
func (s *server) stop() error {
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
		return fmt.Errorf("redis-server %s did not stop on SIGTERM within 30s", s.addr)
	}
}

// shared is the server of the tests and examples that need no special one,
// started by TestMain.
var shared *server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kalamdb-redis-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, err = launchServer(serverOptions{dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	// The examples (package redis_test) find the server here.
	if err := os.Setenv("KALAMDB_TEST_REDIS_ADDR", shared.addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if fixture != nil {
		_ = fixture.be.Close()
	}
	if err := shared.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
