package flush

import (
	"bytes"
	"container/heap"
	"context"
	"runtime"
	"sync"

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
	gi           int
	g            *segment.RowGroup
	pos          int
	primed       bool // positioned on the first version, not yet returned
	done         bool
	err          error
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
	if s.upper != nil && bytes.Compare(s.g.Key(s.pos), s.upper) >= 0 {
		s.done = true
		return false
	}
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
		if s.lower != nil && gr.known && bytes.Compare(gr.lo, s.lower) < 0 {
			s.pos, _ = g.Search(s.lower)
		}
		if s.pos < g.Len() {
			return true
		}
	}
}

func (s *segIter) fail(err error) bool {
	s.err, s.done = err, true
	return false
}

func (s *segIter) key() []byte { return s.g.Key(s.pos) }
func (s *segIter) seq() int64  { return s.g.Seq(s.pos) }

// merge merges segment iterators into one tables.VersionIter: ascending
// keys, one version per key, the highest _seq winning. It keeps the
// iterators in a heap ordered by (key, descending _seq).
type merge struct {
	h       iterHeap
	group   []*segIter
	cur     *segIter
	pending []*segIter
	started bool
	err     error
	closed  bool
	release func() // called once, at Close
}

type iterHeap []*segIter

func (h iterHeap) Len() int { return len(h) }
func (h iterHeap) Less(i, j int) bool {
	if c := bytes.Compare(h[i].key(), h[j].key()); c != 0 {
		return c < 0
	}
	return h[i].seq() > h[j].seq()
}
func (h iterHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *iterHeap) Push(x any)   { *h = append(*h, x.(*segIter)) }
func (h *iterHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
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
				it.prime()
			}
		}()
	}
	wg.Wait()
}

// Next keeps the current winner at the root of the heap: after it
// advances, one heap.Fix restores the order, which for segments with
// disjoint key ranges costs a couple of comparisons per row. Other
// iterators on the same key (older versions) are taken out of the heap
// and put back once advanced.
func (m *merge) Next() bool {
	if m.err != nil || m.closed {
		return false
	}
	if !m.started {
		m.started = true
		primeAll(m.pending)
		for _, it := range m.pending {
			if it.next() {
				m.h = append(m.h, it)
			} else if it.err != nil {
				m.err = it.err
				return false
			}
		}
		m.pending = nil
		heap.Init(&m.h)
	} else if m.cur != nil {
		if m.cur.next() {
			heap.Fix(&m.h, 0)
		} else {
			if m.cur.err != nil {
				m.err = m.cur.err
				return false
			}
			heap.Pop(&m.h)
		}
		for _, it := range m.group {
			if it.next() {
				heap.Push(&m.h, it)
			} else if it.err != nil {
				m.err = it.err
				return false
			}
		}
	}
	m.group = m.group[:0]
	if m.h.Len() == 0 {
		m.cur = nil
		return false
	}
	m.cur = m.h[0]
	// Iterators on the same key form a subtree at the root; the smallest
	// child of the root is the next candidate.
	for {
		c := 1
		if len(m.h) > 2 && m.h.Less(2, 1) {
			c = 2
		}
		if c >= len(m.h) || !bytes.Equal(m.h[c].key(), m.cur.key()) {
			break
		}
		m.group = append(m.group, heap.Remove(&m.h, c).(*segIter))
	}
	return true
}

func (m *merge) Key() []byte   { return m.cur.key() }
func (m *merge) Seq() int64    { return m.cur.seq() }
func (m *merge) Deleted() bool { return m.cur.g.Deleted(m.cur.pos) }
func (m *merge) Row(dst *row.Row) error {
	m.cur.g.Row(m.cur.pos, dst)
	return nil
}
func (m *merge) Err() error { return m.err }
func (m *merge) Close() error {
	m.closed = true
	if m.release != nil {
		m.release()
		m.release = nil
	}
	return m.err
}
