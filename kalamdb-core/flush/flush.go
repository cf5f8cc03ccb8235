package flush

import (
	"context"
	"errors"
	"fmt"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Result reports a flush.
type Result struct {
	// Tables is how many tables were flushed.
	Tables int
	// Rows is how many row versions were written to segments, Tombstones
	// how many of them were deletions.
	Rows       int64
	Tombstones int64
	// Removed is how many buffered versions the flush deleted from the
	// buffer; Kept is how many it left because they changed while it ran.
	Removed int64
	Kept    int64
	// Files are the segments written, relative to the Parquet directory.
	Files []string
	// Compacted is what the scheduler's compactions did in the same round
	// (CheckPolicies only).
	Compacted CompactResult
}

func (r *Result) add(o Result) {
	r.Compacted.add(o.Compacted)
	r.Tables += o.Tables
	r.Rows += o.Rows
	r.Tombstones += o.Tombstones
	r.Removed += o.Removed
	r.Kept += o.Kept
	r.Files = append(r.Files, o.Files...)
}

// Flush flushes table ns.name now: every buffered version of every user
// (of the table, for a shared table) is written to segments and then
// removed from the buffer, unless it changed while the flush ran. It waits
// for a flush of the same table in progress. A stream table is
// core.ErrWrongTableType.
func (m *Manager) Flush(ctx context.Context, ns, name string) (Result, error) {
	t, err := m.db.Catalog().FindTable(ctx, ns, name)
	if err != nil {
		return Result{}, err
	}
	return m.flushTable(ctx, t, TriggerManual)
}

// flushTable flushes t for trigger and records the outcome.
func (m *Manager) flushTable(ctx context.Context, t *catalog.Table, trigger string) (Result, error) {
	start := m.clock.Now()
	t, buf, err := m.buffer(ctx, t.Namespace, t.Name)
	if err != nil {
		return Result{}, err
	}
	tr := m.tier(t)
	var res Result
	err = guard.Run("flush: flush of "+t.FullName(), func() error {
		tr.flushMu.Lock()
		defer tr.flushMu.Unlock()
		release, err := m.takeLease(ctx, tr)
		if err != nil {
			return err
		}
		defer release()
		if err := m.syncForWork(ctx, tr); err != nil {
			return err
		}
		written := buf.Written()
		if res, err = m.flushLocked(ctx, tr, buf); err == nil {
			buf.Flushed(written) // writes during the flush still count
		}
		return err
	})
	m.record(Event{Table: t, Op: OpFlush, Trigger: trigger, Flush: res, Err: err}, start)
	return res, err
}

func (m *Manager) flushLocked(ctx context.Context, tr *tier, buf *tables.Buffer) (Result, error) {
	tr.mu.RLock()
	dropped := tr.dropped
	tr.mu.RUnlock()
	if dropped {
		return Result{}, fmt.Errorf("%w: %s", core.ErrTableNotFound, tr.table().FullName())
	}
	if err := m.settle(ctx, tr); err != nil {
		return Result{}, err
	}
	res := Result{Tables: 1}
	users := []string{""}
	if tr.perUser {
		var err error
		if users, err = buf.Users(ctx); err != nil {
			return res, fmt.Errorf("flush: %s: listing users: %w", tr.table().FullName(), err)
		}
	}
	for _, u := range users {
		if err := m.flushUser(ctx, tr, buf, u, &res); err != nil {
			return res, err
		}
	}
	tr.mu.Lock()
	tr.lastFlush = m.clock.Now()
	tr.mu.Unlock()
	return res, nil
}

// flushUser flushes the buffered versions of one user (of the whole table
// for a shared table), in segments of at most MaxSegmentRows versions.
func (m *Manager) flushUser(ctx context.Context, tr *tier, buf *tables.Buffer, user string, res *Result) error {
	t := tr.table()
	prefix := tr.prefix(user)
	dir, err := tr.userDir(user)
	if err != nil {
		return err
	}
	// The table's last _seq, read with no write in flight: if it is the
	// same at commit time, no version changed and the commit need not
	// check the buffer again.
	unlock := buf.LockAll()
	quiet := buf.LastSeq()
	unlock()
	it, err := buf.Entries(ctx, user)
	if err != nil {
		return fmt.Errorf("flush: %s: reading the buffer: %w", t.FullName(), err)
	}
	defer it.Close()
	types := buf.Types()
	more := it.Next()
	for more {
		spec, err := m.nextSpec(ctx, tr, user, dir)
		if err != nil {
			return err
		}
		var (
			refs  versionRefs
			arena []byte
			r     row.Row
		)
		st, err := segment.Create(ctx, m.store, spec, func(w *segment.Writer) error {
			for more && refs.len() < m.opts.MaxSegmentRows {
				k, v := it.Key(), it.Value()
				seq, _, deleted, err := row.PeekMeta(v)
				if err != nil {
					return fmt.Errorf("buffer key %x: %w", k, err)
				}
				if len(arena)+len(k) > cap(arena) {
					arena = make([]byte, 0, max(64<<10, len(k)))
				}
				start := len(arena)
				arena = append(arena, k...)
				ref := tables.VersionRef{Key: arena[start:len(arena):len(arena)], Seq: seq}
				write := true
				if deleted {
					// A deletion only needs to reach the cold tier when
					// the cold tier has a version for it to hide.
					has, err := tr.has(ctx, ref.Key)
					if err != nil {
						return err
					}
					write = has
				}
				if write {
					// Decoded in place: r refers to the iterator's
					// value, which stays valid until Next, and Append
					// copies it into the segment's columns.
					if err := row.DecodeOwned(v, types, &r); err != nil {
						return fmt.Errorf("buffer key %x: %w", k, err)
					}
					if err := w.Append(ref.Key, &r); err != nil {
						return err
					}
				}
				refs.add(ref)
				more = it.Next()
			}
			if !more {
				return it.Err()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("flush: %s: writing %s: %w", t.FullName(), spec.Path(), err)
		}
		seg := m.written(tr, spec, st)
		removed, err := m.commit(ctx, tr, buf, prefix, seg, &refs, quiet)
		if err != nil {
			return err
		}
		if seg != nil {
			res.Rows += st.Rows
			res.Tombstones += st.Tombstones
			res.Files = append(res.Files, seg.Path)
		}
		res.Removed += int64(removed)
		res.Kept += int64(refs.len() - removed)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("flush: %s: reading the buffer: %w", t.FullName(), err)
	}
	return nil
}

// nextSpec returns the Spec of user's next segment, in dir, with a new
// segment id.
func (m *Manager) nextSpec(ctx context.Context, tr *tier, user, dir string) (segment.Spec, error) {
	id, err := m.allocID(ctx, tr)
	if err != nil {
		return segment.Spec{}, err
	}
	t := tr.table()
	return segment.Spec{
		Dir: dir, Name: segment.FileName(t.ID, id), Table: t, Prefix: tr.prefix(user),
		Meta:    segment.Meta{TableID: t.ID, Namespace: t.Namespace, Table: t.Name, User: user, Segment: id},
		Options: segment.WriteOptions{RowGroupRows: m.opts.RowGroupRows},
	}, nil
}

// written returns the segment segment.Create wrote for spec, not yet
// committed; nil when it wrote nothing (no version to write).
func (m *Manager) written(tr *tier, spec segment.Spec, st segment.Stats) *segFile {
	if st.Rows == 0 {
		return nil
	}
	t := tr.table()
	return &segFile{Segment: Segment{TableID: t.ID, Namespace: t.Namespace, Table: t.Name, ID: spec.Meta.Segment, User: spec.Meta.User,
		Path: spec.Path(), Rows: st.Rows, Tombstones: st.Tombstones, MinKey: st.MinKey, MaxKey: st.MaxKey,
		MinSeq: st.MinSeq, MaxSeq: st.MaxSeq, RowGroups: st.RowGroups, Bytes: st.Bytes, Created: m.clock.Now().UTC()}}
}

// FlushAll flushes every user and shared table, one after the other. It
// goes on after a failure and returns the first error.
func (m *Manager) FlushAll(ctx context.Context) (Result, error) {
	return m.flushAll(ctx, TriggerManual)
}

func (m *Manager) flushAll(ctx context.Context, trigger string) (Result, error) {
	ts, err := m.db.Catalog().Tables("")
	if err != nil {
		return Result{}, err
	}
	var total Result
	var first error
	for _, t := range ts {
		if t.Type == catalog.StreamTable {
			continue
		}
		res, err := m.flushTable(ctx, t, trigger)
		total.add(res)
		if err != nil && !errors.Is(err, core.ErrTableNotFound) && first == nil {
			first = err
		}
	}
	return total, first
}
