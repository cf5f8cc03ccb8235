module github.com/kalamdb/kalamdb-go/kalamdb-core

go 1.26.0

require github.com/kalamdb/kalamdb-go/kalamdb-store v0.0.0

require (
	github.com/pelletier/go-toml/v2 v2.4.3 // indirect
	github.com/stretchr/testify v1.12.1
	github.com/tidwall/btree v1.8.2 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace github.com/kalamdb/kalamdb-go/kalamdb-store => ../kalamdb-store
