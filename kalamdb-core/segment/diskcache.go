package segment

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DiskCacheBlock is the unit of a DiskCache: objects are cached in aligned
// blocks of this many bytes (the last block of an object is shorter).
const DiskCacheBlock = 256 << 10

// coalesceGap is the largest gap, in blocks, between two ranges that a
// prefetch fetches with one request (the gap's blocks are cached too):
// one request for a few more bytes is cheaper than two.
const coalesceGap = 4

// A cache entry file holds a block followed by a trailer: the magic, the
// CRC-32C of the block and its length.
const (
	entryMagic   = "KDBC"
	entryTrailer = 16
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// DiskCache is a local disk cache of byte ranges of the segments of a
// remote Store, bounded in bytes, evicting the least recently used blocks.
// It survives restarts: OpenDiskCache finds the blocks a previous process
// left. An entry is written to a temporary file and renamed into place, and
// checked (length and CRC-32C) every time it is read, so a partial or
// damaged entry is never served: it is removed and fetched again. Segments
// never change, so an entry is valid until its segment is removed through
// the cache's Store. It is safe for concurrent use, not by two processes.
type DiskCache struct {
	dir string
	max int64

	mu    sync.Mutex
	lru   list.List                // of *diskEntry, most recent first
	index map[string]*list.Element // by entry name
	objs  map[string]map[int64]bool
	bytes int64

	hits, misses, evictions, fetches, fetched atomic.Int64
}

type diskEntry struct {
	name  string // "<object key>-<block>"
	obj   string
	block int64
	size  int64 // bytes of the file, trailer included
}

// DiskCacheStats counts a DiskCache's activity.
type DiskCacheStats struct {
	// Hits and Misses count blocks read from the cache and blocks that had
	// to be fetched; Evictions counts blocks removed to stay within the
	// budget.
	Hits, Misses, Evictions int64
	// Fetches counts the requests made to the store behind the cache,
	// FetchedBytes the bytes they returned.
	Fetches, FetchedBytes int64
	// Bytes is the disk space the cache holds, Entries its blocks.
	Bytes   int64
	Entries int
}

// OpenDiskCache opens (creating it if needed) the cache in dir, holding
// at most maxBytes; the blocks a previous process left are kept, the least
// recently written evicted first when they exceed maxBytes, and its
// temporary files removed.
func OpenDiskCache(dir string, maxBytes int64) (*DiskCache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("segment: disk cache %s: the size limit must be positive, got %d", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("segment: disk cache: %w", err)
	}
	c := &DiskCache{dir: dir, max: maxBytes, index: map[string]*list.Element{}, objs: map[string]map[int64]bool{}}
	type found struct {
		e   *diskEntry
		mod time.Time
	}
	var all []found
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(p)
			return nil
		}
		obj, blk, ok := parseEntryName(name)
		if !ok {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		all = append(all, found{&diskEntry{name: name, obj: obj, block: blk, size: fi.Size()}, fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("segment: disk cache %s: %w", dir, err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.Before(all[j].mod) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range all {
		c.addLocked(f.e)
	}
	c.evictLocked()
	return c, nil
}

func parseEntryName(name string) (obj string, block int64, ok bool) {
	obj, b, ok := strings.Cut(name, "-")
	if !ok || len(obj) != 32 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(b, 10, 64)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return obj, n, true
}

// Stats returns the cache's counters.
func (c *DiskCache) Stats() DiskCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return DiskCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Fetches: c.fetches.Load(), FetchedBytes: c.fetched.Load(), Bytes: c.bytes, Entries: c.lru.Len()}
}

func (c *DiskCache) path(name string) string { return filepath.Join(c.dir, name[:2], name) }

func (c *DiskCache) addLocked(e *diskEntry) {
	if _, ok := c.index[e.name]; ok {
		return
	}
	c.index[e.name] = c.lru.PushFront(e)
	if c.objs[e.obj] == nil {
		c.objs[e.obj] = map[int64]bool{}
	}
	c.objs[e.obj][e.block] = true
	c.bytes += e.size
}

func (c *DiskCache) removeLocked(el *list.Element) {
	e := el.Value.(*diskEntry)
	c.lru.Remove(el)
	delete(c.index, e.name)
	if m := c.objs[e.obj]; m != nil {
		delete(m, e.block)
		if len(m) == 0 {
			delete(c.objs, e.obj)
		}
	}
	c.bytes -= e.size
	_ = os.Remove(c.path(e.name))
}

func (c *DiskCache) evictLocked() {
	for c.bytes > c.max && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
		c.evictions.Add(1)
	}
}

// get returns block blk of obj from disk, or nil when it is not cached (or
// its entry is damaged: it is then removed).
func (c *DiskCache) get(obj string, blk, want int64) []byte {
	name := obj + "-" + strconv.FormatInt(blk, 10)
	c.mu.Lock()
	el, ok := c.index[name]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	data, err := os.ReadFile(c.path(name))
	if err == nil && validEntry(data, want) {
		c.hits.Add(1)
		return data[:want]
	}
	c.mu.Lock()
	if el, ok := c.index[name]; ok {
		c.removeLocked(el)
	}
	c.mu.Unlock()
	return nil
}

// validEntry checks an entry file read whole: want bytes of block, then a
// trailer whose magic, length and checksum match them.
func validEntry(data []byte, want int64) bool {
	if int64(len(data)) != want+entryTrailer {
		return false
	}
	t := data[want:]
	return string(t[:4]) == entryMagic && binary.LittleEndian.Uint32(t[4:8]) == crc32.Checksum(data[:want], crcTable) &&
		binary.LittleEndian.Uint64(t[8:16]) == uint64(want)
}

// put stores block blk of obj; a failure only means the block is not
// cached.
func (c *DiskCache) put(obj string, blk int64, data []byte) {
	size := int64(len(data)) + entryTrailer
	if size > c.max {
		return
	}
	name := obj + "-" + strconv.FormatInt(blk, 10)
	sub := filepath.Join(c.dir, name[:2])
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(sub, name+".*.tmp")
	if err != nil {
		return
	}
	var t [entryTrailer]byte
	copy(t[:4], entryMagic)
	binary.LittleEndian.PutUint32(t[4:8], crc32.Checksum(data, crcTable))
	binary.LittleEndian.PutUint64(t[8:16], uint64(len(data)))
	_, werr := f.Write(data)
	if werr == nil {
		_, werr = f.Write(t[:])
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), c.path(name))
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(&diskEntry{name: name, obj: obj, block: blk, size: size})
	c.evictLocked()
}

// forget drops every block of obj.
func (c *DiskCache) forget(obj string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for blk := range c.objs[obj] {
		if el, ok := c.index[obj+"-"+strconv.FormatInt(blk, 10)]; ok {
			c.removeLocked(el)
		}
	}
}

// Wrap returns inner with reads going through the cache. id names inner
// among the stores that share the cache (its URL): objects of two stores
// never share entries.
func (c *DiskCache) Wrap(inner Store, id string) Store {
	return &cachedStore{Store: inner, c: c, id: id}
}

type cachedStore struct {
	Store
	c  *DiskCache
	id string
}

func (s *cachedStore) key(name string) string {
	h := sha256.Sum256([]byte(s.id + "\x00" + name))
	return hex.EncodeToString(h[:16])
}

func (s *cachedStore) Open(ctx context.Context, name string, size int64) (Object, error) {
	o, err := s.Store.Open(ctx, name, size)
	if err != nil {
		return nil, err
	}
	return &cachedObject{inner: o, c: s.c, key: s.key(name), ctx: ctx}, nil
}

func (s *cachedStore) Remove(ctx context.Context, name string) error {
	s.c.forget(s.key(name))
	return s.Store.Remove(ctx, name)
}

// cachedObject reads an object block by block from the cache, fetching the
// missing blocks from the object behind it.
type cachedObject struct {
	inner Object
	c     *DiskCache
	key   string
	ctx   context.Context
}

func (o *cachedObject) Size() int64  { return o.inner.Size() }
func (o *cachedObject) Close() error { return o.inner.Close() }

func (o *cachedObject) blockLen(blk int64) int64 {
	return min(DiskCacheBlock, o.inner.Size()-blk*DiskCacheBlock)
}

func (o *cachedObject) ReadAt(p []byte, off int64) (int, error) {
	size := o.inner.Size()
	if off < 0 {
		return 0, fmt.Errorf("segment: reading at offset %d", off)
	}
	if off >= size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	first, last := off/DiskCacheBlock, (end-1)/DiskCacheBlock
	blocks := make([][]byte, last-first+1)
	var missing []int64
	for b := first; b <= last; b++ {
		if data := o.c.get(o.key, b, o.blockLen(b)); data != nil {
			blocks[b-first] = data
		} else {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		got, err := o.fetch(runs(missing, 0))
		if err != nil {
			return 0, err
		}
		for b, data := range got {
			if b >= first && b <= last {
				blocks[b-first] = data
			}
		}
	}
	n := 0
	for i, data := range blocks {
		start := (first + int64(i)) * DiskCacheBlock
		lo := max(off, start) - start
		hi := min(end, start+int64(len(data))) - start
		n += copy(p[n:], data[lo:hi])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Prefetch implements Prefetcher: the missing blocks of ranges are fetched
// in runs, neighbouring runs (at most coalesceGap blocks apart) in one
// request.
func (o *cachedObject) Prefetch(ctx context.Context, ranges [][2]int64) error {
	size := o.inner.Size()
	want := map[int64]bool{}
	for _, r := range ranges {
		lo, hi := max(r[0], 0), min(r[0]+r[1], size)
		if lo >= hi {
			continue
		}
		for b := lo / DiskCacheBlock; b <= (hi-1)/DiskCacheBlock; b++ {
			want[b] = true
		}
	}
	var missing []int64
	o.c.mu.Lock()
	have := o.c.objs[o.key]
	for b := range want {
		if !have[b] {
			missing = append(missing, b)
		}
	}
	o.c.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	_, err := o.fetch(runs(missing, coalesceGap))
	return err
}

// runs groups sorted block numbers into [first, last] runs, joining runs
// at most gap blocks apart.
func runs(blocks []int64, gap int64) [][2]int64 {
	var out [][2]int64
	for _, b := range blocks {
		if n := len(out); n > 0 && b-out[n-1][1] <= gap+1 {
			out[n-1][1] = b
			continue
		}
		out = append(out, [2]int64{b, b})
	}
	return out
}

// fetch reads each run of blocks with one read of the object behind the
// cache and caches its blocks.
func (o *cachedObject) fetch(rs [][2]int64) (map[int64][]byte, error) {
	got := map[int64][]byte{}
	for _, r := range rs {
		start := r[0] * DiskCacheBlock
		end := min((r[1]+1)*DiskCacheBlock, o.inner.Size())
		buf := make([]byte, end-start)
		o.c.fetches.Add(1)
		n, err := o.inner.ReadAt(buf, start)
		o.c.fetched.Add(int64(n))
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == end-start) {
			return nil, err
		}
		for b := r[0]; b <= r[1]; b++ {
			lo := (b - r[0]) * DiskCacheBlock
			data := buf[lo : lo+o.blockLen(b)]
			o.c.misses.Add(1)
			o.c.put(o.key, b, data)
			got[b] = data
		}
	}
	return got, nil
}
