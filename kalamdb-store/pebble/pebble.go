// Package pebble is the storage backend on Pebble
// (github.com/cockroachdb/pebble/v2), the pure-Go log-structured merge tree:
// the embedded, durable backend for builds without cgo.
//
// # Layout
//
// One Pebble database holds every partition. A partition is a key prefix:
// the key k of partition "users" is stored as
//
//	"users" 0x00 k
//
// Partition names never contain 0x00 (see store.NewPartition), so the
// prefixes of two partitions never overlap, even when one name is a prefix
// of the other, and a partition's keys are exactly the half-open interval
// ["users" 0x00, "users" 0x01). Keys starting with 0x00 belong to no
// partition: they hold the backend's own records,
//
//	0x00 "format"          the layout version ("kalamdb-pebble/1")
//	0x00 "part" 0x00 name  one entry per partition
//
// so partitions, empty ones included, survive a reopen and ListPartitions
// reads them back exactly. Open refuses a directory that holds a Pebble
// database without the format record, rather than mixing its keys with
// partitions.
//
// DropPartition deletes the partition's entry and range-deletes its prefix
// in one atomic batch: a crash leaves either the whole partition or none of
// it, and the space is reclaimed by Pebble's compactions.
//
// # Guarantees
//
// Capabilities: SnapshotScans and Durable. Every Pebble iterator reads at
// the sequence number current when it was created, so a Scan sees the
// partition exactly as it was when Scan returned, whatever is written,
// deleted or dropped afterwards; Scan pushes the range down as the
// iterator's bounds. Batch is one Pebble batch: atomic, ordered (a later
// operation on a key wins), across partitions.
//
// Writes are synced by default (sync_writes = true): Put, Delete and Batch
// return once the write-ahead log is on stable storage, so an acknowledged
// write survives a crash of the process or of the machine. With
// sync_writes = false a write returns once it is in Pebble's memtable and
// in-process log buffer; it survives Close and a reopen, but a crash, even
// of the process alone, can lose the most recent writes (whole batches,
// never a part of one). That is weaker than RocksDB's sync_writes = false,
// whose writes are in the operating system's cache when they return.
// CreatePartition and DropPartition are always synced.
//
// The database is owned by one process (Capabilities.MultiProcess is
// false): Pebble locks the directory, and a second Open of the same path,
// from this process or another, fails with an error that says the
// database is in use. The checks of a Batch are read and its writes
// applied while the backend's write lock is held exclusively; every other
// write holds it shared, so no write of the process comes between. A
// partition's existence is checked inside the backend's call gate, which
// DropPartition drains.
//
// # Configuration
//
// The [storage.pebble] section of config.toml; every key is optional and
// shown with its default (see Config):
//
//	[storage.pebble]
//	path           = "data/pebble"
//	sync_writes    = true
//	block_cache_mb = 64
//	memtable_mb    = 64
package pebble

import (
	"context"
	"strings"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Name is the name the Pebble backend registers under, and the name of its
// configuration section ([storage.pebble]).
const Name = "pebble"

// Default values of Config, as DefaultConfig returns them.
const (
	DefaultPath         = "data/pebble"
	DefaultBlockCacheMB = 64
	DefaultMemTableMB   = 64
)

// MaxMemTableMB is the largest memtable_mb accepted: Pebble's memtables
// must stay under 4 GiB.
const MaxMemTableMB = 4095

// Config is the [storage.pebble] section of config.toml. Start from
// DefaultConfig: its zero value is not valid.
//
//	[storage.pebble]
//	path           = "data/pebble"
//	sync_writes    = true
//	block_cache_mb = 64
//	memtable_mb    = 64
type Config struct {
	// Path is the directory that holds the database. It is created, with
	// its parents, when missing. Default "data/pebble".
	Path string `toml:"path"`

	// SyncWrites makes every write (Put, Delete, Batch) fsync the
	// write-ahead log before it returns, so that an acknowledged write
	// survives a crash of the process or of the machine; concurrent writers
	// share one fsync. When false a write returns once it is in the
	// memtable and in Pebble's in-process log buffer, which reaches the file
	// when a 32 KiB log block fills, at the next synced write or at Close:
	// it survives Close and a reopen, but a crash, even of the process
	// alone, can lose the last writes (whole batches, never part of one).
	// Default true.
	SyncWrites bool `toml:"sync_writes"`

	// BlockCacheMB is the size of the block cache. At least 1. Default 64.
	BlockCacheMB int `toml:"block_cache_mb"`

	// MemTableMB is the size a memtable reaches before it is flushed to a
	// table file; Pebble starts with small memtables and doubles them up to
	// this size, so an idle database holds far less. 1 to MaxMemTableMB.
	// Default 64.
	MemTableMB int `toml:"memtable_mb"`
}

// DefaultConfig returns the configuration used for every key that the
// [storage.pebble] section leaves out.
func DefaultConfig() Config {
	return Config{
		Path:         DefaultPath,
		SyncWrites:   true,
		BlockCacheMB: DefaultBlockCacheMB,
		MemTableMB:   DefaultMemTableMB,
	}
}

// Validate reports the first value of c that is out of range, as a
// *store.ConfigError naming the key.
func (c Config) Validate() error {
	bad := func(key string, format string, args ...any) error {
		return store.InvalidConfig(Name, key, format, args...)
	}
	switch {
	case strings.TrimSpace(c.Path) == "":
		return bad("path", "is empty; give the directory of the database")
	case c.BlockCacheMB < 1 || c.BlockCacheMB > 1<<20:
		return bad("block_cache_mb", "is %d; use 1 to %d", c.BlockCacheMB, 1<<20)
	case c.MemTableMB < 1 || c.MemTableMB > MaxMemTableMB:
		return bad("memtable_mb", "is %d; use 1 to %d", c.MemTableMB, MaxMemTableMB)
	}
	return nil
}

// Open is the registry Factory of the Pebble backend: it decodes cfg
// strictly over DefaultConfig (an unknown key is an error that names it),
// validates it and opens the database.
func Open(_ context.Context, cfg store.Config) (store.StorageBackend, error) {
	c := DefaultConfig()
	if cfg != nil {
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
	}
	return OpenWith(c)
}

// OpenWith opens (or creates) the database that cfg describes and returns
// it as a StorageBackend. Close it to release the directory.
func OpenWith(cfg Config) (store.StorageBackend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e, err := openEngine(cfg)
	if err != nil {
		return nil, err
	}
	return store.New(e), nil
}

// Register adds the Pebble backend to r under Name.
func Register(r *store.Registry) {
	r.Register(Name, Open)
}
