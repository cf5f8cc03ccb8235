package row

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
)

// Row is one version of a table row: the values of the table's columns, in
// schema order, and the system columns.
type Row struct {
	// Seq is _seq: the row version, unique within the table and increasing
	// with every write.
	Seq int64
	// Updated is _updated: when this version was written, in microseconds
	// since the Unix epoch (UTC).
	Updated int64
	// Deleted is _deleted: the version is a soft-delete tombstone.
	Deleted bool
	// Values holds one Value per column, in the table's column order.
	Values []Value
}

// UpdatedTime returns _updated as a time.Time in UTC.
func (r *Row) UpdatedTime() time.Time { return time.UnixMicro(r.Updated).UTC() }

// Clone returns a copy of r that shares nothing mutable with it.
func (r Row) Clone() Row {
	r.Values = append([]Value(nil), r.Values...)
	return r
}

// Fill extends r.Values with nulls to n values, in place when their
// capacity allows: a version written before columns were added to its
// table has fewer values than the table has columns, and the missing ones
// are null. A row of n values or more is left as it is.
func (r *Row) Fill(n int) {
	k := len(r.Values)
	if k >= n {
		return
	}
	if cap(r.Values) >= n {
		r.Values = r.Values[:n]
		clear(r.Values[k:])
		return
	}
	r.Values = append(r.Values, make([]Value, n-k)...)
}

// Encoding (ADR-004), little-endian:
//
//	offset 0   format version (1)
//	offset 1   flags: bit 0 = _deleted
//	offset 2   _seq, 8 bytes
//	offset 10  _updated, 8 bytes
//	offset 18  column count, uvarint
//	           null bitmap, ceil(count/8) bytes, bit i set = column i is null
//	           each non-null column in order: fixed-width types in 4 (int32),
//	           8 (int64, float64, timestamp) or 1 (bool) bytes; string and
//	           bytes as a uvarint length and the bytes.
const (
	formatV1    = 1
	flagDeleted = 1 << 0
	offFlags    = 1
	offSeq      = 2
	offUpdated  = 10
	headerSize  = 18
)

// MaxColumns is the largest number of columns a row may have.
const MaxColumns = 4096

// EncodedLen returns the exact length of the encoding of r.
func EncodedLen(r *Row) int {
	n := len(r.Values)
	size := headerSize + uvarintLen(uint64(n)) + (n+7)/8
	for i := range r.Values {
		v := &r.Values[i]
		if t := v.Type(); t.fixedWidth() > 0 {
			size += t.fixedWidth()
		} else if t != 0 {
			size += uvarintLen(uint64(len(v.s))) + len(v.s)
		}
	}
	return size
}

// Encode appends the encoding of r to dst. types are the table's column
// types: r must have one value per type, each null or of that type. The
// error wraps core.ErrInvalidRow and gives the column's position; tables
// validate rows (with column names) before they encode them.
func Encode(dst []byte, r *Row, types []Type) ([]byte, error) {
	if len(r.Values) != len(types) {
		return dst, fmt.Errorf("%w: row has %d values for %d columns", core.ErrInvalidRow, len(r.Values), len(types))
	}
	if len(types) > MaxColumns {
		return dst, fmt.Errorf("%w: row has %d columns, the limit is %d", core.ErrInvalidRow, len(types), MaxColumns)
	}
	for i := range r.Values {
		if t := r.Values[i].Type(); t != 0 && t != types[i] {
			return dst, fmt.Errorf("%w: value %d is %s, the column is %s", core.ErrInvalidRow, i, t, types[i])
		}
	}
	size := EncodedLen(r)
	start := len(dst)
	if cap(dst)-start < size {
		grown := make([]byte, start, start+size)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:start+size]
	b := dst[start:]
	b[0] = formatV1
	b[offFlags] = 0
	if r.Deleted {
		b[offFlags] = flagDeleted
	}
	binary.LittleEndian.PutUint64(b[offSeq:], uint64(r.Seq))
	binary.LittleEndian.PutUint64(b[offUpdated:], uint64(r.Updated))
	n := len(r.Values)
	off := headerSize + binary.PutUvarint(b[headerSize:], uint64(n))
	bitmap := b[off : off+(n+7)/8]
	clear(bitmap)
	off += len(bitmap)
	for i := range r.Values {
		v := &r.Values[i]
		switch v.Type() {
		case 0:
			bitmap[i/8] |= 1 << (i % 8)
		case TypeInt32:
			binary.LittleEndian.PutUint32(b[off:], uint32(v.n))
			off += 4
		case TypeInt64, TypeFloat64, TypeTimestamp:
			binary.LittleEndian.PutUint64(b[off:], v.n)
			off += 8
		case TypeBool:
			b[off] = byte(v.n)
			off++
		default: // string, bytes
			off += binary.PutUvarint(b[off:], uint64(len(v.s)))
			off += copy(b[off:], v.s)
		}
	}
	return dst, nil
}

// Decode decodes data into r, reusing r.Values when it has room. It copies
// data once, so r does not refer to data afterwards. types are the table's
// column types; a row encoded with fewer columns (before columns were added)
// decodes with the missing trailing columns null. The error wraps
// core.ErrCorrupt.
func Decode(data []byte, types []Type, r *Row) error {
	return decode(string(data), types, r)
}

// DecodeOwned is Decode without the copy: the string and bytes values of r
// refer to data, which the caller must never modify afterwards. Use it on a
// slice that nothing else holds, such as the result of a backend Get.
func DecodeOwned(data []byte, types []Type, r *Row) error {
	return decode(unsafe.String(unsafe.SliceData(data), len(data)), types, r)
}

// DecodeString is Decode of data held in a string, without a copy.
func DecodeString(data string, types []Type, r *Row) error {
	return decode(data, types, r)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: row: %s", core.ErrCorrupt, fmt.Sprintf(format, args...))
}

func decode(s string, types []Type, r *Row) error {
	if len(s) < headerSize {
		return corrupt("%d bytes is shorter than the %d-byte header", len(s), headerSize)
	}
	if s[0] != formatV1 {
		return corrupt("unknown format version %d", s[0])
	}
	flags := s[offFlags]
	if flags&^flagDeleted != 0 {
		return corrupt("unknown flags 0x%02x", flags)
	}
	n64, w := uvarintString(s[headerSize:])
	if w <= 0 {
		return corrupt("bad column count")
	}
	if n64 > uint64(len(types)) {
		return corrupt("%d columns stored, the table has %d", n64, len(types))
	}
	n := int(n64)
	off := headerSize + w
	bitmapLen := (n + 7) / 8
	if len(s)-off < bitmapLen {
		return corrupt("truncated null bitmap")
	}
	bitmap := s[off : off+bitmapLen]
	off += bitmapLen

	vals := r.Values[:0]
	if cap(vals) < len(types) {
		vals = make([]Value, 0, len(types))
	}
	vals = vals[:len(types)]
	for i := 0; i < n; i++ {
		t := types[i]
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			vals[i] = Value{}
			continue
		}
		if w := t.fixedWidth(); w > 0 {
			if len(s)-off < w {
				return corrupt("column %d (%s) is truncated", i, t)
			}
			var u uint64
			switch w {
			case 8:
				u = le64(s[off:])
			case 4:
				u = uint64(int64(int32(le32(s[off:]))))
			case 1:
				u = uint64(s[off])
				if u > 1 {
					return corrupt("column %d (bool) holds %d", i, u)
				}
			}
			vals[i] = fixed(t, u)
			off += w
			continue
		}
		if t != TypeString && t != TypeBytes {
			return corrupt("column %d has invalid type %d", i, uint8(t))
		}
		l, w := uvarintString(s[off:])
		if w <= 0 || l > uint64(len(s)-off-w) {
			return corrupt("column %d (%s) has a bad length", i, t)
		}
		off += w
		vals[i] = payload(t, s[off:off+int(l)])
		off += int(l)
	}
	if off != len(s) {
		return corrupt("%d trailing bytes", len(s)-off)
	}
	clear(vals[n:])
	r.Seq = int64(le64(s[offSeq:]))
	r.Updated = int64(le64(s[offUpdated:]))
	r.Deleted = flags&flagDeleted != 0
	r.Values = vals
	return nil
}

// PeekSeq returns the _seq of an encoded row without decoding it.
func PeekSeq(data []byte) (int64, error) {
	if len(data) < headerSize || data[0] != formatV1 {
		return 0, corrupt("not an encoded row")
	}
	return int64(binary.LittleEndian.Uint64(data[offSeq:])), nil
}

// PeekMeta returns the system columns of an encoded row without decoding
// its values.
func PeekMeta(data []byte) (seq, updated int64, deleted bool, err error) {
	if len(data) < headerSize || data[0] != formatV1 {
		return 0, 0, false, corrupt("not an encoded row")
	}
	return int64(binary.LittleEndian.Uint64(data[offSeq:])),
		int64(binary.LittleEndian.Uint64(data[offUpdated:])),
		data[offFlags]&flagDeleted != 0, nil
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// uvarintString is binary.Uvarint over a string.
func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
