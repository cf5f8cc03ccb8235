// Package app is the kalamdb-server program as a library: Main runs its
// command line (serve, config check, backends, version, backup, restore,
// migrate) with the built-in storage backends and any others given. A
// storage backend that lives in a module of its own reaches the server
// through a main package of that module:
//
//	package main
//
//	import (
//		"os"
//
//		"github.com/kalamdb/kalamdb-go/kalamdb-server/app"
//		"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
//		"example.com/mykv"
//	)
//
//	func main() {
//		os.Exit(app.Main(os.Args[1:], backends.Backend{
//			Name: mykv.Name, Durable: true, Summary: "…",
//			Register: mykv.Register, Decode: backends.DecodeWith(mykv.DefaultConfig),
//		}))
//	}
//
// The binary it builds is kalamdb-server with mykv linked in: `backends`
// lists it, and `[storage] backend = "mykv"` opens it. docs/backends.md walks
// through writing such a backend, and examples/badger-backend is one.
package app

import (
	"fmt"
	"os"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/cli"
)

// Main runs the kalamdb-server command line args (without the program
// name) in this process, with the built-in backends and extra, and returns
// the exit code: 0 on success, 1 on an error, 2 for a usage error or a
// backend list that does not hold together (a name taken twice).
func Main(args []string, extra ...backends.Backend) int {
	set, err := backends.NewSet(append(backends.Builtin(), extra...)...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kalamdb-server: %v\n", err)
		return 2
	}
	env := cli.ProcessEnv()
	env.Backends = set
	return cli.Main(args, env)
}
