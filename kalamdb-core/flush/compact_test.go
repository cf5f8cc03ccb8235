package flush_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// compactScenario fills table "items" through several flushes, each of
// new rows, updates of older rows (cold ones included) and deletions, so
// that its users have one segment per flush, with superseded versions and
// tombstones for a compaction to drop.
func compactScenario(t testing.TB, typ catalog.TableType, flushes int, mod ...func(*flush.Options)) (*env, model, map[string][]int64, []string) {
	e, s, us := itemsTable(t, typ, mod...)
	md := model{}
	gone := map[string][]int64{}
	for f := range flushes {
		for _, u := range us {
			base := int64(f * 10)
			for id := base + 1; id <= base+8; id++ {
				require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
				md.set(u, id, 0)
			}
			if f > 0 {
				// An update and a deletion of rows of the previous flush.
				require.NoError(t, s.update(e.ctx, u, base-8, f))
				md.set(u, base-8, f)
				require.NoError(t, s.delete(e.ctx, u, base-7))
				md.del(u, base-7)
				gone[u] = append(gone[u], base-7)
			}
		}
		_, err := e.m.Flush(e.ctx, ns, "items")
		require.NoError(t, err)
	}
	return e, md, gone, us
}

func segmentsByUser(t testing.TB, e *env) map[string][]flush.Segment {
	t.Helper()
	segs, err := e.m.Segments(context.Background(), ns, "items")
	require.NoError(t, err)
	out := map[string][]flush.Segment{}
	for _, s := range segs {
		out[s.User] = append(out[s.User], s)
	}
	return out
}

// TestCompactMergesEverySegmentOfAUser: a compaction of all the segments
// of a user writes one segment with the newest version of each live row,
// drops superseded versions and tombstones, removes the old files, and
// every row reads the same before, after, and after a reopen.
func TestCompactMergesEverySegmentOfAUser(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e, md, gone, us := compactScenario(t, typ, 5)
			before := segmentsByUser(t, e)
			var inRows int64
			for _, u := range us {
				require.Len(t, before[u], 5, "user %q: one segment per flush", u)
				for _, s := range before[u] {
					inRows += s.Rows
				}
			}
			e.check("items", md, us, gone)

			res, err := e.m.Compact(e.ctx, ns, "items")
			require.NoError(t, err)
			assert.Equal(t, 5*len(us), res.Merged)
			assert.Equal(t, len(us), res.Written)
			live := 0
			for _, u := range us {
				live += len(md[u])
			}
			assert.EqualValues(t, live, res.Rows, "one version per live row")
			assert.EqualValues(t, inRows-int64(live), res.Dropped)
			require.Len(t, res.Files, len(us))

			after := segmentsByUser(t, e)
			for _, u := range us {
				require.Len(t, after[u], 1, "user %q", u)
				assert.Zero(t, after[u][0].Tombstones, "nothing older is left for a tombstone to hide")
				assert.Greater(t, after[u][0].ID, before[u][4].ID, "the merged segment is the newest")
				for _, s := range before[u] {
					assert.NoFileExists(t, filepath.Join(e.root, filepath.FromSlash(s.Path)))
				}
			}
			e.check("items", md, us, gone)
			assertFilesMatchManifest(t, e)
			e.reopen()
			e.check("items", md, us, gone)
			assertFilesMatchManifest(t, e)

			// Nothing left to merge.
			res, err = e.m.Compact(e.ctx, ns, "items")
			require.NoError(t, err)
			assert.Zero(t, res.Merged)
		})
	}
}

// TestCompactKeepsTombstonesAboveFullSegments: a segment of MaxSegmentRows
// versions is never merged again, so a compaction of the small segments
// after it keeps the tombstones that hide its rows.
func TestCompactKeepsTombstonesAboveFullSegments(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.MaxSegmentRows = 10 })
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	md := model{}
	for id := int64(1); id <= 10; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
		md.set("", id, 0)
	}
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	for _, id := range []int64{1, 2} {
		require.NoError(t, s.delete(e.ctx, "", id))
		md.del("", id)
	}
	require.NoError(t, s.insert(e.ctx, "", vals(11, 0)))
	md.set("", 11, 0)
	_, err = e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	require.NoError(t, s.update(e.ctx, "", 3, 1))
	md.set("", 3, 1)
	_, err = e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	require.Len(t, segmentsByUser(t, e)[""], 3)

	res, err := e.m.Compact(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Merged, "the full segment stays")
	assert.Equal(t, 1, res.Written)
	segs := segmentsByUser(t, e)[""]
	require.Len(t, segs, 2)
	assert.EqualValues(t, 10, segs[0].Rows)
	assert.EqualValues(t, 2, segs[1].Tombstones, "the deletions of rows 1 and 2 still hide them")
	assert.EqualValues(t, 4, segs[1].Rows, "two tombstones, row 11 and the new version of row 3")
	gone := map[string][]int64{"": {1, 2}}
	e.check("items", md, []string{""}, gone)
	e.reopen()
	e.check("items", md, []string{""}, gone)
	assertFilesMatchManifest(t, e)
}

// TestScanAcrossACompaction: a scan that began before a compaction reads
// the old files to its end; they are removed when it closes.
func TestScanAcrossACompaction(t *testing.T) {
	e, md, _, _ := compactScenario(t, catalog.SharedTable, 3)
	old := segmentsByUser(t, e)[""]
	require.Len(t, old, 3)
	tbl, err := e.m.DB().Catalog().Table(ns, "items")
	require.NoError(t, err)
	cold, err := e.m.ColdTier().ColdSource(tbl)
	require.NoError(t, err)
	it, err := cold.Scan(e.ctx, nil, nil, false)
	require.NoError(t, err)
	require.True(t, it.Next())
	seen := map[string]bool{string(it.Key()): !it.Deleted()}

	res, err := e.m.Compact(e.ctx, ns, "items")
	require.NoError(t, err)
	require.Equal(t, 3, res.Merged)
	for _, s := range old {
		assert.FileExists(t, filepath.Join(e.root, filepath.FromSlash(s.Path)), "a reader still holds it")
	}
	for it.Next() {
		seen[string(it.Key())] = !it.Deleted()
	}
	require.NoError(t, it.Close())
	live := 0
	for _, ok := range seen {
		if ok {
			live++
		}
	}
	assert.Equal(t, len(md[""]), live, "the scan read every row from the old files")
	for _, s := range old {
		assert.NoFileExists(t, filepath.Join(e.root, filepath.FromSlash(s.Path)), "the last reader is gone")
	}
	assertFilesMatchManifest(t, e)
}

// oldFileRemoval reports whether a fault hit the removal of a merged
// segment's file (with the directories it leaves empty, which the removal
// looks for): that happens after the commit, so the compaction has
// succeeded, and the next Open removes the file.
func oldFileRemoval(where string) bool {
	for _, p := range []string{"fs remove ", "fs readdir ", "objects remove "} {
		if strings.HasPrefix(where, p) {
			return true
		}
	}
	return false
}

// TestCompactCrashAtEveryStepOnS3 and TestCompactFailAtEveryStepOnS3 are
// the compaction's crash and fault tests with the segments in an S3
// bucket behind a disk cache.
func TestCompactCrashAtEveryStepOnS3(t *testing.T) {
	defer withS3(t)()
	TestCompactCrashAtEveryStep(t)
}

func TestCompactFailAtEveryStepOnS3(t *testing.T) {
	defer withS3(t)()
	TestCompactFailAtEveryStep(t)
}

// opsOfCompaction counts the operations of the compaction under test.
func opsOfCompaction(t *testing.T, typ catalog.TableType) int {
	e, _, _, _ := compactScenario(t, typ, 3)
	return countOps(t, e, compactItems)
}

// TestCompactCrashAtEveryStep crashes the process (backend and files at
// once) at every operation of a compaction, loses what was not durable,
// reopens and compares every row; then it compacts again and compares
// once more. TestCompactFailAtEveryStep fails one operation instead: the
// compaction reports it, and reads and a retry are unaffected.
func TestCompactCrashAtEveryStep(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			total := opsOfCompaction(t, typ)
			require.Greater(t, total, 8, "the compaction has many steps")
			t.Logf("%d backend and file operations in the compaction", total)
			for at := 1; at <= total+1; at++ {
				e, md, gone, us := compactScenario(t, typ, 3)
				f := faulted(t, e, at, true, compactItems, oldFileRemoval)
				require.NoError(t, e.fsys.PowerLoss())
				e.reopen()
				e.check("items", md, us, gone)
				assertFilesMatchManifest(t, e)

				require.NoError(t, compactItems(e), "crash at %d (%s)", at, f.where)
				for _, u := range us {
					require.Len(t, segmentsByUser(t, e)[u], 1, "crash at %d (%s): user %q", at, f.where, u)
				}
				e.check("items", md, us, gone)
				assertFilesMatchManifest(t, e)
			}
		})
	}
}

func TestCompactFailAtEveryStep(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			total := opsOfCompaction(t, typ)
			for at := 1; at <= total+1; at++ {
				e, md, gone, us := compactScenario(t, typ, 3)
				f := faulted(t, e, at, false, compactItems, oldFileRemoval)
				e.check("items", md, us, gone)
				require.NoError(t, compactItems(e), "fault at %d (%s)", at, f.where)
				e.check("items", md, us, gone)
				e.reopen()
				e.check("items", md, us, gone)
				assertFilesMatchManifest(t, e)
			}
		})
	}
}

// TestSchedulerCompacts: a round of the scheduler compacts the users that
// have CompactSegments small segments, and leaves the others.
func TestSchedulerCompacts(t *testing.T) {
	e, md, gone, us := compactScenario(t, catalog.UserTable, 3, func(o *flush.Options) { o.CompactSegments = 4 })
	res, err := e.m.CheckPolicies(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Compacted.Merged, "3 segments per user, below 4")

	s := e.store("items")
	require.NoError(t, s.insert(e.ctx, us[0], vals(500, 0)))
	md.set(us[0], 500, 0)
	_, err = e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	res, err = e.m.CheckPolicies(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, res.Compacted.Merged, "only %q has 4", us[0])
	byUser := segmentsByUser(t, e)
	assert.Len(t, byUser[us[0]], 1)
	assert.Len(t, byUser[us[1]], 3)
	e.check("items", md, us, gone)
}

func TestCompactErrors(t *testing.T) {
	e := newEnv(t)
	_, err := e.m.Compact(e.ctx, ns, "missing")
	require.ErrorIs(t, err, core.ErrNamespaceNotFound)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	_, err = e.m.Compact(e.ctx, ns, "missing")
	require.ErrorIs(t, err, core.ErrTableNotFound)
	_, err = e.m.DB().Catalog().CreateTable(e.ctx, catalog.Table{Namespace: ns, Name: "events", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "x", Type: row.TypeInt64}},
		Stream:  catalog.StreamOptions{TTL: 3600e9, MaxBuffer: 100}})
	require.NoError(t, err)
	_, err = e.m.Compact(e.ctx, ns, "events")
	require.ErrorIs(t, err, core.ErrWrongTableType)
	res, err := e.m.Compact(e.ctx, ns, "items")
	require.NoError(t, err, "an empty table has nothing to compact")
	assert.Zero(t, res.Merged)

	opts := e.opts
	opts.FS = e.fsys
	opts.CompactSegments = 1
	_, err = flush.Open(e.ctx, e.inner, opts)
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "CompactSegments")
}

// TestRandomFlushesAndCompactions runs random inserts, updates and deletes
// of a few keys per user, with flushes, compactions (minor, major and by
// the scheduler), and reopens at random points, small segments (7 versions) so
// that full segments and tails mix, and compares every row with a model
// after each of those steps.
func TestRandomFlushesAndCompactions(t *testing.T) { randomFlushesAndCompactions(t) }

// TestRandomFlushesAndCompactionsWithBatchLimits is the same on a backend
// that applies at most 8 operations at once: commits of flushes take
// several batches, and compactions merge at most 4 segments at a time.
func TestRandomFlushesAndCompactionsWithBatchLimits(t *testing.T) {
	defer withBatchLimits(8, 0)()
	randomFlushesAndCompactions(t)
}

func randomFlushesAndCompactions(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			e, s, us := itemsTable(t, catalog.UserTable, func(o *flush.Options) {
				o.MaxSegmentRows = 7
				o.CompactSegments = 3
			})
			md := model{}
			gone := map[string][]int64{}
			gen := 0
			steps := map[string]int{}
			for op := range 400 {
				u := us[rng.IntN(len(us))]
				id := int64(rng.IntN(25))
				_, live := md[u][id]
				gen++
				switch {
				case !live:
					require.NoError(t, s.insert(e.ctx, u, vals(id, gen)))
					md.set(u, id, gen)
				case rng.IntN(3) == 0:
					require.NoError(t, s.delete(e.ctx, u, id))
					md.del(u, id)
					gone[u] = append(gone[u], id)
				default:
					require.NoError(t, s.update(e.ctx, u, id, gen))
					md.set(u, id, gen)
				}
				if op%10 != 9 {
					continue
				}
				var step string
				switch r := rng.IntN(10); {
				case r < 4:
					step = "flush"
					require.NoError(t, flushItems(e))
				case r < 5:
					step = "compact"
					require.NoError(t, compactItems(e))
				case r < 6:
					step = "major"
					_, err := e.m.MajorCompact(e.ctx, ns, "items")
					require.NoError(t, err)
				case r < 8:
					step = "scheduler"
					_, err := e.m.CheckPolicies(e.ctx)
					require.NoError(t, err)
				default:
					step = "reopen"
					e.reopen()
					s = e.store("items")
				}
				steps[step]++
				e.check("items", md, us, gone)
			}
			require.NoError(t, flushItems(e))
			require.NoError(t, compactItems(e))
			e.check("items", md, us, gone)
			e.reopen()
			e.check("items", md, us, gone)
			assertFilesMatchManifest(t, e)
			t.Logf("steps: %v", steps)
		})
	}
}

// TestMajorCompactMergesFullSegments: a major compaction merges full
// segments too, drops every superseded version and tombstone, and leaves a
// user with as few segments as MaxSegmentRows allows; then it has nothing
// left to do.
func TestMajorCompactMergesFullSegments(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e, md, gone, us := compactScenario(t, typ, 5, func(o *flush.Options) { o.MaxSegmentRows = 8 })
			res, err := e.m.Compact(e.ctx, ns, "items")
			require.NoError(t, err)
			require.Zero(t, res.Merged, "every flush wrote a full segment of 8 versions before its small one: nothing for a minor compaction")
			before := 0
			for _, u := range us {
				before += len(segmentsByUser(t, e)[u])
			}
			require.Greater(t, before, 5*len(us), "more than one segment per flush")

			res, err = e.m.MajorCompact(e.ctx, ns, "items")
			require.NoError(t, err)
			assert.Equal(t, before, res.Merged)
			for _, u := range us {
				segs := segmentsByUser(t, e)[u]
				var rows, tombs int64
				for _, s := range segs {
					rows += s.Rows
					tombs += s.Tombstones
				}
				assert.EqualValues(t, len(md[u]), rows, "user %q: one version per live row", u)
				assert.Zero(t, tombs)
				assert.Len(t, segs, (len(md[u])+7)/8, "user %q: full segments of 8", u)
			}
			e.check("items", md, us, gone)
			assertFilesMatchManifest(t, e)
			e.reopen()
			e.check("items", md, us, gone)

			res, err = e.m.MajorCompact(e.ctx, ns, "items")
			require.NoError(t, err)
			if typ == catalog.SharedTable {
				assert.Equal(t, len(segmentsByUser(t, e)[""]), res.Merged, "full segments without tombstones are merged again only together")
			}
			e.check("items", md, us, gone)
			assertFilesMatchManifest(t, e)
		})
	}
}

// TestMajorCompactCrashAtEveryStep is TestCompactCrashAtEveryStep for a
// major compaction.
func TestMajorCompactCrashAtEveryStep(t *testing.T) {
	full := func(o *flush.Options) { o.MaxSegmentRows = 8 }
	compactAll := func(e *env) error {
		_, err := e.m.MajorCompact(e.ctx, ns, "items")
		return err
	}
	e, _, _, _ := compactScenario(t, catalog.SharedTable, 3, full)
	total := countOps(t, e, compactAll)
	for at := 1; at <= total+1; at++ {
		e, md, gone, us := compactScenario(t, catalog.SharedTable, 3, full)
		f := faulted(t, e, at, true, compactAll, oldFileRemoval)
		require.NoError(t, e.fsys.PowerLoss())
		e.reopen()
		e.check("items", md, us, gone)
		assertFilesMatchManifest(t, e)
		require.NoError(t, compactAll(e), "crash at %d (%s)", at, f.where)
		e.check("items", md, us, gone)
		assertFilesMatchManifest(t, e)
	}
}

// TestManyDeletionsTriggerAMajorCompaction: once a quarter of a user's
// segment versions are tombstones, CompactDue merges all of its segments,
// full ones included, and the tombstones go; below that, full segments
// are left alone.
func TestManyDeletionsTriggerAMajorCompaction(t *testing.T) {
	e, s, _ := itemsTable(t, catalog.SharedTable, func(o *flush.Options) {
		o.MaxSegmentRows = 10
		o.CompactSegments = 2
	})
	md := model{}
	for id := int64(1); id <= 20; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
		md.set("", id, 0)
	}
	require.NoError(t, flushItems(e))
	deleteFlush := func(ids ...int64) {
		for _, id := range ids {
			require.NoError(t, s.delete(e.ctx, "", id))
			md.del("", id)
		}
		require.NoError(t, flushItems(e))
	}
	deleteFlush(1, 2) // 2 tombstones of 22 versions
	res, err := e.m.CompactDue(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.Zero(t, res.Merged, "one small segment after two full ones: nothing to do")

	deleteFlush(3, 4, 5, 6, 7, 8) // 8 tombstones of 28 versions
	res, err = e.m.CompactDue(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.Equal(t, 4, res.Merged, "every segment, the full ones too")
	assert.EqualValues(t, 12, res.Rows)
	assert.EqualValues(t, 16, res.Dropped, "8 deleted rows and their 8 tombstones")
	var tombs int64
	for _, seg := range segmentsByUser(t, e)[""] {
		tombs += seg.Tombstones
	}
	assert.Zero(t, tombs)
	gone := map[string][]int64{"": {1, 2, 3, 4, 5, 6, 7, 8}}
	e.check("items", md, []string{""}, gone)
	res, err = e.m.CompactDue(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.Zero(t, res.Merged, "nothing left to do")
	e.reopen()
	e.check("items", md, []string{""}, gone)
	assertFilesMatchManifest(t, e)
}
