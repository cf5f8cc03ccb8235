// Package migratetest carries a database through every storage engine with
// package backup (kalamdb-core/backup): a backup of each, restored into
// the next, read through the table API at every step. It lives in the
// root module so that kalamdb-core never depends on an engine.
package migratetest
