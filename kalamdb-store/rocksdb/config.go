package rocksdb

import (
	"fmt"
	"sort"
	"strings"

	"github.com/linxGnu/grocksdb"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Config is the [storage.rocksdb] section of config.toml. Every field has a
// default (see DefaultConfig) chosen to be safe on a laptop: bounded memory
// whatever the number of partitions, a bounded write-ahead log, and a file
// descriptor budget well under a desktop's usual limit of 1024.
//
//	[storage.rocksdb]
//	path                  = "data/rocksdb"
//	max_open_files        = 512
//	block_cache_mb        = 64
//	write_buffer_mb       = 4
//	total_write_buffer_mb = 64
//	max_wal_mb            = 64
//	compression           = "lz4"
//	sync_writes           = false
//	memtable_bloom        = true
type Config struct {
	// Path is the directory that holds the database. It is created, with
	// its parents, when missing. Default "data/rocksdb".
	Path string `toml:"path"`

	// MaxOpenFiles caps the table files RocksDB keeps open at once; -1 keeps
	// every file open (fastest, but one descriptor per table file). Values
	// from 20 up are accepted. Default 512.
	MaxOpenFiles int `toml:"max_open_files"`

	// BlockCacheMB is the size of the one LRU block cache that every
	// column family, and so every partition, shares; index and filter blocks
	// are charged to it too, so it bounds read memory however many table
	// files exist. At least 1. Default 64.
	BlockCacheMB int `toml:"block_cache_mb"`

	// WriteBufferMB is the size a memtable reaches before it is flushed to a
	// table file. Every partition lives in one shared column family, whose
	// memtable (two at most: one filling, one being flushed) buffers the
	// writes of all of them. A legacy partition (one that an earlier version
	// gave a column family of its own) has memtables of this size or 4 MiB,
	// whichever is smaller. Larger memtables make writes slower here
	// (docs/rocksdb.md: 32 MiB costs puts 17 % and batches 50 %).
	// 1 to 1024. Default 4.
	WriteBufferMB int `toml:"write_buffer_mb"`

	// TotalWriteBufferMB caps the memtables of all column families together
	// (RocksDB's db_write_buffer_size): past it, the largest memtables are
	// flushed. The shared column family's memtables stay under it with the
	// defaults (two of write_buffer_mb); it bounds legacy partitions'
	// memtables, and a write_buffer_mb above half of it. 0 leaves only the
	// per-column-family limit. Default 64.
	TotalWriteBufferMB int `toml:"total_write_buffer_mb"`

	// MaxWALMB bounds the write-ahead log (RocksDB's max_total_wal_size):
	// past it, the column families whose unflushed data keeps the oldest log
	// file alive are flushed, so that neither the registry's column family
	// (written by creates and drops only) nor a legacy partition written once
	// and then left idle keeps old log files forever. At least 1. Default 64.
	MaxWALMB int `toml:"max_wal_mb"`

	// Compression is the block compression of table files: "none",
	// "snappy", "zlib", "lz4", "lz4hc" or "zstd". Default "lz4".
	Compression string `toml:"compression"`

	// SyncWrites makes every write (Put, Delete, Batch) fsync the
	// write-ahead log before it returns. When false (the default) a write
	// is in the operating system's cache when it returns: it survives a
	// crash of the process, but the last writes may be lost if the machine
	// loses power.
	SyncWrites bool `toml:"sync_writes"`

	// MemtableBloom gives each memtable a whole-key Bloom filter of 1 % of
	// write_buffer_mb, so that a Get of a key the memtable lacks, such as
	// the uniqueness check of every insert of a new row, skips the memtable
	// search: inserts of new rows take about a third less time. RocksDB
	// allocates the filter with the memtable: 40 KiB for the shared column
	// family with the default write_buffer_mb, whatever the number of
	// partitions, plus as much for each legacy partition.
	// Default true.
	MemtableBloom bool `toml:"memtable_bloom"`
}

// memtableBloomRatio is the size of a memtable's Bloom filter, as a share of
// the memtable (Config.MemtableBloom): 1 %, about 13 bits per key for
// entries of 150 bytes and 6 for entries of 50.
const memtableBloomRatio = 0.01

// DefaultConfig returns the configuration used for every key that the
// [storage.rocksdb] section leaves out.
func DefaultConfig() Config {
	return Config{
		Path:               "data/rocksdb",
		MaxOpenFiles:       512,
		BlockCacheMB:       64,
		WriteBufferMB:      4,
		TotalWriteBufferMB: 64,
		MaxWALMB:           64,
		Compression:        "lz4",
		MemtableBloom:      true,
	}
}

var compressions = map[string]grocksdb.CompressionType{
	"none":   grocksdb.NoCompression,
	"snappy": grocksdb.SnappyCompression,
	"zlib":   grocksdb.ZLibCompression,
	"lz4":    grocksdb.LZ4Compression,
	"lz4hc":  grocksdb.LZ4HCCompression,
	"zstd":   grocksdb.ZSTDCompression,
}

func compressionNames() string {
	names := make([]string, 0, len(compressions))
	for n := range compressions {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
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
	case c.MaxOpenFiles != -1 && c.MaxOpenFiles < 20:
		return bad("max_open_files", "is %d; use -1 (no limit) or at least 20", c.MaxOpenFiles)
	case c.BlockCacheMB < 1 || c.BlockCacheMB > 1<<20:
		return bad("block_cache_mb", "is %d; use 1 to %d", c.BlockCacheMB, 1<<20)
	case c.WriteBufferMB < 1 || c.WriteBufferMB > 1024:
		return bad("write_buffer_mb", "is %d; use 1 to 1024", c.WriteBufferMB)
	case c.TotalWriteBufferMB < 0 || c.TotalWriteBufferMB > 1<<20:
		return bad("total_write_buffer_mb", "is %d; use 0 (no global limit) to %d", c.TotalWriteBufferMB, 1<<20)
	case c.TotalWriteBufferMB != 0 && c.TotalWriteBufferMB < c.WriteBufferMB:
		return bad("total_write_buffer_mb", "is %d, below write_buffer_mb (%d)", c.TotalWriteBufferMB, c.WriteBufferMB)
	case c.MaxWALMB < 1 || c.MaxWALMB > 1<<20:
		return bad("max_wal_mb", "is %d; use 1 to %d", c.MaxWALMB, 1<<20)
	}
	if _, ok := compressions[c.Compression]; !ok {
		return bad("compression", "is %q; use one of %s", c.Compression, compressionNames())
	}
	return nil
}

// options is the set of RocksDB option objects built from a Config. They
// are destroyed together, after the database is closed.
type options struct {
	db     *grocksdb.Options // database options, and the column-family options of the shared column family
	meta   *grocksdb.Options // column-family options of the registry's column family
	legacy *grocksdb.Options // column-family options of a legacy partition's column family
	bbto   *grocksdb.BlockBasedTableOptions
	cache  *grocksdb.Cache
	read   readOptions // for Get (C read options: see capi.go)
	write  *grocksdb.WriteOptions
}

const mb = 1 << 20

// newOptions translates a validated Config into RocksDB options. Every column
// family (the registry's, the shared one, legacy partitions') gets the same
// table factory, so that all of them share one block cache.
func newOptions(c Config) *options {
	o := &options{
		db:     grocksdb.NewDefaultOptions(),
		meta:   grocksdb.NewDefaultOptions(),
		legacy: grocksdb.NewDefaultOptions(),
		bbto:   grocksdb.NewDefaultBlockBasedTableOptions(),
		cache:  grocksdb.NewLRUCache(uint64(c.BlockCacheMB) * mb),
		read:   newReadOptions(),
		write:  grocksdb.NewDefaultWriteOptions(),
	}

	// Table format: one shared block cache that also holds index and filter
	// blocks (so their memory is bounded by block_cache_mb, not by the
	// number of table files), a Bloom filter so that a Get of a missing key
	// rarely reads a data block.
	o.bbto.SetBlockCache(o.cache)
	o.bbto.SetCacheIndexAndFilterBlocks(true)
	o.bbto.SetCacheIndexAndFilterBlocksWithHighPriority(true)
	o.bbto.SetPinL0FilterAndIndexBlocksInCache(true)
	o.bbto.SetFilterPolicy(grocksdb.NewBloomFilterFull(10))

	// Database-wide.
	o.db.SetCreateIfMissing(true)
	o.db.SetCreateIfMissingColumnFamilies(true)
	o.db.SetMaxOpenFiles(c.MaxOpenFiles)
	o.db.SetMaxBackgroundJobs(2)
	o.db.SetDbWriteBufferSize(uint64(c.TotalWriteBufferMB) * mb)
	o.db.SetMaxTotalWalSize(uint64(c.MaxWALMB) * mb)
	o.db.SetKeepLogFileNum(4)
	o.db.SetMaxLogFileSize(8 * mb)
	o.db.SetMaxManifestFileSize(64 * mb)
	// The informational log prints every option of every column family at
	// open; with hundreds of partitions that is megabytes per start.
	o.db.SetInfoLogLevel(grocksdb.WarnInfoLogLevel)

	// Per column family: the shared one, and each legacy partition's with
	// memtables of at most legacyWriteBufferMB.
	o.setColumnFamily(o.db, c, c.WriteBufferMB)
	o.setColumnFamily(o.legacy, c, min(c.WriteBufferMB, legacyWriteBufferMB))

	// The registry's column family: a few bytes per partition, written by
	// creates and drops only. A small memtable without a Bloom filter, the
	// shared table factory.
	o.meta.SetBlockBasedTableFactory(o.bbto)
	o.meta.SetWriteBufferSize(1 * mb)
	o.meta.SetMaxWriteBufferNumber(2)
	o.meta.SetCompression(compressions[c.Compression])

	o.write.SetSync(c.SyncWrites)
	return o
}

// legacyWriteBufferMB bounds the memtables of a legacy partition's column
// family: the default of the versions that gave every partition one, so
// that a database of many legacy partitions keeps the memory it had (a
// memtable Bloom filter is 1 % of the memtable, allocated for every column
// family, idle or not).
const legacyWriteBufferMB = 4

// setColumnFamily sets the options of a column family that holds
// partitions, with memtables of writeBufferMB.
func (o *options) setColumnFamily(opts *grocksdb.Options, c Config, writeBufferMB int) {
	opts.SetBlockBasedTableFactory(o.bbto)
	// The memtable arena grows in blocks of 1/8 of the write buffer (1 MiB
	// at most), allocated on first write.
	opts.SetWriteBufferSize(uint64(writeBufferMB) * mb)
	opts.SetMaxWriteBufferNumber(2)
	opts.SetLevelCompactionDynamicLevelBytes(true)
	opts.SetCompression(compressions[c.Compression])
	if c.MemtableBloom {
		// The filter is allocated from the memtable's arena when the
		// memtable is created; with the arena's default block that block
		// would be resident for every column family, idle legacy
		// partitions included. With 64 KiB blocks an idle column family
		// costs the filter and little more (docs/rocksdb.md).
		opts.SetMemtableWholeKeyFiltering(true)
		opts.SetMemTablePrefixBloomSizeRatio(memtableBloomRatio)
		opts.SetArenaBlockSize(64 << 10)
	}
}

// destroy frees every option object; the database must be closed.
func (o *options) destroy() {
	o.read.destroy()
	o.write.Destroy()
	o.db.Destroy()
	o.meta.Destroy()
	o.legacy.Destroy()
	o.bbto.Destroy()
	o.cache.Destroy()
}
