// Package serverproc starts the real kalamdb-server binary for the tools
// that measure or probe it over loopback: on a free port, with a
// configuration of the caller's, waiting until /readyz answers.
package serverproc

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Server is a running kalamdb-server process.
type Server struct {
	// Base is the server's URL, http://127.0.0.1:<port>.
	Base string
	// Pid is the process id.
	Pid int

	cmd    *exec.Cmd
	exited chan error
}

// Start writes config (a config.toml without the [server] port, which
// Start chooses: it fills the %d of config with it) into dir and runs
// binary serve on it, its output going to stderr of this process. It
// returns once /readyz answers 200, within 30 seconds.
func Start(binary, dir, config string) (*Server, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("binary %s: %w (build it with `make build`)", binary, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(config, port)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Base: fmt.Sprintf("http://127.0.0.1:%d", port), Pid: cmd.Process.Pid, cmd: cmd, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("kalamdb-server exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("kalamdb-server not ready after 30s")
		}
	}
}

// Running reports whether the process is still alive.
func (s *Server) Running() bool {
	select {
	case err := <-s.exited:
		s.exited <- err
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits up to 30 seconds for the process to exit,
// then kills it; it returns how the process ended.
func (s *Server) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("kalamdb-server did not stop within 30s of SIGTERM; killed")
	}
}
