// Package merge merges ordered streams of row versions into one: ascending
// keys, each key once, carrying the version with the highest _seq. A
// winning tombstone is returned like any version (its Deleted reports it),
// so it hides the older versions of its key; the reader decides whether to
// skip it (a scan) or keep it (a compaction that other segments outlive).
//
// The table stores merge their buffer with a cold tier through it, and the
// cold tier merges its segments through it, for scans and compactions
// alike.
//
// # Design
//
// An Iter keeps its cursors in a binary min-heap ordered by (key,
// descending _seq, order of addition): the root is the newest version of
// the smallest key, and the older versions of that key, next in the order,
// are skipped. The winner stays at the root, so inputs with disjoint key
// ranges cost about two comparisons per version, and each key is held with
// the 16 bytes that follow the inputs' common prefix loaded as two
// big-endian integers, so that most comparisons are integer comparisons on
// the heap's own array. Once one cursor is left, Next hands over to it
// without comparing. The heap serves small merges too: with two inputs it
// costs about what a linear scan of them does, and less from three on.
//
// A cursor is called through the Cursor interface: Next, then Key (or,
// for a KeyHolder, a read of its key field) once per version it yields,
// Seq only when two cursors hold the same key, and Row and Deleted of the
// winner when the reader asks.
package merge

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Cursor is one input of a merge: the versions of one source in ascending
// key order, at most one per key. Its method set is that of
// tables.VersionIter. Like a store.Iterator it is for one goroutine, and
// the slice Key returns is valid until the next call to Next.
type Cursor interface {
	// Next advances to the next version and reports whether there is one.
	Next() bool
	// Key returns the current version's key.
	Key() []byte
	// Seq returns the current version's _seq.
	Seq() int64
	// Deleted reports whether the current version is a tombstone.
	Deleted() bool
	// Row decodes the current version into dst.
	Row(dst *row.Row) error
	// Err returns the error that ended the iteration, if any.
	Err() error
	// Close releases the cursor and returns Err. It is idempotent.
	Close() error
}

// Remainder is implemented by a Cursor that knows, once its first Next
// has positioned it, about how many versions are left (the current one
// included). It need not be exact.
type Remainder interface {
	Remaining() int
}

// KeyHolder is implemented by a Cursor that keeps its current key in a
// field of its own, set by each Next that returns true: the merge reads the
// field instead of calling Key.
type KeyHolder interface {
	KeyField() *[]byte
}

// Iter merges cursors. It is itself a Cursor (and a Remainder), for one
// goroutine. Make one with New, add its cursors with Add or AddDeferred,
// and read it with Next; Close closes every cursor added.
type Iter struct {
	skip     int
	ins      []input // every cursor added, in order
	h        []entry
	cur      *input // the current version's cursor, or nil
	prevBuf  []byte // a copy of the current key, when long
	start    func() error
	release  func()
	started  bool // the first Next has run the OnStart function
	closed   bool
	err      error
	closeErr error // what Close returned
}

// input is a cursor with its current key (or, deferred, the lower bound of
// its first key).
type input struct {
	k        sortKey
	c        Cursor
	kf       *[]byte // the cursor's key field, if it is a KeyHolder
	idx      int     // order of addition, the last tie-breaker
	deferred bool    // in the heap by a bound of its first key, not yet read
}

// entry is an input in the heap with a copy of the first integer of its
// key, so that most comparisons of a sift read the heap's own array only.
type entry struct {
	hi uint64
	in *input
}

// errStarted reports an Add after the first Next.
var errStarted = errors.New("merge: a cursor added after the merge started")

// New returns an empty merge of cursors whose keys all begin with the same
// skip bytes (the prefix of a scan; zero when they share none): the merge
// compares keys from there on. n is how many cursors it will have, a hint.
func New(skip, n int) *Iter {
	return &Iter{skip: skip, ins: make([]input, 0, n)}
}

// Add adds a cursor, to be positioned on its first version by the merge's
// first Next. Add must be called before that, or from the function given
// to OnStart; a later Add closes c and ends the merge with an error.
func (m *Iter) Add(c Cursor) {
	if m.started {
		_ = c.Close()
		m.fail(errStarted)
		return
	}
	m.ins = append(m.ins, input{c: c, kf: keyField(c), idx: len(m.ins)})
}

// AddDeferred adds a cursor ordered, until it is read, by bound: a key no
// greater than its first. The merge positions it (its first Next) only
// when bound reaches the front, so a reader that stops before bound never
// reads it. bound must stay unchanged until then. Like Add, it must be
// called before the first Next or from the OnStart function.
func (m *Iter) AddDeferred(c Cursor, bound []byte) {
	if m.started {
		_ = c.Close()
		m.fail(errStarted)
		return
	}
	in := input{c: c, kf: keyField(c), idx: len(m.ins), deferred: true}
	in.k.set(bound, m.skip)
	m.ins = append(m.ins, in)
}

func keyField(c Cursor) *[]byte {
	if kh, ok := c.(KeyHolder); ok {
		return kh.KeyField()
	}
	return nil
}

// key returns the key of the cursor, which Next has just positioned.
func (in *input) key() []byte {
	if in.kf != nil {
		return *in.kf
	}
	return in.c.Key()
}

// OnStart sets a function that the first Next calls before it positions
// the cursors: it may add cursors (and prepare them, say in parallel). An
// error it returns ends the merge.
func (m *Iter) OnStart(f func() error) { m.start = f }

// OnClose sets a function that the first Close calls after closing the
// cursors.
func (m *Iter) OnClose(f func()) { m.release = f }

// Next advances past the current key: the cursor that gave it and those
// holding older versions of it move on (a heap sift each), and the new
// root is the newest version of the next key. A deferred cursor is read
// when its bound reaches the root.
func (m *Iter) Next() bool {
	if m.cur == nil {
		// Not started, or ended: exhausted, failed or closed.
		if m.started || m.err != nil || m.closed || !m.begin() {
			return false
		}
	} else if len(m.h) == 1 {
		// The last cursor: nothing is left to compare it with, so its
		// key is taken as it is.
		in := m.cur
		if in.c.Next() {
			in.k.b = in.key()
			return true
		}
		if err := in.c.Err(); err != nil {
			return m.fail(err)
		}
		m.pop()
	} else if h, k := m.h, &m.cur.k; (len(h) > 1 && h[1].hi == k.hi && h[1].in.k.equal(k)) ||
		(len(h) > 2 && h[2].hi == k.hi && h[2].in.k.equal(k)) {
		// Other cursors hold the current key: they are next in the heap
		// order, so a child of the root is one of them.
		if !m.skipCurrent() {
			return false
		}
	} else if !m.advanceRoot() { // the root is alone at the current key
		return false
	}
	for len(m.h) > 0 && m.h[0].in.deferred {
		if !m.advanceRoot() {
			return false
		}
	}
	if len(m.h) == 0 {
		m.cur = nil
		return false
	}
	m.cur = m.h[0].in
	return true
}

// skipCurrent moves every cursor at the current key, the root's, past it.
func (m *Iter) skipCurrent() bool {
	prev := m.cur.k
	if prev.long {
		// Advancing the cursor may overwrite its key.
		m.prevBuf = append(m.prevBuf[:0], prev.b...)
		prev.b = m.prevBuf
	}
	for len(m.h) > 0 && m.h[0].in.k.equal(&prev) {
		if !m.advanceRoot() {
			return false
		}
	}
	return true
}

// begin runs the OnStart function, positions the cursors added with Add
// (in order, stopping at the first error) and builds the heap.
func (m *Iter) begin() bool {
	if m.start != nil {
		err := m.start()
		m.started = true
		if err != nil {
			return m.fail(err)
		}
	}
	m.started = true
	m.h = make([]entry, 0, len(m.ins))
	for i := range m.ins {
		in := &m.ins[i]
		if !in.deferred {
			if !in.c.Next() {
				if err := in.c.Err(); err != nil {
					return m.fail(err)
				}
				continue
			}
			in.k.set(in.key(), m.skip)
		}
		m.h = append(m.h, entry{in.k.hi, in})
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return true
}

// advanceRoot moves the root cursor to its next version (its first, for a
// deferred one) and restores the heap, or removes it when it has no more;
// it returns false on an error, which it records.
func (m *Iter) advanceRoot() bool {
	in := m.h[0].in
	in.deferred = false
	if in.c.Next() {
		in.k.set(in.key(), m.skip)
		m.h[0].hi = in.k.hi
		m.down(0)
		return true
	}
	if err := in.c.Err(); err != nil {
		return m.fail(err)
	}
	m.pop()
	return true
}

func (m *Iter) fail(err error) bool {
	if m.err == nil {
		m.err = err
	}
	m.cur = nil
	return false
}

// less orders entries by their cursors' keys, a deferred cursor before a
// read one at an equal key, then by descending _seq, then by order of
// addition.
func (a entry) less(b entry) bool {
	if a.hi != b.hi {
		return a.hi < b.hi
	}
	if c := a.in.k.compare(&b.in.k); c != 0 {
		return c < 0
	}
	return a.in.tieLess(b.in)
}

// tieLess orders two cursors at equal keys.
func (a *input) tieLess(b *input) bool {
	if a.deferred || b.deferred {
		// A bound equal to a key: the cursor must be read before that
		// key's versions can be told apart.
		if a.deferred != b.deferred {
			return a.deferred
		}
		return a.idx < b.idx
	}
	if sa, sb := a.c.Seq(), b.c.Seq(); sa != sb {
		return sa > sb
	}
	return a.idx < b.idx
}

// down restores the heap order below i after the key of h[i] grew. When
// h[i] still precedes its children (inputs with disjoint key ranges) that
// takes two comparisons. Otherwise the smaller child moves up at each
// level down to a leaf and h[i] then climbs back to its place, about one
// comparison per level instead of two (Floyd's variant), which suits
// interleaved inputs, where the advanced cursor usually sinks to the
// bottom.
func (m *Iter) down(i int) {
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
func (m *Iter) pop() {
	last := len(m.h) - 1
	m.h[0] = m.h[last]
	m.h[last] = entry{}
	m.h = m.h[:last]
	if last > 0 {
		m.down(0)
	}
}

// Key returns the current version's key.
func (m *Iter) Key() []byte { return m.cur.k.b }

// Seq returns the current version's _seq.
func (m *Iter) Seq() int64 { return m.cur.c.Seq() }

// Deleted reports whether the current version is a tombstone.
func (m *Iter) Deleted() bool { return m.cur.c.Deleted() }

// Row decodes the current version into dst.
func (m *Iter) Row(dst *row.Row) error { return m.cur.c.Row(dst) }

// Err returns the error that ended the merge, if any: one of a cursor's,
// or of the OnStart function.
func (m *Iter) Err() error { return m.err }

// Remaining implements Remainder: the sum over the cursors not yet
// exhausted that implement it, so an estimate that counts older versions
// and tombstones too.
func (m *Iter) Remaining() int {
	n := 0
	for _, e := range m.h {
		if r, ok := e.in.c.(Remainder); ok {
			n += r.Remaining()
		}
	}
	return n
}

// Solitary returns the only cursor the merge has left, positioned where
// the merge is, once every other is exhausted, or nil: the caller may then
// read that cursor directly instead of the merge (and still Close the
// merge).
func (m *Iter) Solitary() Cursor {
	if len(m.h) != 1 || m.cur == nil || m.h[0].in != m.cur {
		return nil
	}
	return m.cur.c
}

// Close closes every cursor added, then runs the OnClose function. It
// returns the merge's error if any, else the first error of a cursor's
// Close. A closed merge has no more versions; Close is idempotent.
func (m *Iter) Close() error {
	if m.closed {
		return m.closeErr
	}
	m.closed, m.cur = true, nil
	err := m.err
	for i := range m.ins {
		if cerr := m.ins[i].c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if m.release != nil {
		m.release()
		m.release = nil
	}
	m.closeErr = err
	return err
}

// sortKey is a key with the 16 bytes that follow the inputs' common
// prefix loaded as two big-endian integers, so that most comparisons of
// the merge are integer comparisons.
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
