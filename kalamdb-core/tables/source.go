package tables

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Source is one tier of the rows of a user or shared table. The hot buffer
// (the table's partition in the StorageBackend) is always the first source;
// a cold tier (such as flushed Parquet segments) is the second, supplied by
// Options.ColdTier. Reads consult every source and merge them: for each key
// the version with the highest _seq wins, and a winning tombstone hides the
// row.
//
// Keys are the table's backend keys (for a user table the encoded user id
// followed by the encoded primary key; see package keys), so every source
// orders rows the same way.
type Source interface {
	// Lookup returns the newest version this source holds of the row stored
	// under key, with found=false when it holds none. Like a backend, a
	// source must not keep key after the call returns.
	Lookup(ctx context.Context, key []byte) (r row.Row, found bool, err error)
	// Scan returns the versions whose keys start with prefix, beginning at
	// start (after it when exclusive; an empty start means the beginning of
	// prefix), in ascending key order and at most one per key: the newest
	// the source holds.
	Scan(ctx context.Context, prefix, start []byte, exclusive bool) (VersionIter, error)
}

// VersionIter walks the row versions of a Source. Like a store.Iterator it
// is for one goroutine, and the slice Key returns is valid until the next
// call to Next.
type VersionIter interface {
	// Next advances to the next version and reports whether there is one.
	Next() bool
	// Key returns the current version's key.
	Key() []byte
	// Seq returns the current version's _seq.
	Seq() int64
	// Deleted reports whether the current version is a tombstone.
	Deleted() bool
	// Row decodes the current version into dst, reusing dst.Values when it
	// has room. The decoded row does not refer to memory the iterator reuses.
	Row(dst *row.Row) error
	// Err returns the error that ended the iteration, if any.
	Err() error
	// Close releases the iterator and returns Err. It is idempotent.
	Close() error
}

// Remainder is implemented by a VersionIter that knows, once its first Next
// has positioned it, about how many versions are left (the current one
// included). Scans use it to size their pages; it need not be exact.
type Remainder interface {
	Remaining() int
}

// bufferSource is the Source over a table's partition.
type bufferSource struct {
	b     store.StorageBackend
	part  store.Partition
	types []row.Type
}

func (s *bufferSource) Lookup(ctx context.Context, key []byte) (row.Row, bool, error) {
	v, err := s.b.Get(ctx, s.part, key)
	// Comparing with the sentinel first spares errors.Is on the common
	// miss; a backend that wraps ErrNotFound still takes the second test.
	if err == store.ErrNotFound || errors.Is(err, store.ErrNotFound) {
		return row.Row{}, false, nil
	}
	if err != nil {
		return row.Row{}, false, err
	}
	var r row.Row
	// v is ours alone (the contract gives Get's result to the caller).
	if err := row.DecodeOwned(v, s.types, &r); err != nil {
		return row.Row{}, false, fmt.Errorf("key %x: %w", key, err)
	}
	return r, true, nil
}

func (s *bufferSource) Scan(ctx context.Context, prefix, start []byte, exclusive bool) (VersionIter, error) {
	it, err := s.b.Scan(ctx, s.part, store.ScanOptions{Prefix: prefix, Start: start, ExclusiveStart: exclusive && len(start) > 0})
	if err != nil {
		return nil, err
	}
	return &bufferIter{it: it, types: s.types}, nil
}

// arenaChunk is the size of the blocks a bufferIter copies row values into.
const arenaChunk = 16 << 10

type bufferIter struct {
	it      store.Iterator
	types   []row.Type
	seq     int64
	deleted bool
	err     error
	// arena receives copies of decoded values. It is only ever appended to
	// (a full chunk is replaced, never overwritten), so decoded strings can
	// point into it: one allocation per chunk instead of one per row.
	arena []byte
}

func (i *bufferIter) Next() bool {
	if i.err != nil || !i.it.Next() {
		return false
	}
	seq, _, deleted, err := row.PeekMeta(i.it.Value())
	if err != nil {
		i.err = fmt.Errorf("key %x: %w", i.it.Key(), err)
		return false
	}
	i.seq, i.deleted = seq, deleted
	return true
}

func (i *bufferIter) Key() []byte   { return i.it.Key() }
func (i *bufferIter) Seq() int64    { return i.seq }
func (i *bufferIter) Deleted() bool { return i.deleted }

func (i *bufferIter) Row(dst *row.Row) error {
	v := i.it.Value()
	if cap(i.arena)-len(i.arena) < len(v) {
		i.arena = make([]byte, 0, max(arenaChunk, len(v)))
	}
	start := len(i.arena)
	i.arena = append(i.arena, v...)
	if err := row.DecodeOwned(i.arena[start:], i.types, dst); err != nil {
		return fmt.Errorf("key %x: %w", i.it.Key(), err)
	}
	return nil
}

func (i *bufferIter) Err() error {
	if i.err != nil {
		return i.err
	}
	return i.it.Err()
}

func (i *bufferIter) Close() error {
	err := i.it.Close()
	if i.err != nil {
		return i.err
	}
	return err
}

// mergeIter merges the iterators of several sources into one: ascending
// keys, each key once, carrying the version with the highest _seq. Once
// only one iterator has versions left (say the buffer is exhausted and the
// cold tier is not), it hands every call straight to that one.
type mergeIter struct {
	its     []VersionIter
	valid   []bool
	group   []int // iterators positioned on the current key
	cur     int   // the winner among them
	started bool
	solo    bool // its[cur] is the only iterator left
	done    bool
	err     error
}

func newMergeIter(its []VersionIter) VersionIter {
	if len(its) == 1 {
		return its[0]
	}
	return &mergeIter{its: its, valid: make([]bool, len(its)), cur: -1}
}

func (m *mergeIter) advance(i int) bool {
	m.valid[i] = m.its[i].Next()
	if !m.valid[i] {
		if err := m.its[i].Err(); err != nil {
			m.err = err
			return false
		}
	}
	return true
}

func (m *mergeIter) Next() bool {
	if m.err != nil || m.done {
		return false
	}
	if m.solo {
		if m.its[m.cur].Next() {
			return true
		}
		m.err, m.done = m.its[m.cur].Err(), true
		return false
	}
	if !m.started {
		m.started = true
		for i := range m.its {
			if !m.advance(i) {
				return false
			}
		}
	} else {
		for _, i := range m.group {
			if !m.advance(i) {
				return false
			}
		}
	}
	m.group = m.group[:0]
	var minKey []byte
	left := 0
	for i, it := range m.its {
		if !m.valid[i] {
			continue
		}
		left++
		k := it.Key()
		switch c := compareKeys(k, minKey, len(m.group) == 0); {
		case c < 0:
			m.group = append(m.group[:0], i)
			minKey = k
		case c == 0:
			m.group = append(m.group, i)
		}
	}
	if len(m.group) == 0 {
		m.cur, m.done = -1, true
		return false
	}
	m.cur = m.group[0]
	for _, i := range m.group[1:] {
		if m.its[i].Seq() > m.its[m.cur].Seq() {
			m.cur = i
		}
	}
	m.solo = left == 1
	return true
}

// Remaining implements Remainder: the sum over the iterators that
// implement it and have versions left.
func (m *mergeIter) Remaining() int {
	n := 0
	for i, it := range m.its {
		if r, ok := it.(Remainder); ok && m.valid[i] {
			n += r.Remaining()
		}
	}
	return n
}

// solitary returns the only iterator left once the others are exhausted,
// positioned where m is, or nil.
func (m *mergeIter) solitary() VersionIter {
	if m.solo {
		return m.its[m.cur]
	}
	return nil
}

// compareKeys compares k with the smallest key so far; first means there
// is none yet.
func compareKeys(k, min []byte, first bool) int {
	if first {
		return -1
	}
	return bytes.Compare(k, min)
}

func (m *mergeIter) Key() []byte            { return m.its[m.cur].Key() }
func (m *mergeIter) Seq() int64             { return m.its[m.cur].Seq() }
func (m *mergeIter) Deleted() bool          { return m.its[m.cur].Deleted() }
func (m *mergeIter) Row(dst *row.Row) error { return m.its[m.cur].Row(dst) }
func (m *mergeIter) Err() error             { return m.err }

func (m *mergeIter) Close() error {
	err := m.err
	for _, it := range m.its {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}
