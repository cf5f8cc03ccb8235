package rocksdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Batch writes are encoded in Go straight into RocksDB's WriteBatch
// representation, the format of its write-ahead log records, and handed to
// RocksDB in one C call (kdb_write_rep) that builds the batch from it,
// writes it and frees it. Building the batch through grocksdb instead costs
// a cgo call per operation.
//
// The representation is a 12-byte header (an 8-byte sequence number,
// filled in by RocksDB, and a 4-byte little-endian record count), then one
// record per operation: a type byte, the column family id as a varint32
// (for the column-family variants of the types), then each field as a
// varint32 length and its bytes. A key field is the partition's key prefix
// followed by the key (see layout.go). TestBatchRepMatchesGrocksdb checks
// the encoding against the batches grocksdb builds, byte for byte.
const (
	repHeader = 12

	// RocksDB's ValueType codes (db/dbformat.h) for records in the default
	// column family and in another one.
	typeDeletion                  = 0x0
	typeValue                     = 0x1
	typeColumnFamilyDeletion      = 0x4
	typeColumnFamilyValue         = 0x5
	typeColumnFamilyRangeDeletion = 0xE
	typeRangeDeletion             = 0xF
)

// repPool holds encoding buffers; buffers above maxPooledRep are left to
// the garbage collector rather than kept.
var repPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledRep = 1 << 20

// appendType appends the type of a record (the column-family variant unless
// cf is 0) and, for the variant, the column family.
func appendType(rep []byte, cf uint32, plain, inCF byte) []byte {
	if cf == 0 {
		return append(rep, plain)
	}
	return binary.AppendUvarint(append(rep, inCF), uint64(cf))
}

// appendKey appends a key field: its length, then pfx and key.
func appendKey(rep []byte, pfx keyPrefix, key []byte) []byte {
	rep = binary.AppendUvarint(rep, uint64(pfx.n+len(key)))
	return append(pfx.appendTo(rep), key...)
}

// appendValue appends a value field: its length, then its bytes.
func appendValue(rep []byte, v []byte) []byte {
	return append(binary.AppendUvarint(rep, uint64(len(v))), v...)
}

// encodeBatch appends the WriteBatch representation of the writes of ops
// to rep, looking every partition up in parts (once per run of operations
// on one partition), the partitions of checks too; it fails, naming the
// operation, on the first missing partition. Checks write nothing: the
// caller evaluates them (Batch).
func encodeBatch(rep []byte, parts *store.PartitionMap[part], ops []store.Operation) ([]byte, error) {
	if len(ops) > math.MaxUint32 {
		return rep, fmt.Errorf("%w: a batch of %d operations; RocksDB writes at most %d at once",
			store.ErrInvalidArgument, len(ops), uint64(math.MaxUint32))
	}
	start := len(rep)
	rep = append(rep, make([]byte, repHeader)...)
	var (
		name   string
		cf     uint32
		pfx    keyPrefix
		have   bool
		writes uint32
	)
	for i := range ops {
		op := &ops[i]
		if !have || op.Partition.Name() != name {
			name = op.Partition.Name()
			pt, ok := parts.Get(name)
			if !ok {
				return rep, fmt.Errorf("batch operation %d: %w", i, missing(op.Partition))
			}
			cf, pfx, have = pt.cf, pt.prefix, true
		}
		writes++
		switch op.Kind {
		case store.OpCheckAbsent, store.OpCheckValue:
			writes--
		case store.OpPut:
			rep = appendType(rep, cf, typeValue, typeColumnFamilyValue)
			rep = appendValue(appendKey(rep, pfx, op.Key), op.Value)
		case store.OpDelete:
			rep = appendKey(appendType(rep, cf, typeDeletion, typeColumnFamilyDeletion), pfx, op.Key)
		case store.OpDeleteRange:
			rep = appendType(rep, cf, typeRangeDeletion, typeColumnFamilyRangeDeletion)
			rep = appendKey(appendKey(rep, pfx, op.Key), pfx, op.End)
		default:
			return rep, fmt.Errorf("%w: batch operation %d has kind %v", store.ErrInvalidArgument, i, op.Kind)
		}
	}
	binary.LittleEndian.PutUint32(rep[start+8:], writes)
	return rep, nil
}
