package tables

import (
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

// SharedSource is a Source that other processes change too: a cold tier on
// a backend several servers share (store.Capabilities.MultiProcess), whose
// list of segments another server's flush or compaction changes. Such a
// source keeps a copy of its state read at a version, and the table layer
// uses these methods so that no read or write trusts a stale copy:
//
//   - a read of one row reads the buffer, then calls Sync, then Lookup: a
//     version that left the buffer before the buffer was read was committed
//     to the source before Sync, which sees it;
//   - a write calls Pin before it reads the row and puts the check Pin
//     returns in its batch, which then applies only if the source has not
//     changed since (a row whose version just moved from the buffer to the
//     source is never taken for absent); when the batch fails a condition,
//     the write calls Invalidate and tries again;
//   - a scan's VersionIter reads the source's version again when it is
//     closed and fails with ErrSourceChanged when it moved meanwhile; the
//     read then starts again.
type SharedSource interface {
	Source
	// Sync brings the source's copy up to date with what other processes
	// committed.
	Sync(ctx context.Context) error
	// Pin returns a condition that holds while the source has not changed
	// since its copy was read, reading it again first after Invalidate.
	// Lookups made after Pin see at least that copy.
	Pin(ctx context.Context) (store.Operation, error)
	// Invalidate tells the source that a write's batch failed a condition,
	// which may be Pin's: the next Pin reads the source again.
	Invalidate()
}

// ErrSourceChanged is the error of a SharedSource's scan whose source
// changed while it ran (see SharedSource). The table layer reads again; a
// caller sees it only when the source kept changing through every retry.
var ErrSourceChanged = errors.New("the table's segments changed while it was read; read again")

// VersionIter walks the row versions of a Source. Like a store.Iterator it
// is for one goroutine, and the slice Key returns is valid until the next
// call to Next. Reads merge the VersionIters of a table's sources into one
// (which is a VersionIter too).
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
