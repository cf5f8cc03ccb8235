package flush

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/merge"
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
	checkUpper   bool   // some key of g may be at or above upper
	key          []byte // the current version's
	primed       bool   // positioned on the first version, not yet returned
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

// Next advances to the next version of the range.
func (s *segIter) Next() bool {
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
	s.key = k
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

// Remaining returns how many versions are left from the current one on,
// ignoring the upper bound (merge.Remainder).
func (s *segIter) Remaining() int {
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

// Key, Seq, Deleted, Row, Err and Close make a segIter a merge.Cursor.

// Key returns the current version's key, which stays valid (row groups are
// immutable).
func (s *segIter) Key() []byte { return s.key }

// KeyField implements merge.KeyHolder: Next sets s.key.
func (s *segIter) KeyField() *[]byte { return &s.key }

func (s *segIter) Seq() int64    { return s.g.Seq(s.pos) }
func (s *segIter) Deleted() bool { return s.g.Deleted(s.pos) }
func (s *segIter) Err() error    { return s.err }

func (s *segIter) Row(dst *row.Row) error {
	s.g.Row(s.pos, dst)
	return nil
}

// Close does nothing: the segments a merge reads are released together,
// when the merge is closed.
func (s *segIter) Close() error { return nil }

// newSegMerge returns the merge of its, whose keys all start with the same
// skip bytes, into one tables.VersionIter: ascending keys, one version per
// key, the highest _seq winning. release runs when it is closed.
//
// Segments that start after the first row group of another ends enter the
// merge by the lower bound of their first key that the statistics give,
// and are read only when the merge reaches that bound: a page that ends
// before them never decodes them. The others are read at the start, in
// parallel.
func newSegMerge(its []*segIter, skip int, release func()) *merge.Iter {
	m := merge.New(skip, len(its))
	if len(its) > 0 {
		m.OnStart(func() error { return startSegments(m, its) })
	}
	if release != nil {
		m.OnClose(release)
	}
	return m
}

// startSegments adds its to m: the iterators that may hold keys below the
// end of the earliest-ending first row group are primed (in parallel), the
// others are deferred.
func startSegments(m *merge.Iter, its []*segIter) error {
	type first struct {
		bound, hi []byte
		ok        bool
	}
	firsts := make([]first, len(its))
	var minHi []byte
	for i, it := range its {
		b, hi, ok, err := it.firstBound()
		if err != nil {
			return err
		}
		firsts[i] = first{b, hi, ok}
		if ok && (minHi == nil || bytes.Compare(hi, minHi) < 0) {
			minHi = hi
		}
	}
	eager := make([]*segIter, 0, len(its))
	for i, it := range its {
		if f := firsts[i]; f.ok && bytes.Compare(f.bound, minHi) > 0 {
			m.AddDeferred(it, f.bound)
			continue
		}
		eager = append(eager, it)
	}
	primeAll(eager)
	for _, it := range eager {
		m.Add(it)
	}
	return nil
}

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
