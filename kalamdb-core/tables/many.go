package tables

import (
	"context"
	"fmt"
	"slices"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// RowUpdate is one row's change of RowStore.UpdateMany: the columns of Set
// set on the row whose primary key is PK. Seq, when not 0, is the _seq of
// the version the new values were computed from: the change then applies
// only if that is still the row's version (see ErrRowChanged).
type RowUpdate struct {
	PK  row.Value
	Set map[string]row.Value
	Seq int64
}

// RowVersion names a version of a row: its primary key and its _seq.
type RowVersion struct {
	PK  row.Value
	Seq int64
}

// ErrRowChanged is the error of UpdateMany and DeleteVersions when a row no
// longer holds the version the change was computed from (another request
// changed or deleted it): nothing is applied, and the caller computes the
// change again from the rows as they are now. It wraps
// store.ErrConditionFailed.
var ErrRowChanged = fmt.Errorf("a row changed since it was read: %w", store.ErrConditionFailed)

// UpdateMany sets the columns of each update on its row, all rows or none:
// every new version is written by one batch of the storage backend, so a
// storage failure leaves every row as it was. A row absent or deleted when
// the batch is built is left out (another request deleted it), and the
// number of rows updated is returned. The new versions get consecutive
// _seq values in the order given, each above the version it replaces, and
// share one _updated.
//
// It fails, changing nothing, with core.ErrInvalidRow for a bad column name
// or value, or an attempt to change the primary key (the error names the
// update's index when there are several); core.ErrInvalidArgument for a
// primary key given twice, or a change larger than the backend applies at
// once (store.Capabilities.MaxBatchOps, MaxBatchBytes: update fewer rows at
// a time); and with the backend's error when its batch fails. On a backend
// several servers share, the batch checks that every row still holds the
// version read, and the whole change is read and decided again when another
// server changed one in between.
func (s *RowStore) UpdateMany(ctx context.Context, updates []RowUpdate) (int, error) {
	defer s.rt.reading()()
	changes := make([]change, len(updates))
	for i, u := range updates {
		changes[i] = change{pk: u.PK, set: u.Set, seq: u.Seq}
	}
	return s.rt.applyMany(ctx, s.user, changes)
}

// DeleteVersions soft-deletes the rows of versions, all or none, as
// DeleteMany does, but only if each row still holds the version named (a
// _seq of 0 takes any live version): when one does not, it fails with
// ErrRowChanged and deletes nothing. A statement that chose the rows by
// their values (SQL DELETE … WHERE) so never deletes a row whose values no
// longer match.
func (s *RowStore) DeleteVersions(ctx context.Context, versions []RowVersion) (int, error) {
	defer s.rt.reading()()
	changes := make([]change, len(versions))
	for i, v := range versions {
		changes[i] = change{pk: v.PK, del: true, seq: v.Seq}
	}
	return s.rt.applyMany(ctx, s.user, changes)
}

// DeleteMany soft-deletes the rows of pks, all or none, as Delete does one:
// every tombstone is written by one batch of the storage backend, so a
// storage failure deletes nothing. A row already absent or deleted is left
// out, and the number of rows deleted is returned. Its errors are
// UpdateMany's.
func (s *RowStore) DeleteMany(ctx context.Context, pks []row.Value) (int, error) {
	defer s.rt.reading()()
	changes := make([]change, len(pks))
	for i, pk := range pks {
		changes[i] = change{pk: pk, del: true}
	}
	return s.rt.applyMany(ctx, s.user, changes)
}

// change is one row's part of applyMany: the update of set on pk, or its
// soft delete when del; seq, when not 0, the version it must replace.
type change struct {
	pk  row.Value
	set map[string]row.Value
	del bool
	seq int64
}

// applyMany writes the new versions of changes' live rows in one batch; see
// RowStore.UpdateMany.
func (rt *rowTable) applyMany(ctx context.Context, user string, changes []change) (int, error) {
	n := len(changes)
	if n == 0 {
		return 0, nil
	}
	prefix, err := rt.scopePrefix(nil, user)
	if err != nil {
		return 0, err
	}
	arena := make([]byte, 0, n*(len(prefix)+12))
	ks := make([][]byte, n)
	for i, c := range changes {
		if !c.del {
			if err := rt.t.ValidatePatch(c.set); err != nil {
				return 0, rowErr(i, n, err)
			}
		}
		start := len(arena)
		arena = append(arena, prefix...)
		if arena, err = rt.t.AppendKey(arena, c.pk); err != nil {
			return 0, rowErr(i, n, err)
		}
		ks[i] = arena[start:len(arena):len(arena)]
	}
	if i, twice := repeated(ks); twice {
		return 0, rowErr(i, n, fmt.Errorf("%w: %s %s=%v is named twice in one change",
			core.ErrInvalidArgument, rt.t.FullName(), rt.pkName(), changes[i].pk))
	}
	g := rt.locks.LockKeys(ks)
	defer g.Unlock()
	// live are the indexes of the rows found live, next their new versions.
	live := make([]int, 0, n)
	next := make([]row.Row, 0, n)
	var checks, ops []store.Operation
	var vals []byte
attempts:
	for attempt := 0; ; attempt++ {
		live, next, checks = live[:0], next[:0], checks[:0]
		pins, err := rt.pin(ctx)
		if err != nil {
			return 0, err
		}
		var floor int64
		size := 0
		for i, k := range ks {
			cur, found, check, err := rt.current(ctx, k)
			if err != nil {
				return 0, rowErr(i, n, err)
			}
			if want := changes[i].seq; want != 0 && (!found || cur.Deleted || cur.Seq != want) {
				// No batch confirms what was read.
				if ok, err := rt.confirmed(ctx, pins, attempt); err != nil {
					return 0, err
				} else if !ok {
					continue attempts
				}
				return 0, rowErr(i, n, fmt.Errorf("%w: %s %s=%v no longer holds the version read (_seq %d)",
					ErrRowChanged, rt.t.FullName(), rt.pkName(), changes[i].pk, want))
			}
			if !found || cur.Deleted {
				continue
			}
			r := row.Row{Deleted: true, Values: cur.Values}
			if c := changes[i]; !c.del {
				if r.Values, err = rt.t.Patch(cur.Values, c.set); err != nil {
					return 0, rowErr(i, n, err)
				}
				r.Deleted = false
			}
			l, err := rt.encodedLen(r.Values)
			if err != nil {
				return 0, rowErr(i, n, err)
			}
			size += l
			floor = max(floor, cur.Seq)
			if rt.shared {
				checks = append(checks, check)
			}
			live = append(live, i)
			next = append(next, r)
		}
		m := len(live)
		if m == 0 {
			// No batch confirms that every row was absent.
			if ok, err := rt.confirmed(ctx, pins, attempt); err != nil {
				return 0, err
			} else if !ok {
				continue
			}
			return 0, nil
		}
		first, err := rt.alloc.NextAbove(ctx, m, floor)
		if err != nil {
			return 0, rt.wrap(err)
		}
		now := rt.clock.Now().UnixMicro()
		// On a shared buffer the batch holds a check per key, and the
		// shared sources' checks, before the puts, as an insert's does.
		ops = append(append(ops[:0], pins...), checks...)
		vals = slices.Grow(vals[:0], size)
		for j, i := range live {
			r := &next[j]
			r.Seq, r.Updated = first+int64(j), now
			start := len(vals)
			if vals, err = row.Encode(vals, r, rt.types); err != nil {
				return 0, rowErr(i, n, err)
			}
			ops = append(ops, store.PutOp(rt.part, ks[i], vals[start:len(vals):len(vals)]))
		}
		if err := rt.b.Capabilities().CheckBatch(ops); err != nil {
			return 0, fmt.Errorf("%w: the change of %d rows of %s does not fit what the storage backend writes at once, and a change of several rows is all or nothing; change fewer rows at a time (%v)",
				core.ErrInvalidArgument, m, rt.t.FullName(), err)
		}
		err = rt.b.Batch(ctx, ops)
		if err == nil {
			rt.written.Add(int64(m))
			return m, nil
		}
		if retry, err := rt.conflict(err, attempt); !retry {
			return 0, err
		}
	}
}
