package segment

import (
	"container/list"
	"context"
	"sync"

	"github.com/apache/arrow/go/v17/parquet/metadata"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
)

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

// Footer returns the parsed footer of segment r, reading it on first use.
func (c *Cache) Footer(ctx context.Context, r Ref) (*metadata.FileMetaData, error) {
	path := r.Name
	c.mu.Lock()
	if e, ok := c.footers[path]; ok {
		c.footerLRU.MoveToFront(e)
		md := e.Value.(*footerEntry).md
		c.mu.Unlock()
		return md, nil
	}
	c.mu.Unlock()
	md, err := ReadFooter(ctx, r)
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

// RowGroup returns row group i of segment r, decoding it on a miss; see
// ReadRowGroup.
func (c *Cache) RowGroup(ctx context.Context, r Ref, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	return c.group(ctx, &c.groups, r, t, prefix, i, false)
}

// KeyIndex returns the key index of row group i of segment r, decoding it
// on a miss; see ReadKeyIndex. A cached full row group serves as its own
// key index.
func (c *Cache) KeyIndex(ctx context.Context, r Ref, t *catalog.Table, prefix []byte, i int) (*RowGroup, error) {
	c.mu.Lock()
	if e, ok := c.groups.m[groupKey{r.Name, i}]; ok {
		g := e.Value.(*groupEntry).g
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()
	return c.group(ctx, &c.keys, r, t, prefix, i, true)
}

func (c *Cache) group(ctx context.Context, lru *groupLRU, r Ref, t *catalog.Table, prefix []byte, i int, keysOnly bool) (*RowGroup, error) {
	k := groupKey{r.Name, i}
	c.mu.Lock()
	if g := lru.get(k); g != nil {
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()
	md, err := c.Footer(ctx, r)
	if err != nil {
		return nil, err
	}
	g, err := readGroup(ctx, r, md, t, prefix, i, keysOnly)
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
