package flush

import (
	"context"
	"errors"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// DropTable drops table ns.name with its buffer (through the catalog), its
// manifest and its segment files. A drop interrupted after the catalog
// forgot the table is completed by the next Open.
func (m *Manager) DropTable(ctx context.Context, ns, name string) error {
	t, err := m.db.Catalog().FindTable(ctx, ns, name)
	if err != nil {
		return err
	}
	var tr *tier
	if t.Type != catalog.StreamTable {
		tr = m.tier(t)
		tr.flushMu.Lock()
		defer tr.flushMu.Unlock()
	}
	if err := m.db.Catalog().DropTable(ctx, ns, name); err != nil {
		return err
	}
	if tr == nil {
		return nil
	}
	m.forgetHealth(t.ID)
	tr.mu.Lock()
	tr.dropped = true
	var segs []*segFile
	for _, s := range tr.users {
		segs = append(segs, s...)
	}
	tr.users = map[string][]*segFile{}
	tr.mu.Unlock()
	// The segments of commits in doubt are recorded or not: their records
	// go with the others, and nothing reads their files.
	var unlisted []*Segment
	for _, d := range tr.doubts {
		for _, f := range d.files {
			unlisted = append(unlisted, &f.Segment)
		}
	}
	tr.doubts = nil
	m.mu.Lock()
	delete(m.tiers, t.ID)
	m.mu.Unlock()
	recs := make([]*Segment, len(segs))
	for i, s := range segs {
		recs[i] = &s.Segment
	}
	// A read that took the segment list before the drop may still be
	// reading a file: like a compaction, the drop gives up the tier's
	// reference, and the last reader removes the file, so that the read
	// ends as it began instead of failing on a missing file.
	var free []*Segment
	for _, f := range segs {
		if f.refs.Add(-1) == 0 {
			free = append(free, &f.Segment)
		}
	}
	recs = append(recs, unlisted...)
	free = append(free, unlisted...)
	var state [][]byte
	if m.shared {
		// Other servers' segments of the table are in the manifest, not
		// all in this server's list: the records are read again, and
		// their files removed too (a server still reading one fails as a
		// read of a dropped table). Deleting the manifest version fails
		// the commit of a flush that another server may be running.
		stored, err := loadTableManifest(ctx, m.b, t.ID)
		if err != nil {
			return fmt.Errorf("flush: %s: reading the manifest: %w", t.FullName(), err)
		}
		known := map[string]bool{}
		for _, s := range recs {
			known[s.Path] = true
		}
		for _, s := range stored {
			if !known[s.Path] {
				recs = append(recs, s)
				free = append(free, s)
			}
		}
		state = [][]byte{versionKey(t.ID), nextIDKey(t.ID)}
	}
	left, err := m.removeSegments(ctx, recs, free, state...)
	if err != nil {
		return err
	}
	return errors.Join(left...)
}

// removeSegments deletes the records of segs (and the other records of
// layout.Manifests under keys), then the files of free
// (those no reader holds: a reader removes its file when done), of a
// dropped table. A file it cannot remove is no longer recorded, so it is
// harmless, and the next Open removes it: each such failure is returned in
// left, and err is the failure to delete the records.
func (m *Manager) removeSegments(ctx context.Context, segs, free []*Segment, keys ...[]byte) (left []error, err error) {
	ops := make([]store.Operation, len(segs), len(segs)+len(keys))
	for i, s := range segs {
		ops[i] = store.DeleteOp(layout.Manifests, manifestKey(s))
	}
	for _, k := range keys {
		ops = append(ops, store.DeleteOp(layout.Manifests, k))
	}
	// The records of a dropped table need not go at once: one left behind
	// by a failure is an orphan, which the next Open removes.
	for _, batch := range m.b.Capabilities().Split(ops) {
		if err := m.b.Batch(ctx, batch); err != nil {
			return nil, fmt.Errorf("flush: removing manifest records: %w", err)
		}
	}
	for _, s := range free {
		m.cache.Forget(s.Path)
		if err := m.store.Remove(ctx, s.Path); err != nil && !segment.IsNotExist(err) {
			left = append(left, fmt.Errorf("flush: removing %s: %w", s.Path, err))
		}
	}
	return left, nil
}
