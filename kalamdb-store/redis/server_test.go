package redis

import (
	"fmt"
	"os"
	"testing"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
)

// shared is the server of the tests and examples that need no special one,
// started by TestMain. Tests that need a server of their own (persistence,
// a password, cluster mode, …) start it with redistest.StartT.
var shared *redistest.Server

// freshPrefix returns a key prefix of its own for each backend a test opens
// on the shared server, so that each starts empty.
func freshPrefix() string { return redistest.FreshPrefix() }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kalamdb-redis-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, err = redistest.Start(redistest.Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	// The examples (package redis_test) find the server here.
	if err := os.Setenv("KALAMDB_TEST_REDIS_ADDR", shared.Addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if fx, ok := fixture.Built(); ok {
		_ = fx.be.Close()
	}
	if err := shared.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
