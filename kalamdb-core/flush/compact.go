package flush

import (
	"context"
	"fmt"
	"slices"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// DefaultCompactSegments is how many small segments a user (or a shared
// table) may have before the scheduler merges them (Options.CompactSegments).
const DefaultCompactSegments = 8

// NeverCompact, as Options.CompactSegments, leaves compaction to explicit
// Compact and MajorCompact calls (the server's compact_segments = 0).
const NeverCompact = -1

// CompactResult reports what a compaction did.
type CompactResult struct {
	// Merged counts the segments merged away, Written the segments written
	// in their place.
	Merged, Written int
	// Rows counts the versions written; Dropped the versions left out:
	// versions that a newer one replaced, and tombstones when a compaction
	// merged every segment of a user, so that nothing older remained for
	// them to hide.
	Rows, Dropped int64
	// Files are the new files, relative to the Parquet directory.
	Files []string
}

func (r *CompactResult) add(o CompactResult) {
	r.Merged += o.Merged
	r.Written += o.Written
	r.Rows += o.Rows
	r.Dropped += o.Dropped
	r.Files = append(r.Files, o.Files...)
}

// Compact merges, for every user of table ns.name (or the shared table),
// the newest segments smaller than MaxSegmentRows, when there are at least
// two, into as few segments as MaxSegmentRows allows; a user whose segment
// versions are a quarter or more tombstones has all of its segments
// merged, as MajorCompact does. Reads go on during a compaction and see the
// same rows before and after it; a reader that started before it keeps
// reading the old files, which are removed when the last such reader is
// done. A crash at any step leaves either the old segments or the new ones
// (see ADR-008).
func (m *Manager) Compact(ctx context.Context, ns, name string) (CompactResult, error) {
	tr, err := m.segmentedTier(ctx, ns, name)
	if err != nil {
		return CompactResult{}, err
	}
	return m.compactRecorded(ctx, tr, 2, false, TriggerManual)
}

// compactRecorded is compactTable, its outcome recorded for trigger (a
// compaction that merged nothing is no event, unless it ends a run of
// compaction failures).
func (m *Manager) compactRecorded(ctx context.Context, tr *tier, atLeast int, major bool, trigger string) (CompactResult, error) {
	start := m.clock.Now()
	var res CompactResult
	err := guard.Run("flush: compaction of "+tr.table().FullName(), func() error {
		var err error
		res, err = m.compactTable(ctx, tr, atLeast, major)
		return err
	})
	if err != nil || res.Merged > 0 || m.failingOp(tr.table().ID) == OpCompaction {
		m.record(Event{Table: tr.table(), Op: OpCompaction, Trigger: trigger, Compaction: res, Err: err}, start)
	}
	return res, err
}

// segmentedTier returns the cold tier of user or shared table ns.name.
func (m *Manager) segmentedTier(ctx context.Context, ns, name string) (*tier, error) {
	t, err := m.db.Catalog().FindTable(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if t.Type == catalog.StreamTable {
		return nil, fmt.Errorf("%w: %s is a stream table; stream tables have no segments", core.ErrWrongTableType, t.FullName())
	}
	return m.tier(t), nil
}

// MajorCompact is a major compaction of table ns.name: for every user (or the
// shared table) it merges all segments, full ones included, into as few as
// MaxSegmentRows allows, dropping every version that a newer one replaced
// and every tombstone. A user with a single segment is rewritten only when
// that segment holds tombstones. It rewrites all of the table's cold data:
// run it to reclaim space after many updates or deletes, not routinely.
func (m *Manager) MajorCompact(ctx context.Context, ns, name string) (CompactResult, error) {
	tr, err := m.segmentedTier(ctx, ns, name)
	if err != nil {
		return CompactResult{}, err
	}
	return m.compactRecorded(ctx, tr, 2, true, TriggerManual)
}

// compactDue compacts the users of table t (or the shared table) that
// have Options.CompactSegments small segments or more at the end of their
// list, or whose versions are a quarter or more tombstones (those have all
// their segments merged), as a round of the scheduler does after its
// flushes; with a negative CompactSegments it does nothing.
func (m *Manager) compactDue(ctx context.Context, t *catalog.Table, trigger string) (CompactResult, error) {
	if m.opts.CompactSegments <= NeverCompact || t.Type == catalog.StreamTable {
		return CompactResult{}, nil
	}
	return m.compactRecorded(ctx, m.tier(t), m.opts.CompactSegments, false, trigger)
}

// compactTable compacts every user of tr that has at least atLeast small
// segments at the end of its list; with major, every user with at least
// atLeast segments, or one segment that holds tombstones, merging all of
// them.
func (m *Manager) compactTable(ctx context.Context, tr *tier, atLeast int, major bool) (CompactResult, error) {
	tr.flushMu.Lock()
	defer tr.flushMu.Unlock()
	var total CompactResult
	if m.opts.Leases != nil {
		// Taking the lease is a write to the backend, and while it is held
		// every other server's flush of the table is refused: a compaction
		// that the current list gives nothing to merge (every scheduler
		// round asks) takes none.
		if err := tr.sync(ctx); err != nil {
			return total, err
		}
		if users, _ := m.compactionPlan(tr, atLeast, major); len(users) == 0 {
			return total, nil
		}
	}
	release, err := m.takeLease(ctx, tr)
	if err != nil {
		return total, err
	}
	defer release()
	if err := m.syncForWork(ctx, tr); err != nil {
		return total, err
	}
	users, majors := m.compactionPlan(tr, atLeast, major)
	if len(users) == 0 {
		return total, nil
	}
	if err := m.settle(ctx, tr); err != nil {
		return total, err
	}
	for _, u := range users {
		for {
			before := len(tr.segments(u))
			res, err := m.compactUser(ctx, tr, u, majors[u])
			total.add(res)
			if err != nil {
				return total, err
			}
			// A major compaction that the batch limits cut short merged
			// the newest segments: go on while that makes fewer.
			if !majors[u] || res.Merged == before || res.Merged == 0 || len(tr.segments(u)) >= before {
				break
			}
		}
	}
	return total, nil
}

// compactionPlan returns the users of tr that a compaction merges, sorted
// (none once tr was dropped): every user with at least atLeast small
// segments at the end of its list, and those it merges whole (majors),
// with major or when a quarter or more of their versions are tombstones.
func (m *Manager) compactionPlan(tr *tier, atLeast int, major bool) (users []string, majors map[string]bool) {
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	if tr.dropped {
		return nil, nil
	}
	majors = map[string]bool{}
	for u, segs := range tr.users {
		switch {
		case major || manyTombstones(segs):
			if majorWorthIt(segs) {
				users = append(users, u)
				majors[u] = true
			}
		case len(m.compactable(segs)) >= atLeast:
			users = append(users, u)
		}
	}
	slices.Sort(users)
	return users, majors
}

// commitSlack is how much larger than the old records fitCommit assumes
// the new ones may be (their key ranges are those of the merge).
const commitSlack = 5 // a fifth more

// fitCommit returns the newest segments of in, a suffix of a user's list
// (all of in when the backend has no batch limits), whose compaction
// commits in one batch within the backend's limits: it deletes their
// records and puts at most as many new ones, each about the size of an old
// one. With limits, a compaction of many segments merges the newest first;
// tombstones are dropped only once every segment of the user fits in one.
func (m *Manager) fitCommit(tr *tier, in []*segFile) []*segFile {
	caps := m.caps(tr)
	if caps.MaxBatchOps <= 0 && caps.MaxBatchBytes <= 0 {
		return in
	}
	k := len(in)
	if caps.MaxBatchOps > 0 {
		k = min(k, caps.MaxBatchOps/2)
	}
	if caps.MaxBatchBytes > 0 {
		n, size := 0, 0
		for i := len(in) - 1; i >= len(in)-k; i-- {
			seg := in[i].Segment // encodeSegment sets Format: a copy
			key := manifestKey(&seg)
			rec, err := encodeSegment(&seg)
			if err != nil {
				break
			}
			c := len(key) + (len(key)+len(rec))*(commitSlack+1)/commitSlack
			if size+c > caps.MaxBatchBytes {
				break
			}
			size += c
			n++
		}
		k = n
	}
	return in[len(in)-k:]
}

// tombstoneShare sets the share of tombstones among a user's segment
// versions at which a compaction (Compact, CompactDue, the scheduler)
// merges all of the user's segments, full ones included: the tombstones of
// mass deletions would otherwise stay in full segments, which the merging
// of small segments never touches.
const tombstoneShare = 4 // one version in four

// manyTombstones reports whether at least one version of segs in
// tombstoneShare is a tombstone.
func manyTombstones(segs []*segFile) bool {
	var rows, tombs int64
	for _, f := range segs {
		rows += f.Rows
		tombs += f.Tombstones
	}
	return tombs > 0 && tombs*tombstoneShare >= rows
}

// majorWorthIt reports whether a major compaction of a user's segments
// segs changes anything: it merges two segments or more, or rewrites a
// single one without its tombstones.
func majorWorthIt(segs []*segFile) bool {
	return len(segs) >= 2 || (len(segs) == 1 && segs[0].Tombstones > 0)
}

// merged returns the segments of segs that a compaction merges: all of
// them in a major one, else the compactable ones.
func (m *Manager) merged(segs []*segFile, major bool) []*segFile {
	if major {
		return segs
	}
	return m.compactable(segs)
}

// compactable returns the suffix of segs (ascending segment id) whose
// segments are smaller than MaxSegmentRows. Only a suffix may be merged:
// lookups search a user's segments newest first, so the merged segments,
// which take new ids, must hold the newest versions.
func (m *Manager) compactable(segs []*segFile) []*segFile {
	i := len(segs)
	for i > 0 && segs[i-1].Rows < int64(m.opts.MaxSegmentRows) {
		i--
	}
	return segs[i:]
}

// compactUser merges the compactable segments of user (all of them when
// major). The caller holds tr.flushMu, so the user's list changes under it
// only by reads.
func (m *Manager) compactUser(ctx context.Context, tr *tier, user string, major bool) (CompactResult, error) {
	t := tr.table()
	all := tr.segments(user)
	in := m.fitCommit(tr, m.merged(all, major))
	if (major && !majorWorthIt(in)) || (!major && len(in) < 2) {
		return CompactResult{}, nil
	}
	// Tombstones hide older versions; when every segment of the user is
	// merged, there is nothing older left, and the buffer holds only newer
	// versions than any segment.
	dropTombstones := len(in) == len(all)
	prefix := tr.prefix(user)
	dir, err := tr.userDir(user)
	if err != nil {
		return CompactResult{}, err
	}
	r, _ := store.ScanOptions{Prefix: prefix}.ToRange()
	its := make([]*segIter, len(in))
	var inRows int64
	for i, f := range in {
		f.refs.Add(1) // listed, and only this compaction unlists it
		its[i] = &segIter{ctx: ctx, tr: tr, f: f, lower: r.Lower, upper: r.Upper, gi: -1}
		inRows += f.Rows
	}
	mg := newSegMerge(its, len(prefix), func() {
		for _, f := range in {
			tr.release(f)
		}
	})
	defer mg.Close()

	res := CompactResult{Merged: len(in)}
	var out []*segFile
	// forget removes the files written so far: the compaction failed
	// before its commit, and no manifest records them.
	forget := func() {
		for _, f := range out {
			m.cache.Forget(f.Path)
			// An object that cannot be removed now is unrecorded
			// garbage that a later Open removes.
			_ = m.store.Remove(context.WithoutCancel(ctx), f.Path)
		}
	}
	var r0 row.Row
	more := mg.Next()
	for more {
		spec, err := m.nextSpec(ctx, tr, user, dir)
		if err != nil {
			forget()
			return CompactResult{}, err
		}
		st, err := segment.Create(ctx, m.store, spec, func(w *segment.Writer) error {
			var n int
			for more && n < m.opts.MaxSegmentRows {
				if !(dropTombstones && mg.Deleted()) {
					if err := mg.Row(&r0); err != nil {
						return err
					}
					// A segment written before columns were added
					// has fewer.
					r0.Fill(len(t.Columns))
					if err := w.Append(mg.Key(), &r0); err != nil {
						return err
					}
					n++
				}
				more = mg.Next()
			}
			if !more {
				return mg.Err()
			}
			return nil
		})
		if err != nil {
			forget()
			return CompactResult{}, fmt.Errorf("flush: %s: compacting into %s: %w", t.FullName(), spec.Path(), err)
		}
		seg := m.written(tr, spec, st)
		if seg == nil {
			continue
		}
		out = append(out, seg)
		res.Rows += st.Rows
		res.Files = append(res.Files, spec.Path())
	}
	if err := mg.Err(); err != nil {
		forget()
		return CompactResult{}, fmt.Errorf("flush: %s: compacting: %w", t.FullName(), err)
	}

	// One atomic batch records the new segments and forgets the old ones.
	// (fitCommit chose in so that it fits the backend's batch limits; a
	// commit that still does not is given up, files and all.)
	ops := make([]store.Operation, 0, len(out)+len(in))
	for _, f := range out {
		rec, err := encodeSegment(&f.Segment)
		if err != nil {
			forget()
			return CompactResult{}, err
		}
		ops = append(ops, store.PutOp(layout.Manifests, manifestKey(&f.Segment), rec))
	}
	for _, f := range in {
		ops = append(ops, store.DeleteOp(layout.Manifests, manifestKey(&f.Segment)))
	}
	vops, version, err := m.versionOps(tr)
	if err != nil {
		forget()
		return CompactResult{}, err
	}
	// caps leaves room for vops.
	if err := m.caps(tr).CheckBatch(ops); err != nil {
		forget()
		return CompactResult{}, fmt.Errorf("flush: %s: the commit of a compaction of %d segments: %w", t.FullName(), len(in), err)
	}
	ops = append(ops, vops...)
	if err := m.fencedBatch(ctx, tr, ops); err != nil {
		// The first old record is gone once the commit applied.
		err = m.failedCommit(tr, &doubt{
			what:               fmt.Sprintf("the commit of a compaction of %d segments", len(in)),
			key:                manifestKey(&in[0].Segment),
			presentIfCommitted: false,
			committed: func() {
				tr.replace(user, in, out)
				tr.workVersion = version
			},
			notCommitted: forget,
			files:        out,
		}, err)
		if err != nil {
			return CompactResult{}, err
		}
	} else {
		tr.replace(user, in, out)
		tr.workVersion = version
	}
	res.Written = len(out)
	res.Dropped = inRows - res.Rows
	return res, nil
}

// replace swaps the segments old of user for new, and drops the tier's
// references to old: each file goes once its last reader is done (on a
// shared backend, by the garbage rule). Segments are matched by id, as a
// read of the manifest (sync) may have listed the new ones already.
func (tr *tier) replace(user string, old, new []*segFile) {
	for _, f := range new {
		f.refs.Store(1)
	}
	var gone []*segFile
	tr.mu.Lock()
	for _, f := range old {
		if g := tr.unlistLocked(user, f.ID); g != nil {
			gone = append(gone, g)
		}
	}
	for _, f := range new {
		tr.insertLocked(f)
	}
	tr.mu.Unlock()
	for _, f := range gone {
		tr.release(f)
	}
}
