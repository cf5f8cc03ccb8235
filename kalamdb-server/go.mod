module github.com/kalamdb/kalamdb-go/kalamdb-server

go 1.25.0

require (
	github.com/kalamdb/kalamdb-go/kalamdb-core v0.0.0
	github.com/kalamdb/kalamdb-go/kalamdb-store v0.0.0
)

replace (
	github.com/kalamdb/kalamdb-go/kalamdb-core => ../kalamdb-core
	github.com/kalamdb/kalamdb-go/kalamdb-store => ../kalamdb-store
)
