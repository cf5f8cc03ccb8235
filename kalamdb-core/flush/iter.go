package flush

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// segIter walks the versions of one segment inside [lower, upper), row
// group by row group, skipping the groups whose statistics exclude the
// range.
type segIter struct {
	ctx          context.Context
	tr           *tier
	f            *segFile
	lower, upper []byte
	skip         int // length of the prefix every key of the scan has
	gi           int
	g            *segment.RowGroup
	pos          int
	checkUpper   bool // some key of g may be at or above upper
	k            sortKey
	primed       bool // positioned on the first version, not yet returned
	lazy         bool // in the merge's heap by a lower bound of its first key, not yet read
	done         bool
	err          error
}

// sortKey is a key with the 16 bytes that follow the scan's common prefix
// loaded as two big-endian integers, so that most comparisons of the merge
// are integer comparisons.
type sortKey struct {
	b      []byte // the whole key
	hi, lo uint64 // bytes [skip, skip+16) of b, zero-padded
	long   bool   // b has more than skip+16 bytes
}

func (k *sortKey) set(b []byte, skip int) {
	rest := b[min(skip, len(b)):]
	k.b, k.long = b, len(rest) > 16
	switch {
	case len(rest) >= 16:
		k.hi, k.lo = binary.BigEndian.Uint64(rest), binary.BigEndian.Uint64(rest[8:])
	case len(rest) >= 8:
		k.hi, k.lo = binary.BigEndian.Uint64(rest), padded(rest[8:])
	default:
		k.hi, k.lo = padded(rest), 0
	}
}

// padded returns up to 8 bytes as a big-endian integer, zero-padded on the
// right.
func padded(b []byte) uint64 {
	var x uint64
	for i, c := range b {
		x |= uint64(c) << (56 - 8*i)
	}
	return x
}

// compare orders keys as bytes.Compare does. Both keys must start with the
// same skip bytes: equal integers then mean that the shorter key (if both
// are at most skip+16 bytes) is a prefix of the other, zero bytes aside.
func (k *sortKey) compare(o *sortKey) int {
	switch {
	case k.hi != o.hi:
		return cmp.Compare(k.hi, o.hi)
	case k.lo != o.lo:
		return cmp.Compare(k.lo, o.lo)
	case k.long || o.long:
		return bytes.Compare(k.b, o.b)
	}
	return cmp.Compare(len(k.b), len(o.b))
}

func (k *sortKey) equal(o *sortKey) bool {
	return k.hi == o.hi && k.lo == o.lo && len(k.b) == len(o.b) && (!k.long || bytes.Equal(k.b, o.b))
}

// prime positions the iterator on its first version, reading the row
// group that holds it. Scans prime their iterators in parallel.
func (s *segIter) prime() {
	s.primed = true
	if err := s.f.load(s.tr); err != nil {
		s.fail(err)
		return
	}
	s.gi = -1
	if !s.nextGroup() {
		return
	}
	if s.lower != nil {
		s.pos, _ = s.g.Search(s.lower)
	}
}

// firstBound returns, from the footer's statistics, a lower bound of the
// iterator's first key (the range's lower end or the first row group's
// smallest key, whichever is larger) and the largest key of that row
// group. ok is false when the statistics do not tell.
func (s *segIter) firstBound() (bound, hi []byte, ok bool, err error) {
	if err := s.f.load(s.tr); err != nil {
		return nil, nil, false, err
	}
	for _, gr := range s.f.groups {
		if !gr.known {
			return nil, nil, false, nil
		}
		if s.lower != nil && bytes.Compare(gr.hi, s.lower) < 0 {
			continue
		}
		bound = gr.lo
		if s.lower != nil && bytes.Compare(s.lower, bound) > 0 {
			bound = s.lower
		}
		return bound, gr.hi, true, nil
	}
	return nil, nil, false, nil
}

func (s *segIter) next() bool {
	if s.done {
		return false
	}
	if s.g == nil || s.primed {
		if !s.primed {
			s.prime()
		}
		s.primed = false
		if s.done {
			return false
		}
	} else {
		s.pos++
	}
	for s.pos >= s.g.Len() {
		if !s.nextGroup() {
			return false
		}
	}
	k := s.g.Key(s.pos)
	if s.checkUpper && bytes.Compare(k, s.upper) >= 0 {
		s.done = true
		return false
	}
	s.k.set(k, s.skip)
	return true
}

// nextGroup loads the next row group that may hold keys of the range.
func (s *segIter) nextGroup() bool {
	for {
		s.gi++
		if s.gi >= len(s.f.groups) {
			s.done = true
			return false
		}
		gr := s.f.groups[s.gi]
		if gr.known {
			if s.lower != nil && bytes.Compare(gr.hi, s.lower) < 0 {
				continue
			}
			if s.upper != nil && bytes.Compare(gr.lo, s.upper) >= 0 {
				s.done = true
				return false
			}
		}
		if err := s.ctx.Err(); err != nil {
			return s.fail(err)
		}
		g, err := s.tr.rowGroup(s.ctx, s.f, s.gi)
		if err != nil {
			return s.fail(err)
		}
		s.g, s.pos = g, 0
		s.checkUpper = s.upper != nil && (!gr.known || bytes.Compare(gr.hi, s.upper) >= 0)
		if s.lower != nil && gr.known && bytes.Compare(gr.lo, s.lower) < 0 {
			s.pos, _ = g.Search(s.lower)
		}
		if s.pos < g.Len() {
			return true
		}
	}
}

// remaining returns how many versions are left from the current one on,
// ignoring the upper bound.
func (s *segIter) remaining() int {
	if s.done {
		return 0
	}
	if s.g == nil { // not read yet: every row group that may hold the range
		n := 0
		for _, gr := range s.f.groups {
			if !gr.known || s.lower == nil || bytes.Compare(gr.hi, s.lower) >= 0 {
				n += gr.rows
			}
		}
		return n
	}
	n := s.g.Len() - s.pos
	for _, gr := range s.f.groups[s.gi+1:] {
		n += gr.rows
	}
	return n
}

func (s *segIter) fail(err error) bool {
	s.err, s.done = err, true
	return false
}

func (s *segIter) seq() int64 { return s.g.Seq(s.pos) }

// merge merges segment iterators into one tables.VersionIter: ascending
// keys, one version per key, the highest _seq winning. It keeps the
// iterators in a binary min-heap ordered by (key, descending _seq): the
// root is the newest version of the smallest key, and the older versions of
// that key, next in the order, are skipped.
type merge struct {
	h       []heapEntry
	cur     *segIter
	pending []*segIter
	started bool
	err     error
	closed  bool
	release func() // called once, at Close
}

// heapEntry is an iterator in the merge's heap with a copy of the first
// integer of its current key, so that most comparisons of a sift read the
// heap's own array only.
type heapEntry struct {
	hi uint64
	it *segIter
}

// less orders entries by their iterators' current keys, then by
// descending _seq.
func (a heapEntry) less(b heapEntry) bool {
	if a.hi != b.hi {
		return a.hi < b.hi
	}
	if c := a.it.k.compare(&b.it.k); c != 0 {
		return c < 0
	}
	if a.it.lazy || b.it.lazy {
		// A bound equal to a key: the iterator must be read before
		// that key's versions can be told apart.
		return a.it.lazy && !b.it.lazy
	}
	return a.it.seq() > b.it.seq()
}

// down restores the heap order below i after the key of h[i] grew. When
// h[i] still precedes its children (segments with disjoint key ranges) that
// takes two comparisons. Otherwise the smaller child moves up at each
// level down to a leaf and h[i] then climbs back to its place, about one
// comparison per level instead of two (Floyd's variant), which suits
// interleaved segments, where the advanced iterator usually sinks to the
// bottom.
func (m *merge) down(i int) {
	h := m.h
	n := len(h)
	x := h[i]
	c := 2*i + 1
	if c >= n {
		return
	}
	if r := c + 1; r < n && h[r].less(h[c]) {
		c = r
	}
	if !h[c].less(x) {
		return
	}
	h[i] = h[c]
	top := c // x belongs at top or below
	i = c
	for {
		c = 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].less(h[c]) {
			c = r
		}
		h[i] = h[c]
		i = c
	}
	for i != top {
		p := (i - 1) / 2
		if !x.less(h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = x
}

// pop removes the root.
func (m *merge) pop() {
	last := len(m.h) - 1
	m.h[0] = m.h[last]
	m.h[last] = heapEntry{}
	m.h = m.h[:last]
	if last > 0 {
		m.down(0)
	}
}

func newMerge(its []*segIter) *merge { return &merge{pending: its} }

// primeAll primes the iterators, decoding their first row groups on up to
// GOMAXPROCS goroutines.
func primeAll(its []*segIter) {
	if len(its) < 2 {
		return
	}
	work := make(chan *segIter, len(its))
	for _, it := range its {
		work <- it
	}
	close(work)
	var wg sync.WaitGroup
	for range min(len(its), runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := guard.Run("flush: reading a segment", func() error { it.prime(); return nil }); err != nil {
					it.fail(fmt.Errorf("flush: reading %s: %w", it.f.Path, err))
				}
			}
		}()
	}
	wg.Wait()
}

// Next advances the root past the current key: the iterator that gave it
// and those holding older versions of it move on (a heap sift each, which
// for segments with disjoint key ranges costs a couple of integer
// comparisons), and the new root is the newest version of the next key.
//
// Segments that start after the first row group of another ends enter the
// heap by the lower bound of their first key that the statistics give, and
// are read only when that bound reaches the root: a page that ends before
// them never decodes them. The others are read at the start, in parallel.
func (m *merge) Next() bool {
	if m.err != nil || m.closed {
		return false
	}
	if !m.started {
		m.started = true
		if err := m.start(); err != nil {
			m.err = err
			return false
		}
	} else if m.cur != nil {
		prev := m.cur.k
		for len(m.h) > 0 && (m.h[0].it.lazy || m.h[0].it.k.equal(&prev)) {
			if !m.advanceRoot() {
				return false
			}
		}
	}
	for len(m.h) > 0 && m.h[0].it.lazy {
		if !m.advanceRoot() {
			return false
		}
	}
	if len(m.h) == 0 {
		m.cur = nil
		return false
	}
	m.cur = m.h[0].it
	return true
}

// start builds the heap: the iterators that may hold keys below the end of
// the earliest-ending first row group are read (in parallel), the others
// enter lazily.
func (m *merge) start() error {
	type first struct {
		bound, hi []byte
		ok        bool
	}
	firsts := make([]first, len(m.pending))
	var minHi []byte
	for i, it := range m.pending {
		b, hi, ok, err := it.firstBound()
		if err != nil {
			return err
		}
		firsts[i] = first{b, hi, ok}
		if ok && (minHi == nil || bytes.Compare(hi, minHi) < 0) {
			minHi = hi
		}
	}
	eager := make([]*segIter, 0, len(m.pending))
	for i, it := range m.pending {
		if f := firsts[i]; f.ok && bytes.Compare(f.bound, minHi) > 0 {
			it.lazy = true
			it.k.set(f.bound, it.skip)
			m.h = append(m.h, heapEntry{it.k.hi, it})
			continue
		}
		eager = append(eager, it)
	}
	m.pending = nil
	primeAll(eager)
	for _, it := range eager {
		if it.next() {
			m.h = append(m.h, heapEntry{it.k.hi, it})
		} else if it.err != nil {
			return it.err
		}
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return nil
}

// advanceRoot moves the root iterator to its next version (its first, for
// a lazy one) and restores the heap, or removes it when it has no more; it
// returns false on an error, which it records.
func (m *merge) advanceRoot() bool {
	it := m.h[0].it
	it.lazy = false
	if it.next() {
		m.h[0].hi = it.k.hi
		m.down(0)
		return true
	}
	if it.err != nil {
		m.err = it.err
		return false
	}
	m.pop()
	return true
}

func (m *merge) Key() []byte   { return m.cur.k.b }
func (m *merge) Seq() int64    { return m.cur.seq() }
func (m *merge) Deleted() bool { return m.cur.g.Deleted(m.cur.pos) }
func (m *merge) Row(dst *row.Row) error {
	m.cur.g.Row(m.cur.pos, dst)
	return nil
}
func (m *merge) Err() error { return m.err }

// Remaining implements tables.Remainder: the versions left in the
// segments from the current one on, older versions and tombstones
// included, so an upper bound but for the scan's end key.
func (m *merge) Remaining() int {
	n := 0
	for _, e := range m.h {
		n += e.it.remaining()
	}
	return n
}
func (m *merge) Close() error {
	m.closed = true
	if m.release != nil {
		m.release()
		m.release = nil
	}
	return m.err
}
