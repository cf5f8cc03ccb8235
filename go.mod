module github.com/kalamdb/kalamdb-go

go 1.26.0

require (
	github.com/kalamdb/kalamdb-go/kalamdb-core v0.0.0
	github.com/kalamdb/kalamdb-go/kalamdb-server v0.0.0
	github.com/kalamdb/kalamdb-go/kalamdb-store v0.0.0
)

require github.com/stretchr/testify v1.12.1 // indirect

replace (
	github.com/kalamdb/kalamdb-go/kalamdb-core => ./kalamdb-core
	github.com/kalamdb/kalamdb-go/kalamdb-server => ./kalamdb-server
	github.com/kalamdb/kalamdb-go/kalamdb-store => ./kalamdb-store
)
