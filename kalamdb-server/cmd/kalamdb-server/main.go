// Command kalamdb-server runs the KalamDB server. See
// `kalamdb-server --help` and docs/server.md.
package main

import (
	"os"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.ProcessEnv()))
}
