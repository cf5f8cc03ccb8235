package tablestest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// rowStoreOf returns the RowStore of db that s stands for: the user table
// bound to s's user, or the shared table.
func rowStoreOf(t *testing.T, ctx context.Context, db *tables.DB, s rowStore) *tables.RowStore {
	t.Helper()
	name := userTable
	if s.user() == "" {
		name = sharedTable
	}
	rs, err := db.RowStore(ctx, ns, name, s.user())
	require.NoError(t, err)
	return rs
}

// versions returns every live row of s with its _seq, for comparing a
// table before and after a change that must change nothing.
func versions(t *testing.T, e *env, s rowStore) []row.Row {
	t.Helper()
	return scanAll(t, e, s, 1000)
}

func pks(ids ...int64) []row.Value {
	out := make([]row.Value, len(ids))
	for i, id := range ids {
		out[i] = row.Int64(id)
	}
	return out
}

func setBody(body string, ids ...int64) []tables.RowUpdate {
	out := make([]tables.RowUpdate, len(ids))
	for i, id := range ids {
		out[i] = tables.RowUpdate{PK: row.Int64(id), Set: map[string]row.Value{"body": row.String(body)}}
	}
	return out
}

// testUpdateDeleteMany: UpdateMany and DeleteMany change the live rows they
// name, leave out absent ones, give the new versions consecutive _seq
// values above the old ones, and change nothing when one change is bad.
func testUpdateDeleteMany(t *testing.T, e *env, s rowStore) {
	rs := rowStoreOf(t, e.ctx, e.db, s)
	_, err := s.Insert(e.ctx, sample(1), sample(2), sample(3), sample(4), sample(5))
	require.NoError(t, err)
	require.NoError(t, s.Delete(e.ctx, row.Int64(5)))
	before := versions(t, e, s)

	e.clock.Advance(3e9)
	ups := setBody("many", 3, 9, 1, 5)
	ups[0].Set["small"] = row.Int32(-3)
	n, err := rs.UpdateMany(e.ctx, ups)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "absent and deleted rows are left out")
	r3, err := s.Get(e.ctx, row.Int64(3))
	require.NoError(t, err)
	r1, err := s.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	want := sample(3)
	want[colBody], want[colSmall] = row.String("many"), row.Int32(-3)
	assertValues(t, want, r3.Values)
	assert.Equal(t, "many", r1.Values[colBody].Str())
	assert.Equal(t, r3.Seq+1, r1.Seq, "consecutive _seq in the order given")
	assert.Greater(t, r3.Seq, before[len(before)-1].Seq, "above every version replaced")
	assert.Equal(t, r3.Updated, r1.Updated)
	assert.Equal(t, t0.Add(3e9).UnixMicro(), r1.Updated)
	_, err = s.Get(e.ctx, row.Int64(5))
	assert.ErrorIs(t, err, core.ErrRowNotFound, "a deleted row stays deleted")

	// A bad change anywhere changes nothing.
	mid := versions(t, e, s)
	bad := setBody("x", 1, 2, 4)
	bad[1].Set["small"] = row.Null()
	_, err = rs.UpdateMany(e.ctx, bad)
	requireColumnError(t, err, core.ErrInvalidRow, "small")
	assert.ErrorContains(t, err, "row 1")
	bad = setBody("x", 1, 2)
	bad[1].Set["id"] = row.Int64(7)
	_, err = rs.UpdateMany(e.ctx, bad)
	requireColumnError(t, err, core.ErrInvalidRow, "id")
	_, err = rs.UpdateMany(e.ctx, []tables.RowUpdate{{PK: row.Int64(1)}})
	assert.ErrorIs(t, err, core.ErrInvalidRow)
	_, err = rs.UpdateMany(e.ctx, []tables.RowUpdate{setBody("x", 1)[0], {PK: row.String("two"), Set: map[string]row.Value{"body": row.Null()}}})
	requireColumnError(t, err, core.ErrInvalidRow, "id")
	_, err = rs.UpdateMany(e.ctx, setBody("x", 2, 4, 2))
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "named twice")
	_, err = rs.DeleteMany(e.ctx, pks(4, 1, 4))
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.Equal(t, mid, versions(t, e, s), "refused changes wrote nothing")

	n, err = rs.UpdateMany(e.ctx, nil)
	require.NoError(t, err)
	assert.Zero(t, n)
	n, err = rs.DeleteMany(e.ctx, nil)
	require.NoError(t, err)
	assert.Zero(t, n)

	n, err = rs.DeleteMany(e.ctx, pks(4, 8, 1, 5))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, []int64{2, 3}, ids(versions(t, e, s)))
	tomb := bufferVersion(t, e, s, row.Int64(1))
	assert.True(t, tomb.Deleted)
	assert.Equal(t, "many", tomb.Values[colBody].Str(), "the tombstone keeps the last values")
	assert.Greater(t, tomb.Seq, r1.Seq)
	// Deleted rows are left out of a second delete and can be inserted again.
	n, err = rs.DeleteMany(e.ctx, pks(4, 1))
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = s.Insert(e.ctx, sample(1))
	require.NoError(t, err)
}

// testManyWithinBatchLimits: a change larger than the backend applies at
// once is refused whole, and one that fits is applied.
func testManyWithinBatchLimits(t *testing.T, e *env, s rowStore) {
	rs := rowStoreOf(t, e.ctx, e.db, s)
	maxOps := e.b.Capabilities().MaxBatchOps
	total := maxOps + 1
	if maxOps == 0 {
		total = 5000
	}
	chunk := total
	if maxOps > 0 {
		chunk = maxOps
	}
	all := make([]int64, total)
	for from := 0; from < total; from += chunk {
		var rows [][]row.Value
		for i := from; i < min(from+chunk, total); i++ {
			rows = append(rows, sample(int64(i)))
			all[i] = int64(i)
		}
		_, err := s.Insert(e.ctx, rows...)
		require.NoError(t, err)
	}
	if maxOps == 0 {
		n, err := rs.UpdateMany(e.ctx, setBody("all", all...))
		require.NoError(t, err)
		assert.Equal(t, total, n)
		n, err = rs.DeleteMany(e.ctx, pks(all...))
		require.NoError(t, err)
		assert.Equal(t, total, n)
		c, err := s.Count(e.ctx)
		require.NoError(t, err)
		assert.Zero(t, c)
		return
	}
	before := versions(t, e, s)
	_, err := rs.UpdateMany(e.ctx, setBody("all", all...))
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "change fewer rows at a time")
	assert.ErrorContains(t, err, "MaxBatchOps")
	_, err = rs.DeleteMany(e.ctx, pks(all...))
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "MaxBatchOps")
	assert.Equal(t, before, versions(t, e, s), "nothing of a refused change is stored")

	n, err := rs.UpdateMany(e.ctx, setBody("fits", all[:maxOps]...))
	require.NoError(t, err)
	assert.Equal(t, maxOps, n)
	n, err = rs.DeleteMany(e.ctx, pks(all[1:]...))
	require.NoError(t, err)
	assert.Equal(t, maxOps, n)
	left := versions(t, e, s)
	require.Len(t, left, 1)
	assert.Equal(t, "fits", left[0].Values[colBody].Str())
}

// testManyColdRows: rows that live only in the cold tier are updated and
// deleted like buffered ones, their new versions above the cold ones.
func testManyColdRows(t *testing.T, e *env, s rowStore) {
	rs := rowStoreOf(t, e.ctx, e.db, s)
	cold := e.coldOf(s)
	_, err := s.Insert(e.ctx, sample(1), sample(2), sample(3), sample(4))
	require.NoError(t, err)
	require.Equal(t, 4, flushOnce(t, e, s, cold))
	_, err = s.Insert(e.ctx, sample(5))
	require.NoError(t, err)
	// A cold version newer than any this process handed out, as another
	// server's would be: the new version must still be above it.
	r2, err := s.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)
	r2.Seq += 1000
	cold.put(key(t, s, 2), r2)

	n, err := rs.UpdateMany(e.ctx, setBody("hot", 1, 2, 5))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	got, err := s.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)
	assert.Equal(t, "hot", got.Values[colBody].Str())
	assert.Greater(t, got.Seq, r2.Seq)
	n, err = rs.DeleteMany(e.ctx, pks(3, 2, 9))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	all := versions(t, e, s)
	assert.Equal(t, []int64{1, 4, 5}, ids(all))
	assert.Equal(t, "hot", all[0].Values[colBody].Str())
	assert.Equal(t, sample(4)[colBody], all[1].Values[colBody])
	assert.True(t, bufferVersion(t, e, s, row.Int64(3)).Deleted, "a cold row's tombstone is buffered")

	// Flushed again, the tombstones still hide the rows.
	flushOnce(t, e, s, cold)
	assert.Equal(t, []int64{1, 4, 5}, ids(versions(t, e, s)))
}

// errInjected is the storage failure failKey injects.
var errInjected = errors.New("injected storage failure")

// failKey is a backend whose writes of one key fail with errInjected: a
// Put of it, or any batch that puts it.
type failKey struct {
	store.StorageBackend
	mu  sync.Mutex
	key []byte
}

func (f *failKey) fails(key []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.key != nil && bytes.Equal(f.key, key)
}

func (f *failKey) set(key []byte) {
	f.mu.Lock()
	f.key = key
	f.mu.Unlock()
}

func (f *failKey) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	if f.fails(key) {
		return errInjected
	}
	return f.StorageBackend.Put(ctx, p, key, value)
}

func (f *failKey) Batch(ctx context.Context, ops []store.Operation) error {
	for _, op := range ops {
		if op.Kind == store.OpPut && f.fails(op.Key) {
			return errInjected
		}
	}
	return f.StorageBackend.Batch(ctx, ops)
}

// testManyStorageFailure: when the backend fails to write one row of a
// change, no row of it changes, buffered or cold.
func testManyStorageFailure(t *testing.T, h Harness, kind string) {
	fk := &failKey{}
	e := newEnvWith(t, h, envOptions{cold: true, wrap: func(b store.StorageBackend) store.StorageBackend {
		fk.StorageBackend = b
		return fk
	}})
	s := e.kinds()[kind]()
	rs := rowStoreOf(t, e.ctx, e.db, s)
	_, err := s.Insert(e.ctx, sample(1), sample(2))
	require.NoError(t, err)
	require.Equal(t, 2, flushOnce(t, e, s, e.coldOf(s)))
	_, err = s.Insert(e.ctx, sample(3), sample(4), sample(5))
	require.NoError(t, err)
	before := versions(t, e, s)

	fk.set(key(t, s, 4))
	_, err = rs.UpdateMany(e.ctx, setBody("lost", 1, 2, 3, 4, 5))
	require.ErrorIs(t, err, errInjected)
	assert.Equal(t, before, versions(t, e, s), "a failed update changed some rows")
	_, err = rs.DeleteMany(e.ctx, pks(1, 2, 3, 4, 5))
	require.ErrorIs(t, err, errInjected)
	assert.Equal(t, before, versions(t, e, s), "a failed delete removed some rows")

	fk.set(nil)
	n, err := rs.UpdateMany(e.ctx, setBody("kept", 1, 2, 3, 4, 5))
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	for _, r := range versions(t, e, s) {
		assert.Equal(t, "kept", r.Values[colBody].Str())
	}
}

// hookBatch runs its hook, once, before the first batch after it is set,
// and counts the batches that failed a check.
type hookBatch struct {
	store.StorageBackend
	hook      atomic.Pointer[func()]
	conflicts atomic.Int64
}

func (h *hookBatch) Batch(ctx context.Context, ops []store.Operation) error {
	if f := h.hook.Swap(nil); f != nil {
		(*f)()
	}
	err := h.StorageBackend.Batch(ctx, ops)
	if errors.Is(err, store.ErrConditionFailed) {
		h.conflicts.Add(1)
	}
	return err
}

// testProcessesManyRetried: another server changes a row between a
// change's reads and its batch; the batch fails its check, and the change
// is read and decided again as a whole: the other server's change is kept,
// and a row it deleted is left out.
func testProcessesManyRetried(t *testing.T, h Harness, kind string) {
	hb := &hookBatch{}
	e := newEnvWith(t, h, envOptions{wrap: func(b store.StorageBackend) store.StorageBackend {
		hb.StorageBackend = b
		return multiProcess{hb}
	}})
	db2, err := tables.Open(e.ctx, e.b, tables.Options{Clock: e.clock, SeqBlock: 16})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db2.Close() })
	e2 := *e
	e2.db = db2
	a, b := e.kinds()[kind](), e2.kinds()[kind]()
	ra := rowStoreOf(t, e.ctx, e.db, a)
	_, err = a.Insert(e.ctx, sample(1), sample(2), sample(3))
	require.NoError(t, err)

	var bSeq int64
	hook := func() {
		r, err := b.Update(e.ctx, row.Int64(2), map[string]row.Value{"small": row.Int32(222)})
		assert.NoError(t, err)
		bSeq = r.Seq
	}
	hb.hook.Store(&hook)
	n, err := ra.UpdateMany(e.ctx, setBody("a", 1, 2, 3))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Positive(t, hb.conflicts.Load(), "the hook's write made the first batch fail its check")
	for _, s := range []rowStore{a, b} {
		r, err := s.Get(e.ctx, row.Int64(2))
		require.NoError(t, err)
		assert.Equal(t, "a", r.Values[colBody].Str())
		assert.Equal(t, int32(222), r.Values[colSmall].Int32(), "the other server's update was lost")
		assert.Greater(t, r.Seq, bSeq)
	}

	conflicts := hb.conflicts.Load()
	hook = func() { assert.NoError(t, b.Delete(e.ctx, row.Int64(3))) }
	hb.hook.Store(&hook)
	n, err = ra.DeleteMany(e.ctx, pks(1, 3))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the row the other server deleted is left out")
	assert.Greater(t, hb.conflicts.Load(), conflicts)
	for _, s := range []rowStore{a, b} {
		assert.Equal(t, []int64{2}, ids(versions(t, e, s)))
	}
}

// testManyUserIsolation: a user's UpdateMany and DeleteMany reach that
// user's rows only, whatever keys they name.
func testManyUserIsolation(t *testing.T, e *env) {
	s := e.user()
	for _, u := range []string{"alice", "bob"} {
		_, err := s.Insert(e.ctx, u, sample(1), sample(2))
		require.NoError(t, err)
	}
	_, err := s.Insert(e.ctx, "bob", sample(3))
	require.NoError(t, err)
	alice, err := e.db.RowStore(e.ctx, ns, userTable, "alice")
	require.NoError(t, err)
	n, err := alice.UpdateMany(e.ctx, setBody("alice's", 1, 2, 3))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "bob's row 3 is not alice's")
	n, err = alice.DeleteMany(e.ctx, pks(2, 3))
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	bob := userView{s: s, u: "bob"}
	rows := versions(t, e, bob)
	assert.Equal(t, []int64{1, 2, 3}, ids(rows))
	for _, r := range rows {
		assert.Equal(t, sample(r.Values[colID].Int64())[colBody], r.Values[colBody], "bob's row changed")
	}
	rows = versions(t, e, userView{s: s, u: "alice"})
	assert.Equal(t, []int64{1}, ids(rows))
	assert.Equal(t, "alice's", rows[0].Values[colBody].Str())
}

// testManyVersionsChecked: an UpdateMany whose updates name the _seq they
// were computed from, and a DeleteVersions, apply only while every row
// still holds that version; when one changed (or was deleted) they fail
// with tables.ErrRowChanged and change nothing.
func testManyVersionsChecked(t *testing.T, e *env, s rowStore) {
	rs := rowStoreOf(t, e.ctx, e.db, s)
	_, err := s.Insert(e.ctx, sample(1), sample(2), sample(3))
	require.NoError(t, err)
	seqOf := func(id int64) int64 {
		r, err := s.Get(e.ctx, row.Int64(id))
		require.NoError(t, err)
		return r.Seq
	}
	read1, read2 := seqOf(1), seqOf(2)
	// Another request changes row 2 after the versions were read.
	_, err = s.Update(e.ctx, row.Int64(2), map[string]row.Value{"body": row.String("other")})
	require.NoError(t, err)
	before := versions(t, e, s)

	ups := setBody("stale", 1, 2)
	ups[0].Seq, ups[1].Seq = read1, read2
	_, err = rs.UpdateMany(e.ctx, ups)
	require.ErrorIs(t, err, tables.ErrRowChanged)
	require.ErrorIs(t, err, store.ErrConditionFailed)
	_, err = rs.DeleteVersions(e.ctx, []tables.RowVersion{{PK: row.Int64(1), Seq: read1}, {PK: row.Int64(2), Seq: read2}})
	require.ErrorIs(t, err, tables.ErrRowChanged)
	assert.Equal(t, before, versions(t, e, s), "nothing changed")

	// With the versions as they are now, both apply.
	ups[1].Seq = seqOf(2)
	n, err := rs.UpdateMany(e.ctx, ups)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = rs.DeleteVersions(e.ctx, []tables.RowVersion{{PK: row.Int64(1), Seq: seqOf(1)}, {PK: row.Int64(3), Seq: seqOf(3)}})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	// A deleted row no longer holds the version read.
	_, err = rs.DeleteVersions(e.ctx, []tables.RowVersion{{PK: row.Int64(1), Seq: read1}})
	require.ErrorIs(t, err, tables.ErrRowChanged)
}
