package rocksdb

import (
	"fmt"
	"sync/atomic"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// iterator walks one partition inside a store.Range with a RocksDB
// iterator. The range's bounds, behind the partition's key prefix, are
// RocksDB's iterate_lower_bound and iterate_upper_bound, so RocksDB stops at
// them itself and never reads a block past the range; there is no key
// comparison on the Go side, and the C side strips the prefix from every
// key. Each step is one call into C (see capi.go) that moves the iterator
// and returns the entry it lands on.
//
// The RocksDB iterator reads the sequence number that was current when it
// was created (its implicit snapshot) and holds that data alive, so writes
// after Scan, and the range deletion of a DropPartition, are invisible to
// it. On a legacy partition it also holds a reference to the column family,
// so the handle outlives a DropPartition until Close.
//
// Key and Value return slices of RocksDB's memory, valid until the next
// Next or Close, as the store.Iterator contract allows; nothing is copied.
type iterator struct {
	e       *engine
	c       cIter
	f       *family // a legacy partition's column family, or nil
	reverse bool

	started bool
	at      entry // the current entry; at.valid() is false before the first Next and at the end
	err     error
	closed  atomic.Bool
}

// newIterator creates the RocksDB iterator over pt within r, taking a
// reference on a legacy partition's family and counting the iterator in
// e.iters; Close gives both back. The caller is a data call (inside the
// gate), so pt's family cannot be released by a DropPartition before the
// reference is taken.
func newIterator(e *engine, pt part, r store.Range) (*iterator, error) {
	c, err := newCIter(e.cdb, pt.c, pt.prefix, r.Lower, r.Upper, r.Bulk)
	if err != nil {
		return nil, err
	}
	if pt.f != nil {
		pt.f.refs.Add(1)
	}
	e.iters.Add(1)
	return &iterator{e: e, c: c, f: pt.f, reverse: r.Reverse}, nil
}

func (i *iterator) Next() bool {
	if i.started && !i.at.valid() { // the end, or closed
		return false
	}
	m := moveFirst // the first key at or above the lower bound
	switch {
	case i.started && i.reverse:
		m = movePrev
	case i.started:
		m = moveNext
	case i.reverse:
		m = moveLast // the last key below the upper bound
	}
	i.started = true
	if i.at = i.c.move(m); !i.at.valid() {
		if err := i.c.err(); err != nil {
			i.err = fmt.Errorf("rocksdb: scan: %w", err)
		}
		return false
	}
	return true
}

func (i *iterator) Key() []byte {
	if !i.at.valid() {
		return nil
	}
	return i.at.key()
}

func (i *iterator) Value() []byte {
	if !i.at.valid() {
		return nil
	}
	return i.at.value()
}

func (i *iterator) Err() error { return i.err }

// Close destroys the RocksDB iterator and its read options, then releases
// a legacy partition's family, then tells the engine; each exactly once,
// even if Close is called twice at the same time.
func (i *iterator) Close() error {
	if !i.closed.CompareAndSwap(false, true) {
		return i.err
	}
	i.at, i.started = entry{}, true
	i.c.destroy()
	i.c = cIter{}
	if i.f != nil {
		i.f.release()
		i.f = nil
	}
	i.e.iters.Done()
	return i.err
}
