package rocksdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/linxGnu/grocksdb"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// The layout of the database (ADR-010).
//
// Every partition created by this version is a key range of one column
// family, the shared column family "kalamdb/partitions". Each partition has
// an id, taken from a counter that only grows, so an id is never given twice,
// not even to a partition created again under the name of a dropped one.
// The key k of the partition with id n is stored as
//
//	uvarint(n) k
//
// The unsigned varint is self-delimiting, so no partition's prefix is a
// prefix of another's, and a partition's keys are exactly the interval
// [uvarint(n), uvarint(n) with its last byte plus one): the last byte of a
// uvarint is below 0x80. Ids start at 1. RocksDB's "default" column family
// holds the backend's own records:
//
//	0x00 "format"          the layout version (formatVersion)
//	0x00 "next"            the next id to give, 8 bytes big-endian
//	0x00 "part" 0x00 name  the registry: one entry per partition, its id as a uvarint
//
// The registry has a column family of its own, rather than a reserved prefix
// of the shared one, because RocksDB applies max_total_wal_size (max_wal_mb)
// only to a database of more than one column family.
//
// A database written by earlier versions holds each partition x in a column
// family "p/x" of its own (a legacy partition). Such column families are
// opened, read, written and dropped as before, with an empty key prefix;
// new partitions are never created that way.
const formatVersion = "kalamdb-rocksdb/2"

const (
	// metaColumnFamily holds the format record, the id counter and the
	// registry.
	metaColumnFamily = "default"
	// sharedColumnFamily holds the keys of every partition that is not
	// legacy.
	sharedColumnFamily = "kalamdb/partitions"
)

var (
	formatKey  = []byte("\x00format")
	nextKey    = []byte("\x00next")
	partPrefix = []byte("\x00part\x00")
)

// maxID bounds partition ids so that every prefix fits in 8 bytes (a uvarint
// of at most 56 bits), which lets the prefix travel to C as one uint64.
const maxID = 1<<56 - 1

// keyPrefix is a partition's key prefix: n bytes (0 to 8), byte i in bits
// 8i to 8i+7 of b. A legacy partition has the empty prefix.
type keyPrefix struct {
	b uint64
	n int
}

// prefixOf returns the key prefix of the partition with id: its uvarint.
func prefixOf(id uint64) keyPrefix {
	var buf [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(buf[:], id)
	var p keyPrefix
	for i := n - 1; i >= 0; i-- {
		p.b = p.b<<8 | uint64(buf[i])
	}
	p.n = n
	return p
}

// appendTo appends the prefix to dst.
func (p keyPrefix) appendTo(dst []byte) []byte {
	for i := 0; i < p.n; i++ {
		dst = append(dst, byte(p.b>>(8*i)))
	}
	return dst
}

// bytes returns the prefix as a new slice.
func (p keyPrefix) bytes() []byte { return p.appendTo(make([]byte, 0, p.n)) }

// span returns the interval of stored keys of the partition with prefix p:
// [p, p with its last byte plus one). p is a uvarint, whose last byte is
// below 0x80, so the increment never carries.
func (p keyPrefix) span() (lower, upper []byte) {
	lower = p.bytes()
	upper = p.bytes()
	upper[len(upper)-1]++
	return lower, upper
}

// partEntry returns the registry key of the partition called name.
func partEntry(name string) []byte {
	return append(append(make([]byte, 0, len(partPrefix)+len(name)), partPrefix...), name...)
}

// legacyPrefix starts the name of every column family that holds a legacy
// partition.
const legacyPrefix = "p/"

// legacyColumnFamily returns the name of the column family that held p in
// the layout of earlier versions. It and legacyPartitionOf are the one
// place where legacy partitions map to column families.
func legacyColumnFamily(p store.Partition) string { return legacyPrefix + p.Name() }

// legacyPartitionOf returns the legacy partition that column family cf
// holds, or false when cf holds none (RocksDB's "default", or a column
// family this package did not create).
func legacyPartitionOf(cf string) (store.Partition, bool) {
	name, ok := strings.CutPrefix(cf, legacyPrefix)
	if !ok {
		return store.Partition{}, false
	}
	p, err := store.NewPartition(name)
	return p, err == nil
}

// registry is what the shared column family's records say: the partitions
// and their ids, and the next id to give.
type registry struct {
	ids  map[string]uint64
	next uint64
}

// loadRegistry reads the format record, the id counter and the registry
// from the shared column family h. An empty column family (a new database,
// or one written by an earlier version) gets the format record and a
// counter starting at 1, synced; a column family with other data but no
// format record, or a record of another layout, is refused.
func loadRegistry(db *grocksdb.DB, h *grocksdb.ColumnFamilyHandle, path string) (registry, error) {
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	reg := registry{ids: map[string]uint64{}, next: 1}

	format, err := getCopy(db, ro, h, formatKey)
	if err != nil {
		return reg, fmt.Errorf("rocksdb: reading the format record of %s: %w", path, err)
	}
	switch {
	case format == nil:
		empty, err := isEmpty(db, ro, h)
		if err != nil {
			return reg, fmt.Errorf("rocksdb: %s: %w", path, err)
		}
		if !empty {
			return reg, fmt.Errorf("%w: rocksdb: %s holds data in its default column family but no KalamDB format record; it was not written by KalamDB",
				store.ErrInvalidArgument, path)
		}
		wb := grocksdb.NewWriteBatch()
		defer wb.Destroy()
		wb.PutCF(h, formatKey, []byte(formatVersion))
		wb.PutCF(h, nextKey, binary.BigEndian.AppendUint64(nil, reg.next))
		if err := writeSynced(db, wb); err != nil {
			return reg, fmt.Errorf("rocksdb: writing the format record of %s: %w", path, err)
		}
		return reg, nil
	case string(format) != formatVersion:
		return reg, fmt.Errorf("rocksdb: %s holds layout %q; this version reads %q", path, format, formatVersion)
	}

	next, err := getCopy(db, ro, h, nextKey)
	if err != nil {
		return reg, fmt.Errorf("rocksdb: reading the id counter of %s: %w", path, err)
	}
	if next != nil {
		if len(next) != 8 {
			return reg, fmt.Errorf("rocksdb: %s: corrupt id counter (%d bytes)", path, len(next))
		}
		reg.next = max(reg.next, binary.BigEndian.Uint64(next))
	}

	lower, upper := partPrefix, store.PrefixSuccessor(partPrefix)
	ro.SetIterateLowerBound(lower)
	ro.SetIterateUpperBound(upper)
	it := db.NewIteratorCF(ro, h)
	defer it.Close()
	owner := map[uint64]string{}
	for it.Seek(lower); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		name := string(k.Data()[len(partPrefix):])
		val := bytes.Clone(v.Data())
		k.Free()
		v.Free()
		if err := store.ValidatePartitionName(name); err != nil {
			return reg, fmt.Errorf("rocksdb: %s: corrupt registry entry: %w", path, err)
		}
		id, n := binary.Uvarint(val)
		if n <= 0 || n != len(val) || id == 0 || id > maxID {
			return reg, fmt.Errorf("rocksdb: %s: corrupt registry entry of partition %q (id % x)", path, name, val)
		}
		if other, dup := owner[id]; dup {
			return reg, fmt.Errorf("rocksdb: %s: corrupt registry: partitions %q and %q have the same id %d", path, other, name, id)
		}
		owner[id] = name
		reg.ids[name] = id
		// Should the counter ever lag behind (it is written with every
		// entry, so it cannot), never give an id in use.
		reg.next = max(reg.next, id+1)
	}
	if err := it.Err(); err != nil {
		return reg, fmt.Errorf("rocksdb: reading the partition registry of %s: %w", path, err)
	}
	return reg, nil
}

// getCopy returns a copy of the value of key in h, or nil when it is
// missing.
func getCopy(db *grocksdb.DB, ro *grocksdb.ReadOptions, h *grocksdb.ColumnFamilyHandle, key []byte) ([]byte, error) {
	s, err := db.GetCF(ro, h, key)
	if err != nil {
		return nil, err
	}
	defer s.Free()
	if !s.Exists() {
		return nil, nil
	}
	return bytes.Clone(s.Data()), nil
}

// isEmpty reports whether column family h holds no key.
func isEmpty(db *grocksdb.DB, ro *grocksdb.ReadOptions, h *grocksdb.ColumnFamilyHandle) (bool, error) {
	it := db.NewIteratorCF(ro, h)
	defer it.Close()
	it.SeekToFirst()
	if err := it.Err(); err != nil {
		return false, err
	}
	return !it.Valid(), nil
}

// writeSynced writes wb and syncs the write-ahead log before it returns:
// creating and dropping partitions is durable whatever sync_writes says.
func writeSynced(db *grocksdb.DB, wb *grocksdb.WriteBatch) error {
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	wo.SetSync(true)
	return db.Write(wo, wb)
}

// errBothLayouts is the open error of a partition found both as a legacy
// column family and in the registry, which this package never writes.
var errBothLayouts = errors.New("is both a column family of its own and an entry of the partition registry")
