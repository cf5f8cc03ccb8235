package core_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// engines are import-path fragments of storage engines that kalamdb-core
// must never link, directly or through a dependency.
var engines = []string{"grocksdb", "pebble", "bbolt", "redis"}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
	}
	require.NoError(t, err)
	return strings.Fields(string(out))
}

// TestNoEngineDependencies fails if any package of kalamdb-core, or any of
// its tests, depends on a storage engine, or if its non-test code depends on
// a kalamdb-store package other than the contract itself.
func TestNoEngineDependencies(t *testing.T) {
	const storePkg = "github.com/kalamdb/kalamdb-go/kalamdb-store"
	deps := goList(t, "-deps", "./...")
	require.Contains(t, deps, storePkg, "go list sees the contract package")
	for _, d := range deps {
		for _, e := range engines {
			require.NotContains(t, d, e, "kalamdb-core depends on engine package %s", d)
		}
		if strings.HasPrefix(d, storePkg+"/") {
			t.Errorf("kalamdb-core depends on %s; only the contract package %s is allowed", d, storePkg)
		}
	}
	for _, d := range goList(t, "-deps", "-test", "./...") {
		for _, e := range engines {
			require.NotContains(t, d, e, "a kalamdb-core test depends on engine package %s", d)
		}
	}
}
