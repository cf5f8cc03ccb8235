package bbolt

import (
	"bytes"
	"sync"

	bolt "go.etcd.io/bbolt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// iterator is a scan over a read-only transaction, or, once detached, over
// a copy of the rest of its range. Its owner goroutine calls Next, Key,
// Value and Close; the engine may call detach from another goroutine, so mu
// guards the transaction, the source and rest.
//
// Key and Value never point into the memory map: Next copies pairs, a chunk
// at a time under one acquisition of mu, into the iterator's own arena, so
// a remap after a detach cannot pull memory from under a slice the caller
// holds.
type iterator struct {
	e *engine

	mu      sync.Mutex
	tx      *bolt.Tx // nil once detached or closed
	src     *source  // &s while tx is open
	rest    []pair   // after detach: what the range had left
	limit   int      // the scan's Limit hint; 0 for none
	fetched int      // pairs taken from src or rest so far

	// Owned by the owner goroutine: the chunk of pairs copied out, pair i
	// being arena[offs[2i]:offs[2i+1]] (key) and arena[offs[2i+1]:offs[2i+2]]
	// (value); cur is the current pair, or -1.
	arena   []byte
	offs    []int
	n       int // pairs in the chunk
	cur     int
	offsBuf [2*maxChunk + 1]int

	// The source, allocated with the iterator.
	s source
}

type pair struct{ k, v []byte }

// Chunk sizes: small at first, for scans that stop early, then larger.
const (
	firstChunk = 8
	maxChunk   = 64
)

// iterators recycles closed iterators with their arenas.
var iterators = sync.Pool{New: func() any { return new(iterator) }}

func newIterator(e *engine, tx *bolt.Tx, b *bolt.Bucket, r store.Range) *iterator {
	it := iterators.Get().(*iterator)
	it.e, it.tx, it.limit, it.fetched, it.cur, it.n = e, tx, r.Limit, 0, -1, 0
	it.offs = it.offsBuf[:0]
	it.s = source{c: b.Cursor(), r: r}
	it.src = &it.s
	return it
}

func (it *iterator) Next() bool {
	if it.cur+1 < it.n {
		it.cur++
		return true
	}
	it.cur = -1
	if it.n = it.fill(); it.n == 0 {
		return false
	}
	it.cur = 0
	return true
}

// fill copies the next chunk of pairs into the arena and returns how many.
func (it *iterator) fill() int {
	it.mu.Lock()
	defer it.mu.Unlock()
	want := maxChunk
	if it.fetched < maxChunk {
		want = max(firstChunk, it.fetched)
	}
	if it.limit > 0 {
		want = min(want, it.limit-it.fetched)
	}
	// Append to locals and store the slices once, not once a pair.
	arena, offs := it.arena[:0], append(it.offs[:0], 0)
	if arena == nil {
		arena = make([]byte, 0, 2048)
	}
	n := 0
	for ; n < want; n++ {
		var k, v []byte
		if it.src != nil {
			var ok bool
			if k, v, ok = it.src.next(); !ok {
				it.release()
				break
			}
		} else if len(it.rest) > 0 {
			k, v = it.rest[0].k, it.rest[0].v
			it.rest[0] = pair{}
			it.rest = it.rest[1:]
		} else {
			break
		}
		arena = append(arena, k...)
		offs = append(offs, len(arena))
		arena = append(arena, v...)
		offs = append(offs, len(arena))
	}
	it.arena, it.offs = arena, offs
	it.fetched += n
	return n
}

func (it *iterator) Key() []byte {
	if it.cur < 0 {
		return nil
	}
	return it.arena[it.offs[2*it.cur]:it.offs[2*it.cur+1]]
}

func (it *iterator) Value() []byte {
	if it.cur < 0 {
		return nil
	}
	return it.arena[it.offs[2*it.cur+1]:it.offs[2*it.cur+2]]
}

// Err is always nil: a bbolt cursor cannot fail once its transaction is
// open.
func (it *iterator) Err() error { return nil }

func (it *iterator) Close() error {
	if it.e == nil {
		return nil // closed already (the wrapper closes each iterator once)
	}
	it.mu.Lock()
	it.release()
	it.rest = nil
	it.mu.Unlock()
	it.cur, it.n = -1, 0
	it.e.unregister(it)
	// The wrapper never calls an iterator again after Close, and the
	// contract ends the caller's Key and Value slices there: recycle it,
	// unless a detach made its arena large.
	if cap(it.arena) <= maxPooledArena {
		it.e = nil
		iterators.Put(it)
	}
	return nil
}

// maxPooledArena is the largest arena a recycled iterator keeps.
const maxPooledArena = 64 << 10

// release ends the transaction; the caller holds mu.
func (it *iterator) release() {
	if it.tx != nil {
		_ = it.tx.Rollback()
		it.tx, it.src = nil, nil
		it.s = source{}
	}
}

// detach copies what is left of the range (up to the scan's limit) and
// ends the transaction, so the iterator no longer holds bbolt's mapping.
func (it *iterator) detach() {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.src == nil {
		return
	}
	var rest []pair
	for it.limit <= 0 || it.fetched+len(rest) < it.limit {
		k, v, ok := it.src.next()
		if !ok {
			break
		}
		buf := make([]byte, len(k)+len(v))
		copy(buf, k)
		copy(buf[len(k):], v)
		rest = append(rest, pair{k: buf[:len(k):len(k)], v: buf[len(k):]})
	}
	it.rest = rest
	it.release()
}

// source walks the partition bucket inside a range, in scan order. The
// slices it returns point into the memory map and stay valid while the
// transaction is open.
type source struct {
	c       *bolt.Cursor
	r       store.Range
	started bool
	done    bool
}

func (s *source) next() ([]byte, []byte, bool) {
	if s.done {
		return nil, nil, false
	}
	var k, v []byte
	switch {
	case s.started && !s.r.Reverse:
		k, v = s.c.Next()
	case s.started:
		k, v = s.c.Prev()
	case !s.r.Reverse:
		s.started = true
		if s.r.Lower == nil {
			k, v = s.c.First()
		} else {
			k, v = s.c.Seek(s.r.Lower)
		}
	default:
		s.started = true
		k, v = seekBefore(s.c, s.r.Upper)
	}
	if k == nil || !inRange(k, s.r) {
		s.done = true
		return nil, nil, false
	}
	return k, v, true
}

// inRange reports whether k, reached by a seek to the start of r and steps
// in r's direction, is still inside r: only the far bound can be crossed.
func inRange(k []byte, r store.Range) bool {
	if r.Reverse {
		return r.Lower == nil || bytes.Compare(k, r.Lower) >= 0
	}
	return r.Upper == nil || bytes.Compare(k, r.Upper) < 0
}

// seekBefore positions c on its last key below upper (nil: its last key).
func seekBefore(c *bolt.Cursor, upper []byte) ([]byte, []byte) {
	if upper == nil {
		return c.Last()
	}
	if k, _ := c.Seek(upper); k == nil {
		return c.Last()
	}
	return c.Prev()
}
