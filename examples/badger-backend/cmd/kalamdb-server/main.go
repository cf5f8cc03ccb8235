// Command kalamdb-server is the KalamDB server with the Badger storage
// backend linked in, beside the built-in ones: `kalamdb-server backends`
// lists it, and `[storage] backend = "badger"` in config.toml opens it.
package main

import (
	"os"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/app"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"

	"example.com/kalamdb-badger/badger"
)

func main() {
	os.Exit(app.Main(os.Args[1:], backends.Backend{
		Name:     badger.Name,
		Durable:  true,
		Summary:  "embedded Badger, pure Go (example.com/kalamdb-badger); writes are synced to disk by default",
		Register: badger.Register,
		Decode:   backends.DecodeWith(badger.DefaultConfig),
	}))
}
