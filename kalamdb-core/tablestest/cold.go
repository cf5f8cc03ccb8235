package tablestest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// memColdTier is a cold tier held in memory, attached the way production
// attaches the Parquet tier (tables.Options.ColdTier): every user and
// shared table gets its own memSource when its store opens.
type memColdTier struct {
	mu      sync.Mutex
	sources map[uint64]*memSource // by table id
}

func newMemColdTier() *memColdTier { return &memColdTier{sources: map[uint64]*memSource{}} }

// of returns the memSource of table t.
func (c *memColdTier) of(t *catalog.Table) *memSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.sources[t.ID]
	if m == nil {
		m = newMemSource()
		c.sources[t.ID] = m
	}
	return m
}

// ColdSource implements tables.ColdTier.
func (c *memColdTier) ColdSource(t *catalog.Table) (tables.Source, error) { return c.of(t), nil }

// ChangeSchema implements tables.ColdTier: a memSource keeps decoded rows,
// which read a column added later as null.
func (c *memColdTier) ChangeSchema(_ *catalog.Table, change func() (*catalog.Table, error)) (*catalog.Table, error) {
	return change()
}

// coldOf returns the cold tier of s's table (the env must have one).
func (e *env) coldOf(s rowStore) *memSource {
	e.t.Helper()
	require.NotNil(e.t, e.cold, "the env has no cold tier")
	return e.cold.of(tableOf(s))
}

// memSource is a cold tier held in memory: what a flush target looks like
// to the table stores. It keeps the newest version per key.
type memSource struct {
	mu   sync.RWMutex
	rows map[string]row.Row
	// failAt, when positive, makes a scan fail at its failAt-th version.
	failAt int
}

func newMemSource() *memSource { return &memSource{rows: map[string]row.Row{}} }

func (m *memSource) put(key []byte, r row.Row) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.rows[string(key)]; !ok || r.Seq > old.Seq {
		m.rows[string(key)] = r.Clone()
	}
}

func (m *memSource) Lookup(_ context.Context, key []byte) (row.Row, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.rows[string(key)]
	return r.Clone(), ok, nil
}

func (m *memSource) Scan(_ context.Context, prefix, start []byte, exclusive bool) (tables.VersionIter, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var ks []string
	for k := range m.rows {
		if !strings.HasPrefix(k, string(prefix)) {
			continue
		}
		if c := strings.Compare(k, string(start)); len(start) > 0 && (c < 0 || c == 0 && exclusive) {
			continue
		}
		ks = append(ks, k)
	}
	slices.Sort(ks)
	it := &memIter{i: -1, failAt: m.failAt}
	for _, k := range ks {
		it.keys = append(it.keys, []byte(k))
		it.rows = append(it.rows, m.rows[k].Clone())
	}
	return it, nil
}

type memIter struct {
	keys   [][]byte
	rows   []row.Row
	i      int
	failAt int
	err    error
}

// errColdRead is the failure of a memSource scan with failAt set.
var errColdRead = errors.New("cold read failed")

func (it *memIter) Next() bool {
	if it.err != nil {
		return false
	}
	it.i++
	if it.failAt > 0 && it.i+1 == it.failAt {
		it.err = errColdRead
		return false
	}
	return it.i < len(it.keys)
}
func (it *memIter) Key() []byte   { return it.keys[it.i] }
func (it *memIter) Seq() int64    { return it.rows[it.i].Seq }
func (it *memIter) Deleted() bool { return it.rows[it.i].Deleted }
func (it *memIter) Row(dst *row.Row) error {
	*dst = it.rows[it.i].Clone()
	return nil
}
func (it *memIter) Err() error   { return it.err }
func (it *memIter) Close() error { return it.err }

// key returns the buffer key of pk in s.
func key(t *testing.T, s rowStore, pk int64) []byte {
	t.Helper()
	k, err := s.Buffer().Prefix(s.user())
	require.NoError(t, err)
	tbl := tableOf(s)
	k, err = tbl.AppendKey(k, row.Int64(pk))
	require.NoError(t, err)
	return k
}

func tableOf(s rowStore) *catalog.Table {
	switch v := s.(type) {
	case userView:
		return v.s.Table()
	case sharedView:
		return v.Table()
	}
	panic("unknown store")
}

// flushOnce moves every buffered version of s to cold the way a flush does:
// copy, then delete from the buffer the versions that did not change.
func flushOnce(t *testing.T, e *env, s rowStore, cold *memSource) int {
	t.Helper()
	n, err := flush(e.ctx, s, cold)
	require.NoError(t, err)
	return n
}

func flush(ctx context.Context, s rowStore, cold *memSource) (int, error) {
	buf := s.Buffer()
	it, err := buf.Versions(ctx, s.user())
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var refs []tables.VersionRef
	for it.Next() {
		var r row.Row
		if err := it.Row(&r); err != nil {
			return 0, err
		}
		k := append([]byte(nil), it.Key()...)
		cold.put(k, r)
		refs = append(refs, tables.VersionRef{Key: k, Seq: r.Seq})
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	return buf.DeleteIfUnchanged(ctx, refs)
}

// testColdSourceMerge adds a cold tier and checks that reads merge it with
// the buffer: newest _seq wins, tombstones hide, uniqueness spans both.
func testColdSourceMerge(t *testing.T, e *env, s rowStore) {
	cold := e.coldOf(s)
	_, err := s.Insert(e.ctx, sample(1), sample(2), sample(3), sample(4), sample(5))
	require.NoError(t, err)
	require.Equal(t, 5, flushOnce(t, e, s, cold), "everything moved to cold")

	// Rows living only in the cold tier are visible.
	r, err := s.Get(e.ctx, row.Int64(3))
	require.NoError(t, err)
	assertValues(t, sample(3), r.Values)
	assert.Equal(t, []int64{1, 2, 3, 4, 5}, ids(scanAll(t, e, s, 2)))
	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n)

	// Uniqueness spans both tiers.
	_, err = s.Insert(e.ctx, sample(2))
	assert.ErrorIs(t, err, core.ErrDuplicateKey)

	// A newer buffered version wins; a buffered tombstone hides the cold row.
	_, err = s.Update(e.ctx, row.Int64(2), map[string]row.Value{"body": row.String("hot")})
	require.NoError(t, err)
	require.NoError(t, s.Delete(e.ctx, row.Int64(4)))
	_, err = s.Insert(e.ctx, sample(6))
	require.NoError(t, err)
	r, err = s.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)
	assert.Equal(t, "hot", r.Values[colBody].Str())
	_, err = s.Get(e.ctx, row.Int64(4))
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	all := scanAll(t, e, s, 2)
	assert.Equal(t, []int64{1, 2, 3, 5, 6}, ids(all), "paging across both tiers")
	assert.Equal(t, "hot", all[1].Values[colBody].Str())
	n, err = s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n)

	// A cold version newer than the buffered one wins (newest _seq, not the
	// tier, decides), and a cold tombstone hides an older buffered row.
	hot, err := s.Get(e.ctx, row.Int64(6))
	require.NoError(t, err)
	newer := hot.Clone()
	newer.Seq += 1000
	newer.Values[colBody] = row.String("cold and newer")
	cold.put(key(t, s, 6), newer)
	r, err = s.Get(e.ctx, row.Int64(6))
	require.NoError(t, err)
	assert.Equal(t, "cold and newer", r.Values[colBody].Str())
	tomb := hot.Clone()
	tomb.Seq += 2000
	tomb.Deleted = true
	cold.put(key(t, s, 6), tomb)
	_, err = s.Get(e.ctx, row.Int64(6))
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	assert.Equal(t, []int64{1, 2, 3, 5}, ids(scanAll(t, e, s, 3)))

	// Deleting a row that lives only in the cold tier writes a tombstone.
	require.NoError(t, s.Delete(e.ctx, row.Int64(5)))
	assert.True(t, bufferVersion(t, e, s, row.Int64(5)).Deleted)
	assert.Equal(t, []int64{1, 2, 3}, ids(scanAll(t, e, s, 1)))
	_, err = s.Insert(e.ctx, sample(5))
	require.NoError(t, err, "a key deleted in both tiers can be inserted again")
}

// testColdSourceError checks that a cold tier's failure in the middle of a
// scan fails the scan, whether the buffer still has rows to merge at that
// point or is already exhausted (the scan then reads the cold tier alone).
func testColdSourceError(t *testing.T, e *env, s rowStore) {
	cold := e.coldOf(s)
	var batch [][]row.Value
	for id := int64(1); id <= 20; id++ {
		batch = append(batch, sample(id))
	}
	_, err := s.Insert(e.ctx, batch...)
	require.NoError(t, err)
	require.Equal(t, 20, flushOnce(t, e, s, cold))
	_, err = s.Insert(e.ctx, sample(30))
	require.NoError(t, err)
	// Buffered rows below, among and above the cold ones.
	_, err = s.Update(e.ctx, row.Int64(2), map[string]row.Value{"body": row.String("hot")})
	require.NoError(t, err)
	// 21: the cold tier fails where it would have ended.
	for _, failAt := range []int{1, 2, 3, 10, 20, 21} {
		cold.failAt = failAt
		_, err := s.Scan(e.ctx, tables.ScanOptions{Limit: 100})
		require.ErrorIs(t, err, errColdRead, "cold scan failing at version %d", failAt)
		_, err = s.Count(e.ctx)
		require.ErrorIs(t, err, errColdRead, "cold count failing at version %d", failAt)
	}
	cold.failAt = 0
	page, err := s.Scan(e.ctx, tables.ScanOptions{Limit: 100})
	require.NoError(t, err)
	assert.Len(t, page.Rows, 21)
}

// testConcurrentFlush runs writers against a flusher that keeps copying the
// buffer to a cold tier and deleting what did not change: no write may be
// lost, whatever the interleaving.
func testConcurrentFlush(t *testing.T, e *env, s rowStore) {
	cold := e.coldOf(s)
	const keys, rounds, writers = 12, 30, 3
	for k := range keys {
		_, err := s.Insert(e.ctx, sample(int64(k)))
		require.NoError(t, err)
	}
	var mu sync.Mutex
	last := map[int64]row.Row{} // newest write per key, by _seq
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				k := int64((w*7 + i) % keys)
				got, err := s.Update(e.ctx, row.Int64(k), map[string]row.Value{"body": row.String("w" + itoa(int64(w)) + "r" + itoa(int64(i)))})
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				if got.Seq > last[k].Seq {
					last[k] = got
				}
				mu.Unlock()
			}
		})
	}
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for range 20 {
			if _, err := flush(e.ctx, s, cold); !assert.NoError(t, err) {
				return
			}
		}
	}()
	wg.Wait()
	<-flushed
	flushOnce(t, e, s, cold)
	for k, want := range last {
		got, err := s.Get(e.ctx, row.Int64(k))
		require.NoError(t, err)
		assert.Equal(t, want.Seq, got.Seq, "key %d: the newest write survives the flushes", k)
		assert.Equal(t, want.Values[colBody].Str(), got.Values[colBody].Str())
	}
	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(keys), n)
	page, err := s.Scan(e.ctx, tables.ScanOptions{})
	require.NoError(t, err)
	assert.True(t, slices.IsSortedFunc(page.Rows, func(a, b row.Row) int {
		return bytes.Compare(key(t, s, a.Values[colID].Int64()), key(t, s, b.Values[colID].Int64()))
	}))
}
