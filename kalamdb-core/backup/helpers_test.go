package backup_test

import "github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

var tablesAll = tables.ScanOptions{Limit: tables.MaxLimit}
