package flush_test

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
)

// bigRows is what a disk-full scenario wrote: user -> id -> name.
type bigRows map[string]map[int64]string

// insertBig inserts n rows for each user, ids from first on, whose names
// are 2 KiB of random letters: a user's segment then outgrows the 1 MiB
// buffer in front of the file, so the Parquet writer's own writes reach
// the (failing) file while it encodes, and not only the final flush of
// the buffer.
func insertBig(t testing.TB, e *env, s rowStore, us []string, first int64, n int, md bigRows) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(uint64(first), 7))
	b := make([]byte, 2048)
	for _, u := range us {
		if md[u] == nil {
			md[u] = map[int64]string{}
		}
		for id := first; id < first+int64(n); id++ {
			for j := range b {
				b[j] = byte('a' + rnd.IntN(26))
			}
			name := string(b)
			require.NoError(t, s.insert(e.ctx, u, []row.Value{row.Int64(id), row.String(name), row.Null(), row.Bool(true), row.Null(), row.TimestampMicros(id)}))
			md[u][id] = name
		}
	}
}

// checkBig reads every row back, by scan and by key.
func checkBig(t testing.TB, e *env, s rowStore, md bigRows, what string) {
	t.Helper()
	for u, want := range md {
		got := scanAll(t, e.ctx, s, u, 500)
		require.Len(t, got, len(want), "%s: user %q", what, u)
		for _, r := range got {
			require.Equal(t, want[r.Values[0].Int64()], r.Values[1].Str(), "%s: user %q id %d", what, u, r.Values[0].Int64())
		}
		for id, name := range want {
			if id%97 != 0 {
				continue
			}
			r, err := s.get(e.ctx, u, id)
			require.NoError(t, err, "%s: user %q id %d", what, u, id)
			require.Equal(t, name, r.Values[1].Str())
		}
	}
}

func countRows(md bigRows) int {
	n := 0
	for _, m := range md {
		n += len(m)
	}
	return n
}

// diskFaults are the ways the Parquet directory fails in these tests: full
// (removals still work) and read-only (nothing changes).
var diskFaults = []struct {
	name  string
	err   error
	match func(faultfs.Op) bool
}{
	{"full", syscall.ENOSPC, faultfs.NeedsSpace},
	{"read-only", syscall.EROFS, faultfs.Writes},
}

// A disk that fills up (or turns read-only) at any step of a flush, and
// stays so: the flush fails with an error wrapping the file system's,
// naming the segment, never a panic; every row stays buffered and
// readable, nothing is committed, and once the disk works again a flush
// moves every row to the cold tier exactly once.
func TestDiskFailingAtEveryStepOfAFlush(t *testing.T) {
	const perUser = 600
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		for _, fault := range diskFaults {
			t.Run(string(typ)+"/"+fault.name, func(t *testing.T) {
				e, s, us := itemsTable(t, typ)
				insertBig(t, e, s, us, 1, perUser, bigRows{})
				before := e.fsys.Total(fault.match)
				_, err := e.m.Flush(e.ctx, ns, "items")
				require.NoError(t, err)
				steps := e.fsys.Total(fault.match) - before
				require.GreaterOrEqual(t, e.fsys.Count(faultfs.OpWrite), 2*len(us), "each segment takes several writes")

				for at := 1; at <= steps; at++ {
					e, s, us := itemsTable(t, typ)
					md := bigRows{}
					insertBig(t, e, s, us, 1, perUser, md)
					what := fmt.Sprintf("%s from step %d of %d", fault.err, at, steps)

					e.fsys.SetRule(faultfs.FailFrom(at, fault.match, fault.err))
					_, err := e.m.Flush(e.ctx, ns, "items")
					require.ErrorIs(t, err, fault.err, what)
					require.Nil(t, guard.Stack(err), "%s: not a panic: %v", what, err)
					require.Contains(t, err.Error(), "flush: app.items: writing app/items/", what)
					// Every row of a user whose segment failed is still
					// buffered; with a user table, the users flushed
					// before the failure are in the cold tier.
					require.Equal(t, countRows(md), e.bufferLen("items")+int(coldRows(t, e)), what)
					if typ == catalog.SharedTable {
						require.Zero(t, coldRows(t, e), what)
					}
					checkBig(t, e, s, md, what)
					if fault.err == syscall.ENOSPC {
						assertFilesMatchManifest(t, e) // removals work on a full disk
					}

					e.fsys.SetRule(nil)
					_, err = e.m.Flush(e.ctx, ns, "items")
					require.NoError(t, err, "%s, then the disk works again", what)
					require.Zero(t, e.bufferLen("items"), what)
					require.EqualValues(t, countRows(md), coldRows(t, e), "%s: every version exactly once", what)
					checkBig(t, e, s, md, what)
					e.reopen()
					s = e.store("items")
					checkBig(t, e, s, md, what+", after a restart")
					assertFilesMatchManifest(t, e)
				}
			})
		}
	}
}

// A disk that fills up at any step of a compaction: the compaction fails
// with the file system's error, the segments and rows are unchanged, and
// it succeeds once there is space.
func TestFullDiskAtEveryStepOfACompaction(t *testing.T) {
	const perUser = 400
	scenario := func(t *testing.T) (*env, rowStore, []string, bigRows) {
		e, s, us := itemsTable(t, catalog.UserTable)
		md := bigRows{}
		insertBig(t, e, s, us, 1, perUser, md)
		_, err := e.m.Flush(e.ctx, ns, "items")
		require.NoError(t, err)
		insertBig(t, e, s, us, perUser+1, perUser, md)
		_, err = e.m.Flush(e.ctx, ns, "items")
		require.NoError(t, err)
		return e, s, us, md
	}
	e, _, _, _ := scenario(t)
	before := e.fsys.Total(faultfs.NeedsSpace)
	_, err := e.m.MajorCompact(e.ctx, ns, "items")
	require.NoError(t, err)
	steps := e.fsys.Total(faultfs.NeedsSpace) - before

	for at := 1; at <= steps; at++ {
		e, s, us, md := scenario(t)
		before := segmentsByUser(t, e)
		what := fmt.Sprintf("ENOSPC from step %d of %d", at, steps)
		e.fsys.SetRule(faultfs.FailFrom(at, faultfs.NeedsSpace, syscall.ENOSPC))
		_, err := e.m.MajorCompact(e.ctx, ns, "items")
		require.ErrorIs(t, err, syscall.ENOSPC, what)
		require.Nil(t, guard.Stack(err), "%s: not a panic: %v", what, err)
		require.Contains(t, err.Error(), "compacting into app/items/", what)
		checkBig(t, e, s, md, what)
		assertFilesMatchManifest(t, e)
		// The users compacted before the failure have one segment, the
		// others theirs unchanged.
		after := segmentsByUser(t, e)
		for _, u := range us {
			if len(after[u]) != 1 {
				assert.Equal(t, before[u], after[u], "%s: user %q", what, u)
			}
		}

		e.fsys.SetRule(nil)
		_, err = e.m.MajorCompact(e.ctx, ns, "items")
		require.NoError(t, err, what)
		for _, u := range us {
			require.Len(t, segmentsByUser(t, e)[u], 1, "%s: user %q", what, u)
		}
		require.EqualValues(t, countRows(md), coldRows(t, e), what)
		checkBig(t, e, s, md, what)
	}
}
