package storetest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// holderEnv names the storage a child process started by HoldInOtherProcess
// opens.
const holderEnv = "KALAMDB_STORETEST_HOLD"

// HoldInOtherProcess starts the test binary again as another process that
// runs only the test named helper, which must call HoldOpenChild, and
// returns once that process has the storage at path open. The process
// closes it and exits when the test ends. It is how an embedded backend
// shows that a database open in another process is refused:
//
//	func TestHoldOpenHelper(t *testing.T) {
//		storetest.HoldOpenChild(t, func(path string) (store.StorageBackend, error) { … })
//	}
//
//	func TestOpenInUseElsewhere(t *testing.T) {
//		storetest.HoldInOtherProcess(t, "TestHoldOpenHelper", dir)
//		_, err := mykv.OpenWith(…dir…) // fails: in use
//	}
func HoldInOtherProcess(t testing.TB, helper, path string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), holderEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("storetest: starting the process that holds %s: %v", path, err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		switch line := sc.Text(); line {
		case "holding":
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return
		default:
			if len(line) > 5 && line[:5] == "fail:" {
				t.Fatalf("storetest: the process that should hold %s could not open it:%s", path, line[5:])
			}
		}
	}
	t.Fatalf("storetest: the process that should hold %s exited before it held it", path)
}

// HoldOpenChild is the body of the helper test of HoldInOtherProcess: in
// the child process it opens the storage with open, says so, and keeps it
// open until the parent's test ends; in any other run it skips.
func HoldOpenChild(t *testing.T, open func(path string) (store.StorageBackend, error)) {
	path := os.Getenv(holderEnv)
	if path == "" {
		t.Skip("storetest: runs only as the other process of HoldInOtherProcess")
	}
	b, err := open(path)
	if err != nil {
		fmt.Printf("fail: %v\n", err)
		return
	}
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	_ = b.Close()
}
