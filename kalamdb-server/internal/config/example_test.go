package config_test

import (
	"fmt"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// Values come from the file, then the environment, then flags; each
// remembers where it came from.
func ExampleParse() {
	doc := []byte(`
[server]
port = 8080

[[auth.users]]
id = "admin"
role = "admin"
token = "s3cret"
`)
	c, err := config.Parse("config.toml", doc, config.Options{
		Environ: []string{"KALAMDB_SERVER_PORT=9000", "KALAMDB_LOG_LEVEL=debug"},
		Flags:   map[string]config.FlagValue{"log.level": {Flag: "--log-level", Value: "warn"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Server.Port, "from", c.Origin("server.port"))
	fmt.Println(c.Log.Level, "from", c.Origin("log.level"))
	fmt.Println(c.Server.Host, "from", c.Origin("server.host"))
	// Output:
	// 9000 from environment variable KALAMDB_SERVER_PORT
	// warn from flag --log-level
	// 127.0.0.1 from default
}

// A misspelled key is reported with its line and the key it resembles,
// together with every other problem of the file.
func ExampleParse_unknownKey() {
	doc := []byte("[server]\nprot = 8080\nmax_page_rows = 0\n")
	_, err := config.Parse("config.toml", doc, config.Options{})
	fmt.Println(err)
	// Output:
	// config.toml:2: server.prot: unknown key (did you mean "port"?)
	// config.toml:3: server.max_page_rows: must be at least 1, got 0
	// auth.users: no users are configured: add at least one [[auth.users]] entry with id, role and token (or token_sha256, or token_file)
}
