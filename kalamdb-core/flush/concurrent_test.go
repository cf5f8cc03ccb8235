package flush_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// TestWritersDuringFlushes runs writers that insert, update and delete
// while flushes run back to back. Each writer owns its keys, so the
// expected final content is known; every update or delete of a row
// flushed a moment before must win over the flushed version.
func TestWritersDuringFlushes(t *testing.T) {
	for _, c := range []struct {
		typ     catalog.TableType
		noSnap  bool
		lockAll bool
	}{{catalog.UserTable, false, false}, {catalog.SharedTable, false, false}, {catalog.SharedTable, true, false},
		{catalog.UserTable, false, true}, {catalog.SharedTable, false, true}} {
		typ := c.typ
		name := string(typ)
		if c.noSnap {
			name += "/without-snapshot-scans"
		}
		if c.lockAll {
			name += "/lock-all"
		}
		t.Run(name, func(t *testing.T) {
			if c.lockAll {
				defer flush.SetLockAllAbove(0)()
			}
			e := newEnv(t, func(o *flush.Options) { o.MaxSegmentRows = 50 })
			if c.noSnap {
				e.noSnapshots = true
				e.reopen()
			}
			e.createTable("items", typ, catalog.FlushPolicy{})
			s := e.store("items")
			const writers, keysPer, ops = 4, 40, 400
			us := []string{"w0", "w1", "w2", "w3"}
			if typ == catalog.SharedTable {
				us = []string{"", "", "", ""}
			}
			models := make([]model, writers)
			ctx, cancel := context.WithCancel(e.ctx)
			var flushes sync.WaitGroup
			flushes.Add(1)
			// Writers wait for a new flush to complete every 50 operations,
			// so that flushes and writes interleave however the scheduler
			// runs the goroutines.
			var mu sync.Mutex
			cond := sync.NewCond(&mu)
			nFlush := 0
			go func() {
				defer flushes.Done()
				defer cond.Broadcast()
				for i := 0; ctx.Err() == nil; i++ {
					_, err := e.m.Flush(e.ctx, ns, "items")
					if err != nil {
						t.Errorf("flush: %v", err)
						cancel()
						return
					}
					if i%3 == 2 {
						// Compactions too, while the reader scans and
						// the writers write.
						if _, err := e.m.Compact(e.ctx, ns, "items"); err != nil {
							t.Errorf("compact: %v", err)
							cancel()
							return
						}
					}
					mu.Lock()
					nFlush++
					mu.Unlock()
					cond.Broadcast()
				}
			}()
			waitFlush := func() {
				mu.Lock()
				defer mu.Unlock()
				seen := nFlush
				for nFlush == seen && ctx.Err() == nil {
					cond.Wait()
				}
			}
			// A reader scans and counts while everything runs; the rows of a
			// writer's keys come and go, but reads never fail.
			flushes.Add(1)
			go func() {
				defer flushes.Done()
				for ctx.Err() == nil {
					for _, u := range uniq(us) {
						if _, err := s.scan(e.ctx, u, tables.ScanOptions{Limit: 30}); err != nil {
							t.Errorf("scan: %v", err)
							return
						}
						if _, err := s.count(e.ctx, u); err != nil {
							t.Errorf("count: %v", err)
							return
						}
					}
				}
			}()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					md := model{}
					u := us[w]
					rng := rand.New(rand.NewPCG(uint64(w), 42))
					base := int64(w * 1000)
					gen := 0
					for op := range ops {
						if op%50 == 49 {
							waitFlush()
						}
						id := base + int64(rng.IntN(keysPer))
						_, live := md[u][id]
						gen++
						var err error
						switch {
						case !live:
							err = s.insert(e.ctx, u, vals(id, gen))
							if err == nil {
								md.set(u, id, gen)
							}
						case rng.IntN(3) == 0:
							err = s.delete(e.ctx, u, id)
							if err == nil {
								md.del(u, id)
							}
						default:
							err = s.update(e.ctx, u, id, gen)
							if err == nil {
								md.set(u, id, gen)
							}
						}
						if err != nil {
							t.Errorf("writer %d id %d: %v", w, id, err)
							return
						}
					}
					models[w] = md
				}()
			}
			wg.Wait()
			cancel()
			flushes.Wait()
			require.False(t, t.Failed())
			t.Logf("%d flushes ran during the writes", nFlush)

			all := model{}
			for _, md := range models {
				for u, rows := range md {
					for id, gen := range rows {
						all.set(u, id, gen)
					}
				}
			}
			check := func() {
				for _, u := range uniq(us) {
					e.check("items", all, []string{u}, nil)
				}
			}
			check()
			_, err := e.m.Flush(e.ctx, ns, "items")
			require.NoError(t, err)
			assert.Zero(t, e.bufferLen("items"))
			check()
			e.reopen()
			check()
		})
	}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// TestConcurrentInsertOfAColdKey: two inserts of a key that lives only in
// a segment both fail, and two of a deleted cold key: exactly one wins.
func TestConcurrentInsertOfAColdKey(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	for id := int64(1); id <= 20; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
	}
	require.NoError(t, s.delete(e.ctx, "", 10))
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs[i] = s.insert(e.ctx, "", vals(5, i))
			} else {
				errs[i] = s.insert(e.ctx, "", vals(10, i))
			}
		}()
	}
	wg.Wait()
	wins10 := 0
	for i, err := range errs {
		if i%2 == 0 {
			assert.ErrorIs(t, err, core.ErrDuplicateKey)
		} else if err == nil {
			wins10++
		} else {
			assert.True(t, errors.Is(err, core.ErrDuplicateKey), "%v", err)
		}
	}
	assert.Equal(t, 1, wins10)
}

// TestReadsDuringFlushesSeeEveryRow: rows are only ever added, and
// flushes move them to segments, and compactions merge the segments, while
// readers scan and get: a row that existed when a read began is always in
// it (no row falls between the buffer and the segments, or between old and
// new segments), with and without snapshot scans. With segments of 30 rows
// the flushes write several files each; with 1,000 they write small ones,
// which the compactions merge, and the reads go on until some have been.
func TestReadsDuringFlushesSeeEveryRow(t *testing.T) {
	for _, noSnap := range []bool{false, true} {
		for _, segRows := range []int{30, 1000} {
			name := map[bool]string{false: "snapshot-scans", true: "without-snapshot-scans"}[noSnap] + fmt.Sprintf("/segments-of-%d", segRows)
			t.Run(name, func(t *testing.T) { readsDuringFlushes(t, noSnap, segRows) })
		}
	}
}

func readsDuringFlushes(t *testing.T, noSnap bool, segRows int) {
	e := newEnv(t, func(o *flush.Options) { o.MaxSegmentRows = segRows })
	if noSnap {
		e.noSnapshots = true
		e.reopen()
	}
	e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	s := e.store("items")
	const total = 600
	var inserted atomic.Int64
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	writerDone := make(chan struct{})
	var compacted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // writer
		defer wg.Done()
		defer close(writerDone)
		for id := int64(0); id < total; id++ {
			if err := s.insert(e.ctx, "u", vals(id, 0)); err != nil {
				t.Errorf("insert %d: %v", id, err)
				cancel()
				return
			}
			inserted.Store(id + 1)
		}
	}()
	go func() { // flusher, and compactor every other round
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := e.m.Flush(e.ctx, ns, "items"); err != nil {
				t.Errorf("flush: %v", err)
				cancel()
				return
			}
			if i%2 == 1 {
				res, err := e.m.Compact(e.ctx, ns, "items")
				if err != nil {
					t.Errorf("compact: %v", err)
					cancel()
					return
				}
				compacted.Add(int64(res.Merged))
			}
			if i%2 == 0 && segRows == 1000 {
				// A row between flushes, so that each flush writes a
				// small segment for the next compaction.
				select {
				case <-writerDone:
					if err := s.insert(e.ctx, "u", vals(total+int64(i), 0)); err != nil {
						t.Errorf("insert: %v", err)
						cancel()
						return
					}
				default:
				}
			}
		}
	}()
	done := func() bool {
		select {
		case <-writerDone:
			return segRows != 1000 || compacted.Load() > 0
		default:
			return false
		}
	}
	reads := 0
	for ctx.Err() == nil && !t.Failed() && !(done() && reads > 0) {
		k := inserted.Load()
		got := scanAll(t, e.ctx, s, "u", 25)
		require.GreaterOrEqual(t, int64(len(got)), k, "a scan lost rows")
		for i := range k {
			require.EqualValues(t, i, got[i].Values[0].Int64())
		}
		if k > 0 {
			_, err := s.get(e.ctx, "u", k-1)
			require.NoError(t, err, "get of row %d", k-1)
		}
		reads++
	}
	cancel()
	wg.Wait()
	require.False(t, t.Failed())
	t.Logf("%d full scans during the flushes, %d segments merged away", reads, compacted.Load())
	require.Positive(t, reads)
	if segRows == 1000 {
		require.Positive(t, compacted.Load())
	}
}

// hookedBatch runs a function before and after each Batch.
type hookedBatch struct {
	store.StorageBackend
	hook func(ops []store.Operation, applied bool)
}

// reopenHooked replaces the env's Manager by one on the env's storage
// whose batches go through hook, writing segments of at most segRows
// versions, and creates the user table "items" there.
func (e *env) reopenHooked(hook func(ops []store.Operation, applied bool), segRows int) {
	e.t.Helper()
	e.bs = nil
	e.m.Stop()
	m, err := flush.Open(e.ctx, hookedBatch{StorageBackend: e.inner, hook: hook}, flush.Options{FS: e.fsys, MaxSegmentRows: segRows, Tables: e.opts.Tables})
	require.NoError(e.t, err)
	e.m = m
	e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
}

func (h hookedBatch) Batch(ctx context.Context, ops []store.Operation) error {
	h.hook(ops, false)
	err := h.StorageBackend.Batch(ctx, ops)
	h.hook(ops, true)
	return err
}

// TestRowsStayVisibleAroundTheCommit reads the whole table just before and
// just after the commit batch of a flush is applied: every row is visible
// at both points (the segment is visible before its versions leave the
// buffer).
func TestRowsStayVisibleAroundTheCommit(t *testing.T) {
	e := newEnv(t)
	var checks atomic.Int64
	var s rowStore
	md := model{}
	hook := func(ops []store.Operation, applied bool) {
		commit := false
		for _, op := range ops {
			if op.Partition == layout.Manifests {
				commit = true
			}
		}
		if !commit || s.u == nil {
			return
		}
		checks.Add(1)
		got := scanAll(t, e.ctx, s, "u", 7)
		require.Len(t, got, len(md["u"]), "rows visible (batch applied: %v)", applied)
		for id := range md["u"] {
			_, err := s.get(e.ctx, "u", id)
			require.NoError(t, err, "get %d (batch applied: %v)", id, applied)
		}
	}
	e.reopenHooked(hook, 10)
	s = e.store("items")
	for id := int64(0); id < 35; id++ {
		require.NoError(t, s.insert(e.ctx, "u", vals(id, 0)))
		md.set("u", id, 0)
	}
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.EqualValues(t, 8, checks.Load(), "four commits, each checked before and after")
}

// TestQuietCommitDeletesOneRange flushes a user table of three users in
// segments of 7 versions with no write during the flush: each commit
// removes its versions with one range delete, and after each one the
// buffer holds exactly the versions not yet committed (a range reaching
// past its segment would remove the next segment's or the next user's).
func TestQuietCommitDeletesOneRange(t *testing.T) {
	defer flush.SetLockAllAbove(0)()
	e := newEnv(t)
	users := []string{"a", "b", "c"}
	const perUser = 20
	total := perUser * len(users)
	var commits, removed int
	hook := func(ops []store.Operation, applied bool) {
		if !applied || len(ops) == 0 || ops[0].Partition != layout.Manifests {
			return
		}
		require.Len(t, ops, 2, "the manifest record and one range delete")
		require.Equal(t, store.OpDeleteRange, ops[1].Kind)
		commits++
		removed += min(7, perUser-(removed%perUser))
		require.Equal(t, total-removed, e.bufferLen("items"), "buffer after commit %d", commits)
	}
	e.reopenHooked(hook, 7)
	s := e.store("items")
	md := model{}
	for _, u := range users {
		for id := int64(0); id < perUser; id++ {
			require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
			md.set(u, id, 0)
		}
	}
	res, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.EqualValues(t, total, res.Removed)
	assert.Zero(t, res.Kept)
	assert.Equal(t, 9, commits, "three segments per user")
	assert.Zero(t, e.bufferLen("items"))
	e.check("items", md, users, nil)
}
