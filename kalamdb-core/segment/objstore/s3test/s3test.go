// Package s3test runs a real S3-compatible server for tests: moto's
// moto_server, started on a free loopback port and stopped when the tests
// are done. It is not an in-process fake: requests go over HTTP to another
// process, as to any S3-compatible store.
//
// A test calls Bucket, which starts the package's server on first use and
// creates a new bucket. When moto_server is not installed the test skips,
// saying how to install it, unless KALAMDB_REQUIRE_S3=1 (set by CI): it
// then fails. A package that uses it stops the server in its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }
package s3test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EnvRequire is the environment variable that turns a missing moto_server
// into a test failure.
const EnvRequire = "KALAMDB_REQUIRE_S3"

// Install says how to get moto_server.
const Install = "moto_server (the S3-compatible test server of the Python package moto) is not installed: " +
	"install it with `pip install 'moto[server]'` (the CI image ships it), or put it on PATH"

// Server is a running moto_server.
type Server struct {
	// Endpoint is its base URL, http://127.0.0.1:<port>.
	Endpoint string
	cmd      *exec.Cmd
	log      *bytes.Buffer
}

var (
	mu      sync.Mutex
	shared  *Server
	failed  error
	buckets atomic.Int64
)

// Binary returns the path of moto_server, or an error saying how to get it.
func Binary() (string, error) {
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	for _, p := range []string{os.Getenv("HOME") + "/.pyenv/shims/moto_server", "/root/.pyenv/shims/moto_server", "/usr/local/bin/moto_server"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(Install)
}

// Shared returns the package's server, starting it on first use. It skips
// t when moto_server is missing, or fails it under KALAMDB_REQUIRE_S3=1.
func Shared(t testing.TB) *Server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shared == nil && failed == nil {
		shared, failed = Start()
	}
	if failed != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 and the S3 test server cannot run: %v", EnvRequire, failed)
		}
		t.Skipf("skipped: no S3-compatible test server: %v (set %s=1 to make this a failure)", failed, EnvRequire)
	}
	return shared
}

// Run runs the tests of m and stops the shared server, if one started.
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
	return code
}

// Start starts a moto_server on a free loopback port and waits until it
// answers.
func Start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: &log}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	client := &http.Client{Timeout: time.Second}
	// Poll until it answers: bounded, about 30 s.
	for range 300 {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("moto_server exited before answering (%v): %s", err, log.String())
		default:
		}
		if resp, err := client.Get(s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			go func() { <-exited }()
			return s, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("moto_server did not answer on %s within 30 s: %s", s.Endpoint, log.String())
}

// Stop stops the server.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
}

// CreateBucket creates a bucket named name.
func (s *Server) CreateBucket(name string) error {
	req, err := http.NewRequest(http.MethodPut, s.Endpoint+"/"+url.PathEscape(name), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("creating bucket %s: %s", name, resp.Status)
	}
	return nil
}

// URL returns the gocloud URL of bucket on the server at endpoint (which
// may be a proxy in front of it).
func URL(bucket, endpoint string) string {
	q := url.Values{"endpoint": {endpoint}, "region": {"us-east-1"}, "use_path_style": {"true"}}
	return "s3://" + bucket + "?" + q.Encode()
}

// Bucket starts the shared server if needed, creates a new bucket and
// returns the server and the bucket's URL. It sets the AWS credentials the
// SDK reads from the environment (moto accepts any) for the test.
func Bucket(t testing.TB) (*Server, string) {
	t.Helper()
	s := Shared(t)
	SetCredentials(t)
	name := fmt.Sprintf("kalamdb-test-%d-%d", os.Getpid(), buckets.Add(1))
	if err := s.CreateBucket(name); err != nil {
		t.Fatal(err)
	}
	return s, URL(name, s.Endpoint)
}

// SetCredentials sets test credentials in the environment for t, and keeps
// the SDK from looking for others (a shared config, the instance metadata
// service).
func SetCredentials(t testing.TB) {
	t.Helper()
	if tt, ok := t.(interface{ Setenv(k, v string) }); ok {
		tt.Setenv("AWS_ACCESS_KEY_ID", "test")
		tt.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		tt.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		tt.Setenv("AWS_CONFIG_FILE", os.DevNull)
		tt.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
		return
	}
	t.Fatal("s3test: SetCredentials needs a *testing.T or *testing.B")
}

// Env returns the environment variables SetCredentials sets, for a child
// process.
func Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
