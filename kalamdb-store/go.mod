module github.com/kalamdb/kalamdb-go/kalamdb-store

go 1.25.0

require (
	github.com/pelletier/go-toml/v2 v2.4.3 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	github.com/tidwall/btree v1.8.2 // indirect
)
