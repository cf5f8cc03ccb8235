package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"sync"
	"unsafe"

	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/metadata"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// readFailure, deferred first (so that it runs last), replaces the error of
// a read whose Object failed with that failure: the bytes were not there,
// which says nothing of the file.
func readFailure(rd *storeReader, what string, err *error) {
	if *err == nil {
		return
	}
	if ferr := rd.failed(); ferr != nil {
		*err = fmt.Errorf("segment: reading %s: %w", what, ferr)
	}
}

// corruptOnPanic, deferred before guard.Recover (so that it runs after
// it), reports a panic of the Parquet library, which panics on some
// malformed input, as an error wrapping core.ErrCorrupt.
func corruptOnPanic(what string, err *error) {
	if pe, ok := (*err).(*guard.PanicError); ok {
		*err = fmt.Errorf("%w: %s: the Parquet reader failed: %w", core.ErrCorrupt, what, pe)
	}
}

// Ref names one segment of a Store, with its length when known (the
// manifest records it) or -1.
type Ref struct {
	Store Store
	Name  string
	Size  int64
}

// footerTail is how many bytes at the end of a segment a footer read
// fetches at once from a Store that prefetches: the footer of a segment of
// a few row groups fits.
const footerTail = 64 << 10

// open opens the segment for the Parquet reader. The reader's failures
// are kept in the returned storeReader: the Parquet library does not
// always wrap the errors of its input, and a failing store must not be
// taken for a corrupt file.
func (r Ref) open(ctx context.Context) (Object, *storeReader, *io.SectionReader, error) {
	obj, err := r.Store.Open(ctx, r.Name, r.Size)
	if err != nil {
		return nil, nil, nil, err
	}
	sr := &storeReader{o: obj}
	return obj, sr, io.NewSectionReader(sr, 0, obj.Size()), nil
}

// ReadFooter opens the segment and parses its Parquet footer. The error
// wraps core.ErrCorrupt when the file is not a readable Parquet file.
func ReadFooter(ctx context.Context, r Ref) (md *metadata.FileMetaData, err error) {
	obj, rd, sr, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if p, ok := obj.(Prefetcher); ok {
		n := min(obj.Size(), footerTail)
		if err := p.Prefetch(ctx, [][2]int64{{obj.Size() - n, n}}); err != nil {
			return nil, fmt.Errorf("segment: reading the footer of %s: %w", r.Name, err)
		}
	}
	path := r.Name
	defer readFailure(rd, "the footer of "+path, &err)
	defer corruptOnPanic(path, &err)
	defer guard.Recover("segment: reading "+path, &err)
	pr, err := file.NewParquetReader(sr)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %s: %v", core.ErrCorrupt, path, err)
	}
	return pr.MetaData(), nil
}

// storeReader reads an Object and keeps its first error other than
// io.EOF.
type storeReader struct {
	o   Object
	mu  sync.Mutex
	err error
}

func (s *storeReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.o.ReadAt(p, off)
	if err != nil && err != io.EOF {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

// failed returns the first error of the Object, if any.
func (s *storeReader) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// FooterMeta returns the value of a key of the footer's key-value metadata.
func FooterMeta(md *metadata.FileMetaData, key string) (string, bool) {
	v := md.KeyValueMetadata().FindValue(key)
	if v == nil {
		return "", false
	}
	return *v, true
}

// KeyRange returns the smallest and largest key of row group i of a segment
// of t, from the statistics of the primary-key column: prefix followed by
// the encoded minimum and maximum primary key. ok is false when the file
// has no usable statistics (every key must then be assumed possible).
func KeyRange(md *metadata.FileMetaData, t *catalog.Table, prefix []byte, i int) (lo, hi []byte, ok bool) {
	col := md.Schema.ColumnIndexByName(t.PrimaryKey)
	if col < 0 || i < 0 || i >= len(md.RowGroups) {
		return nil, nil, false
	}
	cc, err := md.RowGroup(i).ColumnChunk(col)
	if err != nil {
		return nil, nil, false
	}
	if set, err := cc.StatsSet(); err != nil || !set {
		return nil, nil, false
	}
	st, err := cc.Statistics()
	if err != nil || st == nil || !st.HasMinMax() {
		return nil, nil, false
	}
	var minV, maxV row.Value
	switch pkType := t.PrimaryKeyColumn().Type; s := st.(type) {
	case *metadata.Int32Statistics:
		if pkType != row.TypeInt32 {
			return nil, nil, false
		}
		minV, maxV = row.Int32(s.Min()), row.Int32(s.Max())
	case *metadata.Int64Statistics:
		switch pkType {
		case row.TypeInt64:
			minV, maxV = row.Int64(s.Min()), row.Int64(s.Max())
		case row.TypeTimestamp:
			minV, maxV = row.TimestampMicros(s.Min()), row.TimestampMicros(s.Max())
		default:
			return nil, nil, false
		}
	case *metadata.ByteArrayStatistics:
		switch pkType {
		case row.TypeString:
			minV, maxV = row.String(string(s.Min())), row.String(string(s.Max()))
		case row.TypeBytes:
			minV, maxV = row.Bytes(s.Min()), row.Bytes(s.Max())
		default:
			return nil, nil, false
		}
	default:
		return nil, nil, false
	}
	lo, err1 := t.AppendKey(append([]byte(nil), prefix...), minV)
	hi, err2 := t.AppendKey(append([]byte(nil), prefix...), maxV)
	if err1 != nil || err2 != nil {
		return nil, nil, false
	}
	return lo, hi, true
}

// RowGroup is one decoded row group of a segment: every version with its
// key, ready for binary search and merging. It is immutable and safe for
// concurrent use; a Cache shares it between readers.
type RowGroup struct {
	n      int
	keys   []byte
	keyOff []int32 // n+1 offsets into keys
	seq    []int64
	upd    []int64
	del    []bool
	cols   []column // one per table column
	size   int64
	// keysOnly: only keys, _seq and _deleted were decoded (ReadKeyIndex).
	keysOnly bool
}

// column holds one decoded column; values of the fixed-width types are in
// num (bits), strings and bytes back to back in data, value i being
// data[off[i]:off[i+1]]; null marks nulls (nil when the column has none). A
// column missing from the file is all null. None of these slices holds
// pointers, so the garbage collector does not scan a cached row group's
// values.
type column struct {
	typ     row.Type
	missing bool
	num     []uint64
	data    []byte
	off     []int64 // n+1 offsets into data (string and bytes columns)
	null    []bool
}

// Len returns the number of versions.
func (g *RowGroup) Len() int { return g.n }

// Key returns the key of version i; the slice is shared and read-only.
func (g *RowGroup) Key(i int) []byte { return g.keys[g.keyOff[i]:g.keyOff[i+1]:g.keyOff[i+1]] }

// Seq returns the _seq of version i.
func (g *RowGroup) Seq(i int) int64 { return g.seq[i] }

// Deleted reports whether version i is a tombstone.
func (g *RowGroup) Deleted(i int) bool { return g.del[i] }

// Size returns the approximate memory the row group holds, in bytes.
func (g *RowGroup) Size() int64 { return g.size }

// Search returns the index of the first version whose key is >= key, and
// whether that key equals key.
func (g *RowGroup) Search(key []byte) (int, bool) {
	i := sort.Search(g.n, func(i int) bool { return bytes.Compare(g.Key(i), key) >= 0 })
	return i, i < g.n && bytes.Equal(g.Key(i), key)
}

// Row fills dst with version i, reusing dst.Values when it has room. The
// values refer to the row group's immutable memory, never to memory that is
// reused. It must not be called on a key index (ReadKeyIndex).
func (g *RowGroup) Row(i int, dst *row.Row) {
	if g.keysOnly {
		panic("segment: Row called on a key index")
	}
	vals := dst.Values
	if n := len(g.cols); len(vals) != n {
		if cap(vals) < n {
			vals = make([]row.Value, n)
		}
		vals = vals[:n]
		// Only now: a store of the slice header is a pointer write,
		// which costs a write barrier while the collector runs.
		dst.Values = vals
	}
	for j := range vals {
		vals[j] = g.cols[j].value(i)
	}
	dst.Seq, dst.Updated, dst.Deleted = g.seq[i], g.upd[i], g.del[i]
}

func (c *column) value(i int) row.Value {
	if c.null != nil && c.null[i] || c.missing {
		return row.Null()
	}
	switch c.typ {
	case row.TypeInt64:
		return row.Int64(int64(c.num[i]))
	case row.TypeString:
		return row.String(c.str(i))
	case row.TypeBytes:
		return row.BytesString(c.str(i))
	case row.TypeFloat64:
		return row.Float64(float64frombits(c.num[i]))
	case row.TypeTimestamp:
		return row.TimestampMicros(int64(c.num[i]))
	case row.TypeBool:
		return row.Bool(c.num[i] != 0)
	default:
		return row.Int32(int32(c.num[i]))
	}
}

// str returns string or bytes value i, sharing the column's immutable
// memory.
func (c *column) str(i int) string {
	lo, hi := c.off[i], c.off[i+1]
	if lo == hi {
		return ""
	}
	return unsafe.String(&c.data[lo], hi-lo)
}

func float64frombits(b uint64) float64 { return *(*float64)(unsafe.Pointer(&b)) }

// ReadRowGroup decodes row group i of the segment r, a segment of
// table t whose keys start with prefix. md is the file's footer (from
// ReadFooter or a Cache). Columns are matched by name: a table column the
// file lacks (added after the file was written) reads as null, a file column
// the table lacks is ignored, and a column whose type changed is an error
// wrapping core.ErrCorrupt.
func ReadRowGroup(ctx context.Context, r Ref, md *metadata.FileMetaData, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	return readGroup(ctx, r, md, t, prefix, i, false)
}

// ReadKeyIndex is ReadRowGroup reduced to what a key lookup needs: only the
// primary-key, _seq and _deleted columns are read and decoded, so Key, Seq,
// Deleted and Search work and Row must not be called.
func ReadKeyIndex(ctx context.Context, r Ref, md *metadata.FileMetaData, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	return readGroup(ctx, r, md, t, prefix, i, true)
}

// CheckFooter verifies that md is the footer of segment seg of the table
// with id tableID: a missing or different identity is an error wrapping
// core.ErrCorrupt.
func CheckFooter(md *metadata.FileMetaData, path string, tableID, seg uint64) error {
	get := func(k string) string { v, _ := FooterMeta(md, k); return v }
	if get(MetaFormat) != strconv.Itoa(FormatVersion) {
		return fmt.Errorf("%w: segment %s has format %q, want %d", core.ErrCorrupt, path, get(MetaFormat), FormatVersion)
	}
	if get(MetaTableID) != strconv.FormatUint(tableID, 10) || get(MetaSegment) != strconv.FormatUint(seg, 10) {
		return fmt.Errorf("%w: segment %s says table %s segment %s, want table %d segment %d",
			core.ErrCorrupt, path, get(MetaTableID), get(MetaSegment), tableID, seg)
	}
	return nil
}

// IsNotExist reports whether err says a file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
