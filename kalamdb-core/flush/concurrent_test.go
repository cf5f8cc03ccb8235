package flush_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
)

// TestWritersDuringFlushes runs writers that insert, update and delete
// while flushes run back to back. Each writer owns its keys, so the
// expected final content is known; every update or delete of a row
// flushed a moment before must win over the flushed version.
func TestWritersDuringFlushes(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e := newEnv(t, func(o *flush.Options) { o.MaxSegmentRows = 50 })
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
				for ctx.Err() == nil {
					_, err := e.m.Flush(e.ctx, ns, "items")
					if err != nil {
						t.Errorf("flush: %v", err)
						cancel()
						return
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
