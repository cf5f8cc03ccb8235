package rocksdb

import (
	"fmt"
	"sync/atomic"

	"github.com/linxGnu/grocksdb"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// iterator walks one column family inside a store.Range with a RocksDB
// iterator. The range's bounds are RocksDB's iterate_lower_bound and
// iterate_upper_bound, so RocksDB stops at them itself and never reads a
// block past the range; there is no key comparison on the Go side.
//
// The RocksDB iterator reads the sequence number that was current when it
// was created (its implicit snapshot) and holds the column family's data
// alive, so writes and drops after Scan are invisible to it. It also holds a
// reference to the family, so the handle outlives a DropPartition until
// Close.
//
// Key and Value return slices of RocksDB's memory, valid until the next
// Next or Close, as the store.Iterator contract allows; nothing is copied.
type iterator struct {
	e  *engine
	it *grocksdb.Iterator
	ro *grocksdb.ReadOptions
	f  *family
	// lower and upper back the bounds in ro: RocksDB keeps pointers to
	// them, so they must stay reachable until ro is destroyed.
	lower, upper []byte
	reverse      bool

	started bool
	valid   bool
	err     error
	closed  atomic.Bool
}

// newIterator creates the RocksDB iterator over f within r. The caller
// holds a reference on f and has counted the iterator in e.iters; Close
// gives both back.
func newIterator(e *engine, f *family, r store.Range) *iterator {
	i := &iterator{e: e, ro: grocksdb.NewDefaultReadOptions(), f: f, lower: r.Lower, upper: r.Upper, reverse: r.Reverse}
	if r.Lower != nil {
		i.ro.SetIterateLowerBound(r.Lower)
	}
	if r.Upper != nil {
		i.ro.SetIterateUpperBound(r.Upper)
	}
	i.it = e.db.NewIteratorCF(i.ro, f.h)
	return i
}

func (i *iterator) Next() bool {
	if i.it == nil || (i.started && !i.valid) {
		return false
	}
	switch {
	case i.started && i.reverse:
		i.it.Prev()
	case i.started:
		i.it.Next()
	case i.reverse:
		i.it.SeekToLast() // the last key below upper
	case i.lower != nil:
		i.it.Seek(i.lower)
	default:
		i.it.SeekToFirst()
	}
	i.started = true
	if i.valid = i.it.Valid(); !i.valid {
		if err := i.it.Err(); err != nil {
			i.err = fmt.Errorf("rocksdb: scan: %w", err)
		}
		return false
	}
	return true
}

// Key and Value ask RocksDB for the current entry on each call rather than
// caching it in the iterator: a caller reads each once per entry, and
// storing slices of C memory in a heap object would cost a GC write barrier
// per entry.

func (i *iterator) Key() []byte {
	if !i.valid {
		return nil
	}
	return sliceData(i.it.Key())
}

func (i *iterator) Value() []byte {
	if !i.valid {
		return nil
	}
	return sliceData(i.it.Value())
}

func (i *iterator) Err() error { return i.err }

// Close destroys the RocksDB iterator, then its read options, then releases
// the family, then tells the engine; each exactly once, even if Close is
// called twice at the same time.
func (i *iterator) Close() error {
	if !i.closed.CompareAndSwap(false, true) {
		return i.err
	}
	i.valid = false
	i.it.Close()
	i.it = nil
	i.ro.Destroy()
	i.ro = nil
	i.f.release()
	i.f = nil
	i.e.iters.Done()
	return i.err
}

// sliceData returns the bytes of an iterator's key or value slice (which
// RocksDB owns; there is nothing to free), never nil.
func sliceData(s *grocksdb.Slice) []byte {
	if s == nil {
		return []byte{}
	}
	if d := s.Data(); d != nil {
		return d
	}
	return []byte{}
}
