package segment

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
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

// corruptOnPanic, deferred before guard.Recover (so that it runs after
// it), reports a panic of the Parquet library, which panics on some
// malformed input, as an error wrapping core.ErrCorrupt.
func corruptOnPanic(what string, err *error) {
	if pe, ok := (*err).(*guard.PanicError); ok {
		*err = fmt.Errorf("%w: %s: the Parquet reader failed: %w", core.ErrCorrupt, what, pe)
	}
}

// ReadFooter opens path and parses its Parquet footer. The error wraps
// core.ErrCorrupt when the file is not a readable Parquet file.
func ReadFooter(fsys FS, path string) (md *metadata.FileMetaData, err error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: opening %s: %w", path, err)
	}
	defer f.Close()
	defer corruptOnPanic(path, &err)
	defer guard.Recover("segment: reading "+path, &err)
	pr, err := file.NewParquetReader(f)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %s: %v", core.ErrCorrupt, path, err)
	}
	return pr.MetaData(), nil
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

// ReadRowGroup decodes row group i of the segment at path, a segment of
// table t whose keys start with prefix. md is the file's footer (from
// ReadFooter or a Cache). Columns are matched by name: a table column the
// file lacks (added after the file was written) reads as null, a file column
// the table lacks is ignored, and a column whose type changed is an error
// wrapping core.ErrCorrupt.
func ReadRowGroup(ctx context.Context, fsys FS, path string, md *metadata.FileMetaData, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	return readGroup(ctx, fsys, path, md, t, prefix, i, false)
}

// ReadKeyIndex is ReadRowGroup reduced to what a key lookup needs: only the
// primary-key, _seq and _deleted columns are read and decoded, so Key, Seq,
// Deleted and Search work and Row must not be called.
func ReadKeyIndex(ctx context.Context, fsys FS, path string, md *metadata.FileMetaData, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	return readGroup(ctx, fsys, path, md, t, prefix, i, true)
}

// Cache keeps parsed footers, decoded row groups and key indexes of
// segment files, so that repeated reads neither re-parse footers nor
// re-decode hot data. Footers are kept for up to a number of files, row
// groups and key indexes each up to a byte budget, each evicting the least
// recently used. It is safe for concurrent use.
type Cache struct {
	mu         sync.Mutex
	maxFooters int
	footers    map[string]*list.Element
	footerLRU  list.List
	groups     groupLRU
	keys       groupLRU

	footerReads int64
}

// groupLRU is a byte-bounded LRU of decoded row groups; callers hold
// Cache.mu.
type groupLRU struct {
	max          int64
	bytes        int64
	m            map[groupKey]*list.Element
	l            list.List
	hits, misses int64
}

func (c *groupLRU) get(k groupKey) *RowGroup {
	if e, ok := c.m[k]; ok {
		c.l.MoveToFront(e)
		c.hits++
		return e.Value.(*groupEntry).g
	}
	c.misses++
	return nil
}

func (c *groupLRU) put(k groupKey, g *RowGroup) *RowGroup {
	if g.size > c.max {
		return g
	}
	if e, ok := c.m[k]; ok {
		return e.Value.(*groupEntry).g
	}
	c.m[k] = c.l.PushFront(&groupEntry{key: k, g: g})
	c.bytes += g.size
	for c.bytes > c.max {
		old := c.l.Back()
		c.l.Remove(old)
		ge := old.Value.(*groupEntry)
		delete(c.m, ge.key)
		c.bytes -= ge.g.size
	}
	return g
}

func (c *groupLRU) forget(path string) {
	for e := c.l.Front(); e != nil; {
		next := e.Next()
		if ge := e.Value.(*groupEntry); ge.key.path == path {
			c.l.Remove(e)
			delete(c.m, ge.key)
			c.bytes -= ge.g.size
		}
		e = next
	}
}

type groupKey struct {
	path string
	i    int
}

type footerEntry struct {
	path string
	md   *metadata.FileMetaData
}

type groupEntry struct {
	key groupKey
	g   *RowGroup
}

// NewCache returns a cache of up to maxFooters parsed footers, groupBytes
// of decoded row groups and keyBytes of key indexes (0 disables either).
func NewCache(maxFooters int, groupBytes, keyBytes int64) *Cache {
	if maxFooters < 1 {
		maxFooters = 1
	}
	return &Cache{maxFooters: maxFooters, footers: map[string]*list.Element{},
		groups: groupLRU{max: groupBytes, m: map[groupKey]*list.Element{}},
		keys:   groupLRU{max: keyBytes, m: map[groupKey]*list.Element{}}}
}

// CacheStats counts cache activity.
type CacheStats struct {
	// FooterReads is how many footers were read from files.
	FooterReads int64
	// GroupHits and GroupMisses count row-group lookups; GroupBytes is the
	// memory held by cached row groups.
	GroupHits, GroupMisses int64
	GroupBytes             int64
	// KeyHits and KeyMisses count key-index lookups; KeyBytes is the
	// memory held by cached key indexes.
	KeyHits, KeyMisses int64
	KeyBytes           int64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{FooterReads: c.footerReads,
		GroupHits: c.groups.hits, GroupMisses: c.groups.misses, GroupBytes: c.groups.bytes,
		KeyHits: c.keys.hits, KeyMisses: c.keys.misses, KeyBytes: c.keys.bytes}
}

// Footer returns the parsed footer of path, reading it on first use.
func (c *Cache) Footer(fsys FS, path string) (*metadata.FileMetaData, error) {
	c.mu.Lock()
	if e, ok := c.footers[path]; ok {
		c.footerLRU.MoveToFront(e)
		md := e.Value.(*footerEntry).md
		c.mu.Unlock()
		return md, nil
	}
	c.mu.Unlock()
	md, err := ReadFooter(fsys, path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.footerReads++
	if e, ok := c.footers[path]; ok {
		return e.Value.(*footerEntry).md, nil
	}
	c.footers[path] = c.footerLRU.PushFront(&footerEntry{path: path, md: md})
	for c.footerLRU.Len() > c.maxFooters {
		old := c.footerLRU.Back()
		c.footerLRU.Remove(old)
		delete(c.footers, old.Value.(*footerEntry).path)
	}
	return md, nil
}

// RowGroup returns row group i of the segment at path, decoding it on a
// miss; see ReadRowGroup.
func (c *Cache) RowGroup(ctx context.Context, fsys FS, path string, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	return c.group(ctx, &c.groups, fsys, path, t, prefix, i, false)
}

// KeyIndex returns the key index of row group i of the segment at path,
// decoding it on a miss; see ReadKeyIndex. A cached full row group serves
// as its own key index.
func (c *Cache) KeyIndex(ctx context.Context, fsys FS, path string, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	c.mu.Lock()
	if e, ok := c.groups.m[groupKey{path, i}]; ok {
		g := e.Value.(*groupEntry).g
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()
	return c.group(ctx, &c.keys, fsys, path, t, prefix, i, true)
}

func (c *Cache) group(ctx context.Context, lru *groupLRU, fsys FS, path string, t *catalog.Table, prefix []byte, i int, keysOnly bool) (*RowGroup, error) {
	k := groupKey{path, i}
	c.mu.Lock()
	if g := lru.get(k); g != nil {
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()
	md, err := c.Footer(fsys, path)
	if err != nil {
		return nil, err
	}
	g, err := readGroup(ctx, fsys, path, md, t, prefix, i, keysOnly)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return lru.put(k, g), nil
}

// Forget drops what the cache holds of path (call it when the file is
// removed).
func (c *Cache) Forget(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.footers[path]; ok {
		c.footerLRU.Remove(e)
		delete(c.footers, path)
	}
	c.groups.forget(path)
	c.keys.forget(path)
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
