// Package badger is a KalamDB storage backend on Badger
// (github.com/dgraph-io/badger/v4), an embedded LSM key-value store in pure
// Go. It is an example of a backend that lives outside the KalamDB
// repository, written by following docs/backends.md.
//
// # Layout
//
// Partition = a key range of one Badger database, behind a generation: a
// number handed out once and never again. Every key of a partition is
// stored as
//
//	generation (8 bytes, big-endian) ‖ key
//
// Generation 0 is never handed out; its key range holds the registry:
//
//	0 ‖ "format"          the layout version, "kalamdb-badger/1"
//	0 ‖ "next"            the last generation handed out (8 bytes, big-endian)
//	0 ‖ "part/" ‖ name    the generation of the partition called name
//	0 ‖ "purge/" ‖ gen    a dropped generation whose keys are not all deleted
//
// A partition created again after a drop gets a new generation, so it starts
// empty whatever is left of the old one. DropPartition is one transaction
// that removes the registry entry and writes the pending-purge record; it
// then deletes the generation's keys in chunks, one transaction each, the
// last one removing the record. Open finishes every purge that a crash or a
// failure interrupted before it returns.
//
// # Guarantees
//
// Capabilities: SnapshotScans, Durable, and the batch limits of a Badger
// transaction (see Batch limits).
//
// Every write is one Badger transaction, applied all or nothing. A range
// delete finds the keys of its range with an iterator and deletes them one
// by one in the batch's transaction, which holds the engine's write lock
// alone while it runs, so that no write lands in the range between the
// iterator and the commit. A range delete that covers more keys than a Badger
// transaction holds is refused, whole, with store.ErrInvalidArgument.
//
// A Scan holds a read-only transaction, Badger's snapshot (MVCC): the
// iterator sees the partition exactly as it was when Scan returned, whatever
// is written, deleted or dropped afterwards.
//
// With sync_writes = true (the default) a write returns after Badger has
// synced its write-ahead log (and its value log, for large values), so an acknowledged write survives a crash of the
// machine. With false it survives a crash of the process, not of the
// machine.
//
// The directory is owned by one process: Badger locks it, and a second Open
// fails at once with an error that says the database is in use. The backend
// is not MultiProcess.
//
// A batch with checks (store.OpCheckAbsent, store.OpCheckValue) holds the
// engine's write lock exclusively, as a range delete does: its transaction
// reads the checked keys, before any of its writes, and commits with no
// other write in between.
//
// # Batch limits
//
// Badger refuses a transaction (ErrTxnTooBig) that holds DB.MaxBatchCount
// entries, or whose entries' estimated size reaches DB.MaxBatchSize (15 % of
// the memtable). It counts for each entry its key, its value (or a 12-byte
// pointer, for a value of 1 MiB or more, kept in the value log) and 12 bytes,
// and it adds an entry of its own at commit. With the generation in front of
// every key, an operation costs at most 20 bytes beyond its key and value. So
// the backend states MaxBatchOps = MaxBatchCount - 2 and MaxBatchBytes =
// MaxBatchSize - 20 × MaxBatchOps - 65: store.New refuses, whole, any batch
// over either, and any batch within both is one Badger transaction. At the
// default memtable_mb = 64 that is 104,855 operations and 7,969,164 bytes
// (7.6 MiB): a value larger than that cannot be stored.
//
// # Configuration
//
// The [storage.badger] section of config.toml; every key is optional and
// shown with its default (see Config):
//
//	[storage.badger]
//	path        = "data/badger"
//	sync_writes = true
//	memtable_mb = 64
package badger

import (
	"context"
	"fmt"
	"strings"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Name is the name the backend registers under, and the name of its
// configuration section ([storage.badger]).
const Name = "badger"

// Limits of Config.MemTableMB.
const (
	// MinMemTableMB is the smallest memtable_mb: a batch then holds
	// about 1.9 MiB, room for a value of 1 MiB with a key of
	// store.MaxKeySize.
	MinMemTableMB = 16
	// MaxMemTableMB is the largest memtable_mb.
	MaxMemTableMB = 1024
)

// Config is the [storage.badger] section of config.toml. Start from
// DefaultConfig: its zero value is not valid.
type Config struct {
	// Path is the directory of the database, created when missing.
	// Default "data/badger".
	Path string `toml:"path"`

	// SyncWrites makes every write wait until Badger has synced it to
	// disk. Default true.
	SyncWrites bool `toml:"sync_writes"`

	// MemTableMB is the size of a Badger memtable, in MiB. A Badger
	// transaction holds up to 15 % of it, so it also sets the batch
	// limits (store.Capabilities.MaxBatchOps and MaxBatchBytes; at 64,
	// 104,855 operations and 7.6 MiB; see "Batch limits" above).
	// MinMemTableMB to MaxMemTableMB. Default 64.
	MemTableMB int `toml:"memtable_mb"`
}

// DefaultConfig returns the configuration used for every key that the
// [storage.badger] section leaves out.
func DefaultConfig() Config {
	return Config{Path: "data/badger", SyncWrites: true, MemTableMB: 64}
}

// Validate reports the first value of c that is out of range, as a
// *store.ConfigError naming the configuration key.
// `kalamdb-server config check` calls it without opening anything.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Path) == "":
		return store.InvalidConfig(Name, "path", "is empty; give the directory of the database")
	case c.MemTableMB < MinMemTableMB || c.MemTableMB > MaxMemTableMB:
		return store.InvalidConfig(Name, "memtable_mb", "is %d; use %d to %d", c.MemTableMB, MinMemTableMB, MaxMemTableMB)
	}
	return nil
}

// Open is the registry factory: it decodes the section strictly over
// DefaultConfig (an unknown key is an error that names it), validates it
// and opens the database.
func Open(_ context.Context, cfg store.Config) (store.StorageBackend, error) {
	c := DefaultConfig()
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return OpenWith(c)
}

// OpenWith opens (or creates) the database that c describes. Close the
// backend to release the directory.
func OpenWith(c Config) (store.StorageBackend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	e, err := openEngine(c)
	if err != nil {
		return nil, fmt.Errorf("badger: opening %s: %w", c.Path, err)
	}
	return store.New(e), nil
}

// Register adds the backend to r under Name.
func Register(r *store.Registry) { r.Register(Name, Open) }
