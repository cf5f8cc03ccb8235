package flush

import (
	"context"
	"fmt"
	"sync"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// SnapshotFile is a committed segment that a Snapshot holds, with the
// columns its file has.
type SnapshotFile struct {
	Segment
	// Columns names the file's columns in order: the table's columns
	// when the segment was written (a column added later is missing),
	// then _seq, _updated and _deleted.
	Columns []string
}

// Snapshot is the list of one user's committed segments of a table (every
// segment of a shared table), each held so that no compaction removes its
// file before Release. A segment holds at most one version per key; for a
// key, a segment of a higher ID holds a newer version.
//
// A reader that merges the buffer with a snapshot must read the buffer
// first: a flush commits its segment before it deletes the flushed
// versions from the buffer, so a version is then seen twice (same _seq) at
// worst, never missed.
type Snapshot struct {
	// Files are the segments, ascending ID.
	Files []SnapshotFile
	// Dir is the local directory of the files (each is Dir/Path) when the
	// segment store is one (segment.LocalDir); "" otherwise, when the
	// files can only be read through the Manager (Scan of the table).
	Dir string

	once    sync.Once
	release func()
}

// Release lets compactions remove the snapshot's files again. It is
// idempotent.
func (s *Snapshot) Release() {
	s.once.Do(func() {
		if s.release != nil {
			s.release()
		}
	})
}

// LocalDir is segment.LocalDir of the Manager's segment store: the
// directory under which it keeps the segment files, when it is a local
// one.
func (m *Manager) LocalDir() (string, bool) { return segment.LocalDir(m.store) }

// Snapshot returns the committed segments of user's rows of t (of every
// row for a shared table, user ""), held until Release. t is a user or
// shared table; a stream table has no segments.
func (m *Manager) Snapshot(ctx context.Context, t *catalog.Table, user string) (*Snapshot, error) {
	switch {
	case t.Type == catalog.StreamTable:
		return nil, fmt.Errorf("%w: %s is a stream table; stream tables have no segments", core.ErrWrongTableType, t.FullName())
	case t.Type == catalog.SharedTable && user != "":
		return nil, fmt.Errorf("%w: shared table %s has no users", core.ErrInvalidArgument, t.FullName())
	case t.Type == catalog.UserTable && user == "":
		return nil, fmt.Errorf("%w: user table %s: no user given", core.ErrInvalidArgument, t.FullName())
	}
	tr := m.tier(t)
	// On a shared backend the list must hold what other servers
	// committed up to now: after the caller's read of the buffer.
	if err := tr.sync(ctx); err != nil {
		return nil, err
	}
	segs, _ := tr.acquireSegments(user, false)
	s := &Snapshot{Files: make([]SnapshotFile, len(segs)), release: func() {
		for _, f := range segs {
			tr.release(f)
		}
	}}
	s.Dir, _ = m.LocalDir()
	for i, f := range segs {
		md, err := m.cache.Footer(ctx, f.ref(tr))
		if err != nil {
			s.Release()
			return nil, fmt.Errorf("flush: %s: committed segment %s: %w", t.FullName(), f.Path, err)
		}
		cols := make([]string, md.Schema.NumColumns())
		for c := range cols {
			cols[c] = md.Schema.Column(c).Name()
		}
		s.Files[i] = SnapshotFile{Segment: f.Segment, Columns: cols}
	}
	return s, nil
}
