// Package layout says where kalamdb-core keeps things in a StorageBackend:
// it is the one place that names partitions and the keys of the system
// partitions. See ADR-004 for the reasoning.
//
// Partitions:
//
//   - system:catalog   namespaces, table definitions and the table id counter;
//   - system:sequences the _seq reservation of every table;
//   - system:manifests reserved for the per-table flush manifests;
//   - t:<ns>.<table>.<id> one partition per table, holding its rows.
//
// The table id in a table's partition name makes a dropped and re-created
// table a new partition: a handle on the old table can never write into the
// new one, and an orphan partition left by an interrupted drop is told apart
// from a live table.
package layout

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
)

// The system partitions.
var (
	// Catalog holds namespaces, table definitions and the table id counter.
	Catalog = store.MustPartition("system:catalog")
	// Sequences holds, per table, the first _seq not yet reserved.
	Sequences = store.MustPartition("system:sequences")
	// Manifests holds the manifests of the cold tier: one record per
	// committed Parquet segment of a table (see package flush).
	Manifests = store.MustPartition("system:manifests")
	// Leases holds the leases of background work (package lease): which
	// server flushes, compacts or evicts a table, until when.
	Leases = store.MustPartition("system:leases")
)

// SystemPartitions returns the partitions the catalog creates when it opens.
func SystemPartitions() []store.Partition {
	return []store.Partition{Catalog, Sequences, Manifests, Leases}
}

// TablePrefix starts the name of every table partition.
const TablePrefix = "t:"

// MaxNameLen is the longest namespace or table name, in bytes; with it the
// longest table partition name ("t:" + 50 + "." + 50 + "." + 20 digits) fits
// in store.MaxPartitionNameLen.
const MaxNameLen = 50

// TablePartition returns the partition of the table with id in namespace ns.
// ns and table must be valid names (lowercase letters, digits and '_'); the
// error wraps store.ErrInvalidArgument otherwise.
func TablePartition(id uint64, ns, table string) (store.Partition, error) {
	return store.NewPartition(TablePrefix + ns + "." + table + "." + strconv.FormatUint(id, 10))
}

// ParseTablePartition splits a table partition name into its parts; ok is
// false when p is not a table partition.
func ParseTablePartition(p store.Partition) (id uint64, ns, table string, ok bool) {
	name, found := strings.CutPrefix(p.Name(), TablePrefix)
	if !found {
		return 0, "", "", false
	}
	parts := strings.Split(name, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return 0, "", "", false
	}
	id, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return 0, "", "", false
	}
	return id, parts[0], parts[1], true
}

// Keys of the Catalog partition.
const (
	kindNamespace = "ns"
	kindTable     = "tbl"
	kindMeta      = "meta"
)

// NamespaceKey is the catalog key of namespace ns.
func NamespaceKey(ns string) []byte {
	return keys.AppendString(keys.AppendString(nil, kindNamespace), ns)
}

// NamespacesPrefix prefixes every namespace key.
func NamespacesPrefix() []byte { return keys.AppendString(nil, kindNamespace) }

// TableKey is the catalog key of table ns.table.
func TableKey(ns, table string) []byte {
	return keys.AppendString(TablesPrefix(ns), table)
}

// TablesPrefix prefixes the keys of the tables of namespace ns; with ns ""
// use AllTablesPrefix instead.
func TablesPrefix(ns string) []byte {
	return keys.AppendString(keys.AppendString(nil, kindTable), ns)
}

// AllTablesPrefix prefixes every table key.
func AllTablesPrefix() []byte { return keys.AppendString(nil, kindTable) }

// NextTableIDKey holds the next table id, as 8 big-endian bytes.
func NextTableIDKey() []byte {
	return keys.AppendString(keys.AppendString(nil, kindMeta), "next_table_id")
}

// CatalogVersionKey holds a token that every change of the catalog
// rewrites: a server whose copy of the catalog was read at another token
// reads it again.
func CatalogVersionKey() []byte {
	return keys.AppendString(keys.AppendString(nil, kindMeta), "version")
}

// CreatingKey marks table id as reserved by a create in progress, with the
// Unix time in microseconds (8 big-endian bytes) of the reservation: the
// sweep of orphan partitions leaves the partition of a recent one alone.
func CreatingKey(id uint64) []byte {
	return keys.AppendUint64(keys.AppendString(keys.AppendString(nil, kindMeta), "creating"), id)
}

// CreatingPrefix prefixes every CreatingKey.
func CreatingPrefix() []byte {
	return keys.AppendString(keys.AppendString(nil, kindMeta), "creating")
}

// ParseCreatingKey returns the table id of a CreatingKey.
func ParseCreatingKey(k []byte) (uint64, error) {
	rest, ok := bytes.CutPrefix(k, CreatingPrefix())
	if !ok {
		return 0, fmt.Errorf("key %x is not a create reservation", k)
	}
	id, rest, err := keys.DecodeUint64(rest)
	if err != nil || len(rest) != 0 {
		return 0, fmt.Errorf("key %x is not a create reservation", k)
	}
	return id, nil
}

// SequenceKey is the Sequences key of the table with id.
func SequenceKey(id uint64) []byte { return keys.AppendUint64(nil, id) }

// ParseSequenceKey returns the table id of a Sequences key.
func ParseSequenceKey(k []byte) (uint64, error) {
	id, rest, err := keys.DecodeUint64(k)
	if err != nil || len(rest) != 0 {
		return 0, fmt.Errorf("sequence key %x is not a table id", k)
	}
	return id, nil
}
