package flush_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/faultstore"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
)

// outage is a backend fault of a networked engine: its at-th write either
// applies with its reply lost (lost) or does not apply, and, when down,
// the backend then stays unreachable (every later operation fails, reads
// included) until the rule is cleared. The process goes on: unlike a
// crash, nothing reopens.
type outage struct {
	at    int
	lost  bool
	down  bool
	n     int
	fired bool
}

func (o *outage) rule(op faultstore.Op) error {
	if o.fired && o.down {
		return fmt.Errorf("%s: backend unreachable: %w", op, faultstore.ErrInjected)
	}
	if !op.IsWrite() {
		return nil
	}
	o.n++
	if o.n != o.at {
		return nil
	}
	o.fired = true
	if o.lost {
		return fmt.Errorf("%s #%d: %w", op, o.at, faultstore.ErrReplyLost)
	}
	return fmt.Errorf("%s #%d: %w", op, o.at, faultstore.ErrInjected)
}

func (o *outage) String() string {
	s := fmt.Sprintf("write %d fails", o.at)
	if o.lost {
		s = fmt.Sprintf("write %d applies, its reply lost", o.at)
	}
	if o.down {
		s += ", then the backend is unreachable"
	}
	return s
}

// storeWrites counts the backend writes of op on e.
func storeWrites(t *testing.T, e *env, op func(*env) error) int {
	o := &outage{at: -1}
	e.bs.SetRule(o.rule)
	require.NoError(t, op(e))
	e.bs.SetRule(nil)
	return o.n
}

// outages are the faults run at every write: each combination of applied
// or not, and the backend staying reachable or not.
func outages(at int) []*outage {
	var out []*outage
	for _, lost := range []bool{false, true} {
		for _, down := range []bool{false, true} {
			out = append(out, &outage{at: at, lost: lost, down: down})
		}
	}
	return out
}

// TestOutageAtEveryWriteOfAFlush runs a flush whose backend fails at each
// of its writes in turn, in the four ways of outages; then, in the same
// process, it reads every row, flushes again and checks that every version
// is in the segments exactly once, that the files match the manifest, and
// that the same holds after a reopen. This is what a networked backend
// does to a running server: a commit whose reply is lost applied, and one
// that failed did not, and the server cannot always ask which.
func TestOutageAtEveryWriteOfAFlush(t *testing.T) {
	testOutageAtEveryWriteOfAFlush(t)
}

// TestOutageAtEveryWriteOfAFlushWithBatchLimits is
// TestOutageAtEveryWriteOfAFlush with commits cut into several batches.
func TestOutageAtEveryWriteOfAFlushWithBatchLimits(t *testing.T) {
	defer withBatchLimits(8, 0)()
	testOutageAtEveryWriteOfAFlush(t)
}

func testOutageAtEveryWriteOfAFlush(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e, _, _, _ := crashScenario(t, typ)
			total := storeWrites(t, e, flushItems)
			require.Positive(t, total)
			for at := 1; at <= total; at++ {
				for _, o := range outages(at) {
					e, md, gone, us := crashScenario(t, typ)
					wantCold := int64(len(us) * (12 + 7))
					e.bs.SetRule(o.rule)
					err := flushItems(e)
					e.bs.SetRule(nil)
					require.True(t, o.fired, "%s", o)
					if !o.lost {
						require.Error(t, err, "%s", o)
					}
					if err != nil {
						require.False(t, errors.Is(err, faultstore.ErrCrashed), "%s", o)
					}
					e.check("items", md, us, gone)
					require.NoError(t, flushItems(e), "%s: the next flush", o)
					require.Zero(t, e.bufferLen("items"), "%s", o)
					require.Equal(t, wantCold, coldRows(t, e), "%s: every version exactly once", o)
					e.check("items", md, us, gone)
					assertFilesMatchManifest(t, e)
					e.reopen()
					e.check("items", md, us, gone)
					require.Equal(t, wantCold, coldRows(t, e), "%s: after a reopen", o)
					assertFilesMatchManifest(t, e)
				}
			}
		})
	}
}

// TestOutageAtEveryWriteOfACompaction is TestOutageAtEveryWriteOfAFlush
// for a compaction: afterwards each user has one segment once a retry
// succeeds, and no file is left behind or missing.
func TestOutageAtEveryWriteOfACompaction(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e, _, _, _ := compactScenario(t, typ, 3)
			total := storeWrites(t, e, compactItems)
			require.Positive(t, total)
			for at := 1; at <= total; at++ {
				for _, o := range outages(at) {
					e, md, gone, us := compactScenario(t, typ, 3)
					e.bs.SetRule(o.rule)
					err := compactItems(e)
					e.bs.SetRule(nil)
					require.True(t, o.fired, "%s", o)
					if !o.lost {
						require.Error(t, err, "%s", o)
					}
					e.check("items", md, us, gone)
					require.NoError(t, compactItems(e), "%s: the next compaction", o)
					for _, u := range us {
						require.Len(t, segmentsByUser(t, e)[u], 1, "%s: user %q", o, u)
					}
					e.check("items", md, us, gone)
					assertFilesMatchManifest(t, e)
					e.reopen()
					e.check("items", md, us, gone)
					assertFilesMatchManifest(t, e)
				}
			}
		})
	}
}

// TestCommitInDoubtHoldsTheTableUntilKnown: a compaction commit that fails
// while the backend becomes unreachable leaves its outcome unknown; the
// table's next flush fails, saying so, for as long as the outcome cannot be
// read back, while reads go on; once the backend answers, the flush learns
// the outcome and goes on. A drop of a table with a commit in doubt leaves
// no record and no file.
func TestCommitInDoubtHoldsTheTableUntilKnown(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run(fmt.Sprintf("applied=%v", lost), func(t *testing.T) {
			e, md, gone, us := compactScenario(t, catalog.UserTable, 3)
			require.NoError(t, e.store("items").insert(e.ctx, us[0], vals(100, 0)))
			md.set(us[0], 100, 0)
			o := &outage{at: 1, lost: lost, down: true}
			e.bs.SetRule(o.rule)
			err := compactItems(e)
			require.ErrorContains(t, err, "outcome unknown")
			require.ErrorContains(t, compactItems(e), "backend unreachable")

			// The backend answers everything but reads.
			e.bs.SetRule(func(op faultstore.Op) error {
				if op == faultstore.OpGet {
					return fmt.Errorf("get: %w", faultstore.ErrInjected)
				}
				return nil
			})
			err = flushItems(e)
			require.ErrorContains(t, err, "is still unknown")
			require.Equal(t, 1, e.bufferLen("items"), "nothing flushed")
			e.bs.SetRule(nil)
			e.check("items", md, us, gone)

			require.NoError(t, flushItems(e))
			e.check("items", md, us, gone)
			assertFilesMatchManifest(t, e)
			// The compaction's first write is the commit of the first
			// user in key order; the flush adds a segment to us[0].
			first := slices.Min(us)
			for _, u := range us {
				want := 3
				if lost && u == first {
					want = 1
				}
				if u == us[0] {
					want++
				}
				require.Len(t, segmentsByUser(t, e)[u], want, "user %q", u)
			}
		})
	}
	t.Run("drop", func(t *testing.T) {
		e, _, _, _ := compactScenario(t, catalog.UserTable, 3)
		e.bs.SetRule((&outage{at: 1, lost: true, down: true}).rule)
		require.ErrorContains(t, compactItems(e), "outcome unknown")
		e.bs.SetRule(nil)
		require.NoError(t, e.m.DropTable(e.ctx, ns, "items"))
		assertNoSegments(t, e, "items")
	})
}
