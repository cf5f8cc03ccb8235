// Package bbolt is the storage backend on bbolt (go.etcd.io/bbolt), the
// pure-Go copy-on-write B+tree in one memory-mapped file, in the tradition
// of LMDB. Partition = bucket.
//
// # Layout
//
// The database is the file kalamdb.db in the configured directory. Each
// partition is a top-level bucket named after it, and holds the
// partition's keys and values as they are: bbolt takes keys of up to 32 KiB
// (bbolt.MaxKeySize), the contract's keys are at most 4 KiB
// (store.MaxKeySize). Bucket names that contain 0x00 are never partition
// names (see store.NewPartition); the bucket 0x00 "kalamdb" holds the layout
// version ("kalamdb-bbolt/1"). Open refuses a file that holds other buckets
// but no version.
//
// Earlier versions, written when the contract allowed keys of up to 64 KiB,
// kept a partition's keys over 32 KiB in a second bucket, the partition's
// name followed by 0x00 "long". This version reads no such bucket: Open
// refuses, with an error wrapping store.ErrUnsupported that names each
// partition and how many such keys it holds, a file in which one holds keys,
// and removes the ones that are empty (ADR-012).
//
// # Guarantees
//
// Capabilities: SnapshotScans and Durable.
//
// Every call is one bbolt transaction: Get, PartitionExists and
// ListPartitions a read-only one, Put, Delete, Batch, CreatePartition and
// DropPartition a read-write one, which bbolt applies atomically and one at
// a time. A Batch is all or nothing across partitions, in order, and checks
// every partition before it writes anything. A range delete finds its keys
// with a cursor and deletes them one by one in the batch's transaction.
//
// With sync_writes = true (the default) a write returns after bbolt has
// fsynced the file, so an acknowledged write survives a crash of the
// process or of the machine. With sync_writes = false (bbolt's NoSync) the
// data is in the operating system's page cache when a write returns: it
// survives a crash of the process but not of the machine, and a machine
// crash can corrupt the file.
//
// A Scan holds a read-only transaction, which is bbolt's snapshot: the
// iterator sees the partition exactly as it was when Scan returned, whatever
// is written, deleted or dropped afterwards, and costs no copy. Key and Value
// return copies owned by the iterator, so nothing the caller holds points
// into the memory map.
//
// # Open iterators and the memory map
//
// bbolt maps the file into memory, and a write that needs the file to grow
// past the mapping must remap it, which waits until every read transaction
// has ended. Left alone, a goroutine that writes while holding an open
// iterator would wait for itself forever. This backend never lets that
// happen:
//
//   - The mapping starts at initial_mmap_mb (default 1024 MiB of address
//     space, not of memory), so below that size writes never remap.
//   - Every write transaction runs with bbolt's MaxSize set just below the
//     size that would force a remap; a write that needs more fails inside
//     bbolt before it touches the mapping, and nothing of it is applied.
//     The backend then blocks new scans, detaches every open iterator (it
//     reads the rest of the iterator's range into memory and ends its
//     transaction, so the iterator keeps its snapshot and its position) and
//     runs the write again, remapping freely.
//
// So writes never deadlock on iterators, iterators keep their snapshot, and
// the price of a long scan over a growing database is the memory of the rest
// of its range, paid only when the file outgrows its mapping. Size
// initial_mmap_mb above the expected database size to keep it at zero.
// Long-lived iterators also keep bbolt from reusing the pages freed since
// they began, so the file grows faster while they are open.
//
// The file is owned by one process (Capabilities.MultiProcess is false):
// bbolt locks it, and a second Open, from this process or another, waits
// lock_timeout_seconds for the lock and then fails with an error that says
// the database is in use. The checks of a Batch are read inside its write
// transaction, before its first write; bbolt runs one write transaction at
// a time, so no other write comes between.
//
// # Configuration
//
// The [storage.bbolt] section of config.toml; every key is optional and
// shown with its default (see Config):
//
//	[storage.bbolt]
//	path                 = "data/bbolt"
//	sync_writes          = true
//	initial_mmap_mb      = 1024
//	lock_timeout_seconds = 5
package bbolt

import (
	"context"
	"strings"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Name is the name the bbolt backend registers under, and the name of its
// configuration section ([storage.bbolt]).
const Name = "bbolt"

// FileName is the name of the database file inside Config.Path.
const FileName = "kalamdb.db"

// Default values of Config, as DefaultConfig returns them.
const (
	DefaultPath               = "data/bbolt"
	DefaultInitialMmapMB      = 1024
	DefaultLockTimeoutSeconds = 5
)

// Limits of Config values.
const (
	// MaxInitialMmapMB is the largest initial_mmap_mb accepted (1 TiB of
	// address space).
	MaxInitialMmapMB = 1 << 20
	// MaxLockTimeoutSeconds is the largest lock_timeout_seconds accepted.
	MaxLockTimeoutSeconds = 3600
)

// Config is the [storage.bbolt] section of config.toml. Start from
// DefaultConfig: its zero value is not valid.
//
//	[storage.bbolt]
//	path                 = "data/bbolt"
//	sync_writes          = true
//	initial_mmap_mb      = 1024
//	lock_timeout_seconds = 5
type Config struct {
	// Path is the directory that holds the database file (FileName). It is
	// created, with its parents, when missing. Default "data/bbolt".
	Path string `toml:"path"`

	// SyncWrites makes every write (Put, Delete, Batch, CreatePartition,
	// DropPartition) fsync the file before it returns. When false a write
	// is in the operating system's cache when it returns: it survives a
	// crash of the process, but a crash of the machine can lose the last
	// writes or corrupt the file. Default true.
	SyncWrites bool `toml:"sync_writes"`

	// InitialMmapMB is the size of the memory map at open, in MiB of
	// address space (pages are only read in as they are used). Below it,
	// writes never have to remap the file, so they never wait for open
	// iterators; see the package documentation. 0 to MaxInitialMmapMB.
	// Default 1024.
	InitialMmapMB int `toml:"initial_mmap_mb"`

	// LockTimeoutSeconds is how long Open waits for the file lock that
	// another process (or another open backend) holds before it fails.
	// 1 to MaxLockTimeoutSeconds. Default 5.
	LockTimeoutSeconds int `toml:"lock_timeout_seconds"`
}

// DefaultConfig returns the configuration used for every key that the
// [storage.bbolt] section leaves out.
func DefaultConfig() Config {
	return Config{
		Path:               DefaultPath,
		SyncWrites:         true,
		InitialMmapMB:      DefaultInitialMmapMB,
		LockTimeoutSeconds: DefaultLockTimeoutSeconds,
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
	case c.InitialMmapMB < 0 || c.InitialMmapMB > maxInitialMmapMB():
		return bad("initial_mmap_mb", "is %d; use 0 to %d", c.InitialMmapMB, maxInitialMmapMB())
	case c.LockTimeoutSeconds < 1 || c.LockTimeoutSeconds > MaxLockTimeoutSeconds:
		return bad("lock_timeout_seconds", "is %d; use 1 to %d", c.LockTimeoutSeconds, MaxLockTimeoutSeconds)
	}
	return nil
}

// maxInitialMmapMB is MaxInitialMmapMB, or less where int cannot hold it
// in bytes (32-bit platforms).
func maxInitialMmapMB() int {
	const maxInt = int(^uint(0) >> 1)
	if maxInt>>20 < MaxInitialMmapMB {
		return maxInt >> 20
	}
	return MaxInitialMmapMB
}

// Open is the registry Factory of the bbolt backend: it decodes cfg strictly
// over DefaultConfig (an unknown key is an error that names it), validates
// it and opens the database.
func Open(_ context.Context, cfg store.Config) (store.StorageBackend, error) {
	c := DefaultConfig()
	if cfg != nil {
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
	}
	return OpenWith(c)
}

// OpenWith opens (or creates) the database that c describes and returns it
// as a StorageBackend. Close it to release the file.
func OpenWith(c Config) (store.StorageBackend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	e, err := openEngine(c)
	if err != nil {
		return nil, err
	}
	return store.New(e), nil
}

// Register adds the bbolt backend to r under Name.
func Register(r *store.Registry) {
	r.Register(Name, Open)
}
