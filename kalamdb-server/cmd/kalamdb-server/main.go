// Command kalamdb-server runs the KalamDB server. See
// `kalamdb-server --help` and docs/server.md.
package main

import (
	"os"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:]))
}
