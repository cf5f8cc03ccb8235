module github.com/kalamdb/kalamdb-go/kalamdb-core

go 1.25.0

require github.com/kalamdb/kalamdb-go/kalamdb-store v0.0.0

replace github.com/kalamdb/kalamdb-go/kalamdb-store => ../kalamdb-store
