package tablestest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// MultiProcess returns b claiming that several processes share it
// (store.Capabilities.MultiProcess), as Redis and etcd do: table layers
// opened on it behave as several servers' do (every write's batch checks
// that its key still holds what the write read, and the catalog is read
// again when other servers may have changed it).
func MultiProcess(b store.StorageBackend) store.StorageBackend { return multiProcess{b} }

// multiProcess is the backend MultiProcess returns.
type multiProcess struct{ store.StorageBackend }

func (m multiProcess) Capabilities() store.Capabilities {
	c := m.StorageBackend.Capabilities()
	c.MultiProcess = true
	return c
}

// processes returns the stores of kind of two table layers opened on one
// backend, standing for two servers: each has its own key locks, caches and
// _seq allocators, and only the backend's checks keep them consistent.
func processes(t *testing.T, h Harness, kind string) (e *env, a, b rowStore) {
	e = newEnvWith(t, h, envOptions{wrap: func(b store.StorageBackend) store.StorageBackend { return multiProcess{yielding{b}} }})
	db2, err := tables.Open(e.ctx, e.b, tables.Options{Clock: e.clock, SeqBlock: 16})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db2.Close() })
	e2 := *e
	e2.db = db2
	return e, e.kinds()[kind](), e2.kinds()[kind]()
}

// testProcessesInsertSameKey: workers of two table layers on one shared
// backend insert the same keys; each key is inserted exactly once, and no
// _seq is handed out twice.
func testProcessesInsertSameKey(t *testing.T, h Harness, kind string) {
	e, a, b := processes(t, h, kind)
	const workers, keys = 4, 40
	wins := make([]int, keys)
	seqs := map[int64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 2 * workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			for k := range keys {
				vals := sample(int64(k))
				vals[colSmall] = row.Int32(int32(w))
				seq, err := s.Insert(e.ctx, vals)
				if err != nil {
					assert.ErrorIs(t, err, core.ErrDuplicateKey)
					continue
				}
				mu.Lock()
				wins[k]++
				assert.False(t, seqs[seq], "_seq %d handed out twice", seq)
				seqs[seq] = true
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for k, n := range wins {
		assert.Equal(t, 1, n, "key %d inserted %d times", k, n)
	}
	for _, s := range []rowStore{a, b} {
		n, err := s.Count(e.ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(keys), n)
	}
}

// testProcessesNoLostUpdate: workers of two table layers on one shared
// backend each update their own column of one row, many times, with
// growing values. An update applied to a version that another process had
// already replaced would put that process's column back to an older
// value: every read must show each column at or above what its worker last
// wrote, and the end must show every worker's last value.
func testProcessesNoLostUpdate(t *testing.T, h Harness, kind string) {
	e, a, b := processes(t, h, kind)
	const rounds = 60
	_, err := a.Insert(e.ctx, sample(1))
	require.NoError(t, err)
	type worker struct {
		col int
		val func(i int) row.Value
		get func(row.Value) int64
	}
	workers := []worker{
		{colBody, func(i int) row.Value { return row.String(fmt.Sprintf("%06d", i)) }, func(v row.Value) int64 {
			var n int64
			_, _ = fmt.Sscanf(v.Str(), "%d", &n)
			return n
		}},
		{colScore, func(i int) row.Value { return row.Float64(float64(i)) }, func(v row.Value) int64 { return int64(v.Float64()) }},
		{colSmall, func(i int) row.Value { return row.Int32(int32(i)) }, func(v row.Value) int64 { return int64(v.Int32()) }},
		{colAt, func(i int) row.Value { return row.TimestampMicros(int64(i)) }, func(v row.Value) int64 { return v.Micros() }},
	}
	name := func(col int) string { return columns()[col].Name }
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w, wk := range workers {
		s, other := a, b
		if w%2 == 1 {
			s, other = b, a
		}
		wg.Go(func() {
			<-start
			for i := 1; i <= rounds; i++ {
				_, err := s.Update(e.ctx, row.Int64(1), map[string]row.Value{name(wk.col): wk.val(i)})
				if !assert.NoError(t, err) {
					return
				}
				r, err := other.Get(e.ctx, row.Int64(1))
				if !assert.NoError(t, err) {
					return
				}
				if got := wk.get(r.Values[wk.col]); got < int64(i) {
					t.Errorf("column %s went back to %d after %d was written: an update was lost", name(wk.col), got, i)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for _, s := range []rowStore{a, b} {
		r, err := s.Get(context.Background(), row.Int64(1))
		require.NoError(t, err)
		for _, wk := range workers {
			assert.Equal(t, int64(rounds), wk.get(r.Values[wk.col]), "column %s", name(wk.col))
		}
	}
}

// testProcessesDeleteAndReinsert: a row deleted by one process and
// inserted again by the other reads as the new row from both, and its
// _seq is above the tombstone's.
func testProcessesDeleteAndReinsert(t *testing.T, h Harness, kind string) {
	e, a, b := processes(t, h, kind)
	for i := range 20 {
		first, other := a, b
		if i%2 == 1 {
			first, other = b, a
		}
		id := int64(100 + i)
		_, err := first.Insert(e.ctx, sample(id))
		require.NoError(t, err)
		require.NoError(t, other.Delete(e.ctx, row.Int64(id)))
		_, err = other.Get(e.ctx, row.Int64(id))
		require.ErrorIs(t, err, core.ErrRowNotFound)
		vals := sample(id)
		vals[colSmall] = row.Int32(7)
		_, err = first.Insert(e.ctx, vals)
		require.NoError(t, err, "a deleted row may be inserted again")
		for _, s := range []rowStore{a, b} {
			r, err := s.Get(e.ctx, row.Int64(id))
			require.NoError(t, err)
			assert.Equal(t, int32(7), r.Values[colSmall].Int32())
		}
	}
}

// testProcessesPurgeKeepsNewerWrites: one process removes flushed versions
// (Buffer.DeleteIfUnchanged, a flush's last step) while the other updates
// the same rows. An update that succeeded must survive: the purge removes a
// version only while its key still holds it, whatever the other process
// wrote between the purge's read and its batch.
func testProcessesPurgeKeepsNewerWrites(t *testing.T, h Harness, kind string) {
	e, a, b := processes(t, h, kind)
	const keys, rounds = 40, 5
	for round := range rounds {
		for k := range keys {
			_, err := a.Insert(e.ctx, sample(int64(k)))
			require.NoError(t, err)
		}
		it, err := a.Buffer().Versions(e.ctx, a.user())
		require.NoError(t, err)
		var refs []tables.VersionRef
		for it.Next() {
			refs = append(refs, tables.VersionRef{Key: append([]byte(nil), it.Key()...), Seq: it.Seq()})
		}
		require.NoError(t, it.Close())
		require.Len(t, refs, keys)

		updated := make([]bool, keys)
		var wg sync.WaitGroup
		wg.Go(func() {
			for k := range keys {
				_, err := b.Update(e.ctx, row.Int64(int64(k)), map[string]row.Value{"body": row.String("newer")})
				if err == nil {
					updated[k] = true
				} else {
					assert.ErrorIs(t, err, core.ErrRowNotFound, "the purge removed the row first")
				}
			}
		})
		_, err = a.Buffer().DeleteIfUnchanged(e.ctx, refs)
		require.NoError(t, err)
		wg.Wait()
		for k := range keys {
			r, err := a.Get(e.ctx, row.Int64(int64(k)))
			if updated[k] {
				if assert.NoError(t, err, "round %d: key %d: an acknowledged update was purged", round, k) {
					assert.Equal(t, "newer", r.Values[colBody].Str())
				}
			} else {
				assert.ErrorIs(t, err, core.ErrRowNotFound, "round %d: key %d", round, k)
			}
			if updated[k] {
				require.NoError(t, a.Delete(e.ctx, row.Int64(int64(k))))
			}
		}
		// Clear the tombstones for the next round.
		it, err = a.Buffer().Versions(e.ctx, a.user())
		require.NoError(t, err)
		refs = refs[:0]
		for it.Next() {
			refs = append(refs, tables.VersionRef{Key: append([]byte(nil), it.Key()...), Seq: it.Seq()})
		}
		require.NoError(t, it.Close())
		_, err = a.Buffer().DeleteIfUnchanged(e.ctx, refs)
		require.NoError(t, err)
	}
}
