package flush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// versionRefs lists the versions a segment covers, in key order, in
// fixed-size chunks: growing it never copies the refs already added (a
// segment has up to a million).
type versionRefs struct {
	chunks [][]tables.VersionRef
	n      int
}

const refChunk = 4096

func (r *versionRefs) add(v tables.VersionRef) {
	if r.n%refChunk == 0 {
		r.chunks = append(r.chunks, make([]tables.VersionRef, 0, refChunk))
	}
	c := &r.chunks[len(r.chunks)-1]
	*c = append(*c, v)
	r.n++
}

func (r *versionRefs) len() int { return r.n }

func (r *versionRefs) at(i int) *tables.VersionRef { return &r.chunks[i/refChunk][i%refChunk] }

// lockAllAbove is the number of keys above which a commit takes every key
// lock of the table rather than the locks of its keys.
var lockAllAbove = 4096

// commit records seg (nil when every version was a deletion with nothing
// to hide) in the manifest and deletes from the buffer, in the same atomic
// batch, each version of refs that is still the buffered version of its
// key. It holds the keys' locks, so no writer replaces a version between
// the check and the delete. quiet is the table's last _seq before the
// versions were read (see flushUser): when it has not moved, every version
// is unchanged and the buffer is not read again.
func (m *Manager) commit(ctx context.Context, tr *tier, buf *tables.Buffer, prefix []byte, seg *segFile, refs *versionRefs, quiet int64) (int, error) {
	n := refs.len()
	if n == 0 {
		return 0, nil
	}
	if m.shared {
		return m.commitShared(ctx, tr, buf, seg, refs)
	}
	var unlock func()
	if n > lockAllAbove {
		unlock = buf.LockAll()
	} else {
		ks := make([][]byte, n)
		for i := range n {
			ks[i] = refs.at(i).Key
		}
		unlock = buf.LockKeys(ks)
	}
	defer unlock()

	part := buf.Partition()
	first, last := refs.at(0).Key, refs.at(n-1).Key
	ops := make([]store.Operation, 0, 2)
	var rec []byte
	if seg != nil {
		var err error
		if rec, err = encodeSegment(&seg.Segment); err != nil {
			return 0, err
		}
		ops = append(ops, store.PutOp(layout.Manifests, manifestKey(&seg.Segment), rec))
	}
	if n > lockAllAbove && buf.LastSeq() == quiet {
		// No write since the versions were read: the buffer's keys from
		// the first ref to the last are exactly refs (one scan read them
		// in order), so one range delete removes them.
		if end := keyAfter(last); store.ValidateKey(end) == nil {
			ops = append(ops, store.DeleteRangeOp(part, first, end))
			return m.applyRange(ctx, tr, seg, ops, n)
		}
		ops = slices.Grow(ops, n)
		for i := range n {
			ops = append(ops, store.DeleteOp(part, refs.at(i).Key))
		}
		return m.apply(ctx, tr, seg, ops)
	}
	// One scan over the refs' key range finds the versions still buffered.
	ops = slices.Grow(ops, n)
	it, err := m.b.Scan(ctx, part, store.ScanOptions{Prefix: prefix, Start: first, Bulk: true})
	if err != nil {
		return 0, fmt.Errorf("flush: %s: checking the buffer: %w", tr.table().FullName(), err)
	}
	j := 0
	for j < n && it.Next() {
		k := it.Key()
		if bytes.Compare(k, last) > 0 {
			break
		}
		for j < n && bytes.Compare(refs.at(j).Key, k) < 0 {
			j++
		}
		if j < n && bytes.Equal(refs.at(j).Key, k) {
			s, err := row.PeekSeq(it.Value())
			if err != nil {
				it.Close()
				return 0, fmt.Errorf("flush: %s: buffer key %x: %w", tr.table().FullName(), k, err)
			}
			if s == refs.at(j).Seq {
				ops = append(ops, store.DeleteOp(part, refs.at(j).Key))
			}
			j++
		}
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("flush: %s: checking the buffer: %w", tr.table().FullName(), err)
	}
	return m.apply(ctx, tr, seg, ops)
}

// commitShared is commit on a buffer other processes write too. Their
// writes pass this process's key locks and leave its _seq counter as it
// was, so neither the locks nor a quiet counter show that a version is
// still the one flushed: the commit records seg first, marked
// PendingPurge (with the lease's check), then removes the flushed versions
// with deletes that each check their key still holds the value read
// (Buffer.DeleteIfUnchanged), then clears the mark. A failure or a crash
// in between leaves the mark, and settle finishes the purge before the
// table flushes again.
func (m *Manager) commitShared(ctx context.Context, tr *tier, buf *tables.Buffer, seg *segFile, refs *versionRefs) (int, error) {
	if seg != nil {
		rec, err := markPending(tr, seg)
		if err != nil {
			return 0, err
		}
		vops, version, err := m.versionOps(tr)
		if err != nil {
			return 0, err
		}
		tr.add(seg)
		if err := m.fencedBatch(ctx, tr, append([]store.Operation{rec}, vops...)); err != nil {
			return 0, m.resolveFailedCommit(tr, seg, version, err)
		}
		tr.settled(seg, true)
		tr.workVersion = version
	}
	removed := 0
	chunk := make([]tables.VersionRef, 0, min(refs.len(), refChunk))
	for i := 0; i < refs.len(); i++ {
		chunk = append(chunk, *refs.at(i))
		if len(chunk) == cap(chunk) || i == refs.len()-1 {
			n, err := buf.DeleteIfUnchanged(ctx, chunk)
			removed += n
			if err != nil {
				return removed, fmt.Errorf("flush: %s: removing flushed versions: %w", tr.table().FullName(), err)
			}
			chunk = chunk[:0]
		}
	}
	if seg != nil {
		if err := m.clearPending(ctx, tr, seg); err != nil {
			return removed, fmt.Errorf("flush: %s: %w", tr.table().FullName(), err)
		}
	}
	return removed, nil
}

// keyAfter returns the smallest key greater than k: k followed by a 0x00
// byte.
func keyAfter(k []byte) []byte {
	return append(append(make([]byte, 0, len(k)+1), k...), 0)
}

// apply makes seg visible and applies the commit batch ops (the manifest
// record first when seg is not nil, then one point delete per removed
// version). It returns the number of deletes applied.
func (m *Manager) apply(ctx context.Context, tr *tier, seg *segFile, ops []store.Operation) (int, error) {
	removed := len(ops)
	if seg != nil {
		removed--
	}
	return m.applyRange(ctx, tr, seg, ops, removed)
}

// applyRange is apply of a batch that removes the given number of buffered
// versions, whatever its operations (a range delete removes many).
func (m *Manager) applyRange(ctx context.Context, tr *tier, seg *segFile, ops []store.Operation, removed int) (int, error) {
	if seg != nil {
		// Readers must see the segment before its versions leave the
		// buffer; until the batch applies they see both, which merge to
		// the same rows.
		tr.add(seg)
	}
	if len(ops) == 0 {
		return 0, nil
	}
	if !m.snapshots {
		tr.commitMu.Lock()
		defer tr.commitMu.Unlock()
	}
	// A backend that applies fewer operations at once than the commit
	// holds gets it in several batches: the first records the segment
	// with as many deletes as fit, the others delete the rest. Between
	// them a version is in the buffer and in the segment, which merge to
	// the same row; a failure there leaves it so, and a later flush moves
	// it again (a copy with the same _seq, which reads and compactions
	// count once).
	batches := m.caps(tr).Split(ops)
	if len(batches) > 1 && seg != nil {
		// The first batch records the segment marked PendingPurge: until
		// the last batch clears the mark, a failure or a crash in between
		// leaves versions both buffered and in the segment, and settle
		// removes them from the buffer before the table flushes or
		// compacts again, so that no version is ever flushed twice.
		rec, err := markPending(tr, seg)
		if err != nil {
			return 0, err
		}
		ops[0] = rec
		batches = m.caps(tr).Split(ops)
	}
	if err := m.fencedBatch(ctx, tr, batches[0]); err != nil {
		if seg == nil {
			return 0, fmt.Errorf("flush: %s: removing flushed versions: %w", tr.table().FullName(), err)
		}
		return 0, m.resolveFailedCommit(tr, seg, nil, err)
	}
	if seg != nil {
		tr.settled(seg, true)
	}
	if len(batches) == 1 {
		return removed, nil
	}
	for _, batch := range batches[1:] {
		if err := m.b.Batch(ctx, batch); err != nil {
			return 0, fmt.Errorf("flush: %s: removing flushed versions: %w", tr.table().FullName(), err)
		}
	}
	if seg != nil {
		if err := m.clearPending(ctx, tr, seg); err != nil {
			return 0, fmt.Errorf("flush: %s: %w", tr.table().FullName(), err)
		}
	}
	return removed, nil
}

// markPending marks seg PendingPurge and returns the put of its manifest
// record so marked.
func markPending(tr *tier, seg *segFile) (store.Operation, error) {
	tr.mu.Lock() // Segments copies the records under it
	seg.PendingPurge = true
	marked := seg.Segment
	tr.mu.Unlock()
	rec, err := encodeSegment(&marked)
	if err != nil {
		return store.Operation{}, err
	}
	return store.PutOp(layout.Manifests, manifestKey(&marked), rec), nil
}

// clearPending records that seg's flushed versions have all left the
// buffer.
func (m *Manager) clearPending(ctx context.Context, tr *tier, seg *segFile) error {
	tr.mu.RLock()
	s := seg.Segment
	tr.mu.RUnlock()
	marked, err := encodeSegment(&s)
	if err != nil {
		return err
	}
	s.PendingPurge = false
	rec, err := encodeSegment(&s)
	if err != nil {
		return err
	}
	ops := []store.Operation{store.PutOp(layout.Manifests, manifestKey(&s), rec)}
	if m.shared {
		// Another server that took the table's lease over may have
		// changed or removed the record since (a compaction of it): the
		// record is cleared only if it is still the one this server
		// marked, never written back.
		ops = append(ops, store.CheckValueOp(layout.Manifests, manifestKey(&s), marked))
	}
	if err := m.b.Batch(ctx, ops); errors.Is(err, store.ErrConditionFailed) {
		return nil
	} else if err != nil {
		return fmt.Errorf("clearing the pending purge of %s: %w", s.Path, err)
	}
	tr.mu.Lock()
	seg.PendingPurge = false
	tr.mu.Unlock()
	return nil
}

// settle completes what earlier commits of tr left undone, before tr
// flushes or compacts again: it resolves the doubts (commits whose
// outcome was unknown), then the purges that commits cut into several
// batches left pending (a failure or a crash between their batches): it
// removes from the buffer every version that a marked segment of tr holds
// and that is still buffered unchanged, then clears the mark. The caller
// holds tr.flushMu.
func (m *Manager) settle(ctx context.Context, tr *tier) error {
	if err := m.resolveDoubts(tr); err != nil {
		return err
	}
	tr.mu.RLock()
	var pending []*segFile
	for _, segs := range tr.users {
		for _, f := range segs {
			if f.PendingPurge {
				pending = append(pending, f)
			}
		}
	}
	tr.mu.RUnlock()
	if len(pending) == 0 {
		return nil
	}
	t := tr.table()
	_, buf, err := m.buffer(ctx, t.Namespace, t.Name)
	if err != nil {
		return err
	}
	for _, f := range pending {
		if m.shared {
			// The mark may have been cleared by the server that set
			// it, which does not raise the manifest version.
			raw, err := m.getOptional(ctx, manifestKey(&f.Segment))
			if err != nil {
				return fmt.Errorf("flush: %s: reading the record of %s: %w", t.FullName(), f.Path, err)
			}
			if raw == nil {
				continue
			}
			s, err := decodeSegment(manifestKey(&f.Segment), raw)
			if err != nil {
				return err
			}
			if !s.PendingPurge {
				tr.mu.Lock()
				f.PendingPurge = false
				tr.mu.Unlock()
				continue
			}
		}
		if !f.acquire() {
			continue // compacted away meanwhile (not while flushMu is held)
		}
		err := m.purge(ctx, tr, buf, f)
		tr.release(f)
		if err != nil {
			return fmt.Errorf("flush: %s: completing the purge of %s: %w", t.FullName(), f.Path, err)
		}
		if err := m.clearPending(ctx, tr, f); err != nil {
			return fmt.Errorf("flush: %s: %w", t.FullName(), err)
		}
	}
	return nil
}

// purge removes from the buffer the versions of f that are still buffered
// unchanged.
func (m *Manager) purge(ctx context.Context, tr *tier, buf *tables.Buffer, f *segFile) error {
	if err := f.load(tr); err != nil {
		return err
	}
	for gi := range f.groups {
		g, err := tr.rowGroup(ctx, f, gi)
		if err != nil {
			return err
		}
		refs := make([]tables.VersionRef, g.Len())
		for i := range refs {
			refs[i] = tables.VersionRef{Key: g.Key(i), Seq: g.Seq(i)}
		}
		if _, err := buf.DeleteIfUnchanged(ctx, refs); err != nil {
			return err
		}
	}
	return nil
}
