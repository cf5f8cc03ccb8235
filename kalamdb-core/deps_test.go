package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const storeModule = "github.com/kalamdb/kalamdb-go/kalamdb-store"

// The packages of kalamdb-store that are not storage engines: the contract,
// its conformance suite and its fault-injecting wrapper. Every other package
// of kalamdb-store is an engine, or belongs to one; a new engine is one more
// package there, and this test catches it without being edited.
var contractPackages = []string{storeModule, storeModule + "/storetest", storeModule + "/faultstore"}

// testBackend is the one engine kalamdb-core's tests may use: the in-process
// memory backend (the same suites run on RocksDB from the root module).
const testBackend = storeModule + "/memory"

// goList runs go list in dir with the workspace on, whatever GOWORK says:
// the engines' dependencies are only in the workspace's build list.
func goList(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
	}
	require.NoError(t, err)
	return strings.Fields(string(out))
}

// engineDeps returns what a storage engine of kalamdb-store is made of: the
// engine packages themselves, and the modules they import directly that the
// contract packages and the test backend do not need (grocksdb, pebble,
// bbolt, go-redis, …). A package of those modules reaches a program only
// through an engine.
func engineDeps(t *testing.T, root string) (packages, modules map[string]bool) {
	t.Helper()
	packages, modules = map[string]bool{}, map[string]bool{}
	var engines []string
	for _, p := range goList(t, root, storeModule+"/...") {
		if !slices.Contains(contractPackages, p) && p != testBackend {
			engines = append(engines, p)
			packages[p] = true
		}
	}
	require.NotEmpty(t, engines, "kalamdb-store has engines")
	allowed := map[string]bool{}
	for _, m := range goList(t, root, append([]string{"-deps", "-f", "{{with .Module}}{{.Path}}{{end}}"}, append(contractPackages, testBackend)...)...) {
		allowed[m] = true
	}
	var imports []string
	for _, p := range goList(t, root, append([]string{"-f", `{{join .Imports "\n"}}`}, engines...)...) {
		if !strings.HasPrefix(p, "github.com/kalamdb/kalamdb-go/") && p != "C" && !slices.Contains(imports, p) {
			imports = append(imports, p)
		}
	}
	for _, m := range goList(t, root, append([]string{"-f", "{{with .Module}}{{.Path}}{{end}}"}, imports...)...) {
		if !allowed[m] {
			modules[m] = true
		}
	}
	return packages, modules
}

// TestNoEngineDependencies fails if any package of kalamdb-core depends on a
// kalamdb-store package other than the contract itself, or if any of its
// tests depends on a storage engine other than the memory backend, directly
// or through a dependency.
func TestNoEngineDependencies(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	deps := goList(t, ".", "-deps", "./...")
	require.Contains(t, deps, storeModule, "go list sees the contract package")
	for _, d := range deps {
		if strings.HasPrefix(d, storeModule+"/") {
			t.Errorf("kalamdb-core depends on %s; only the contract package %s is allowed", d, storeModule)
		}
	}
	packages, modules := engineDeps(t, root)
	require.Contains(t, packages, storeModule+"/rocksdb", "the engine list is derived from kalamdb-store")
	require.Contains(t, modules, "github.com/linxGnu/grocksdb", "with the engines' own modules")
	require.Contains(t, modules, "github.com/redis/go-redis/v9")
	for _, line := range goList(t, ".", "-deps", "-test", "-f", "{{.ImportPath}}|{{with .Module}}{{.Path}}{{end}}", "./...") {
		p, m, _ := strings.Cut(line, "|")
		if packages[p] || modules[m] {
			t.Errorf("a kalamdb-core test depends on %s, which belongs to a storage engine", p)
		}
	}
}
