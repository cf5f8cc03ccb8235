package flush_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/faultstore"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
)

// faults counts the operations of the backend and the file system together
// and fails the at-th one: once (fail) or, like a crash, with every later
// one too.
type faults struct {
	mu    sync.Mutex
	at, n int
	crash bool
	fired bool
	where string
}

func (f *faults) step(what string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired && f.crash {
		return true
	}
	f.n++
	if f.n == f.at {
		f.fired, f.where = true, what
		return true
	}
	return false
}

func (f *faults) install(e *env) {
	e.bs.SetRule(func(op faultstore.Op) error {
		if !f.step("store " + string(op)) {
			return nil
		}
		if f.crash {
			return fmt.Errorf("store %s: %w", op, faultstore.ErrCrashed)
		}
		return fmt.Errorf("store %s: %w", op, faultstore.ErrInjected)
	})
	e.fsys.SetRule(func(op faultfs.Op, name string) error {
		if !f.step("fs " + string(op) + " " + name) {
			return nil
		}
		if f.crash {
			return fmt.Errorf("fs %s %s: %w", op, name, faultfs.ErrCrashed)
		}
		return fmt.Errorf("fs %s %s: %w", op, name, faultfs.ErrInjected)
	})
	if e.s3 != nil {
		e.s3.faults.SetRule(func(op, name string) error {
			if !f.step("objects " + op + " " + name) {
				return nil
			}
			return storeFault(op, name, f.crash)
		})
	}
}

func (f *faults) clear(e *env) {
	e.bs.SetRule(nil)
	e.fsys.SetRule(nil)
	if e.s3 != nil {
		e.s3.faults.SetRule(nil)
	}
}

var crashUsers = []string{"alice", "../x"}

// itemsTable creates table "items" of type typ on a new env and returns
// the env, the table's store and the users the scenarios write ("" for a
// shared table).
func itemsTable(t testing.TB, typ catalog.TableType, mod ...func(*flush.Options)) (*env, rowStore, []string) {
	e := newEnv(t, mod...)
	e.createTable("items", typ, catalog.FlushPolicy{})
	us := crashUsers
	if typ == catalog.SharedTable {
		us = []string{""}
	}
	return e, e.store("items"), us
}

// crashScenario fills a table whose first flush is done, then changes it
// (new rows, updates of cold rows, deletions of cold rows), so that the
// flush under test writes new versions, newer versions and tombstones.
func crashScenario(t testing.TB, typ catalog.TableType) (*env, model, map[string][]int64, []string) {
	e, s, us := itemsTable(t, typ)
	md := model{}
	gone := map[string][]int64{}
	for _, u := range us {
		for id := int64(1); id <= 12; id++ {
			require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
			md.set(u, id, 0)
		}
	}
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	for _, u := range us {
		for id := int64(13); id <= 18; id++ {
			require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
			md.set(u, id, 0)
		}
		for _, id := range []int64{2, 14} {
			require.NoError(t, s.update(e.ctx, u, id, 1))
			md.set(u, id, 1)
		}
		for _, id := range []int64{3, 15} {
			require.NoError(t, s.delete(e.ctx, u, id))
			md.del(u, id)
			gone[u] = append(gone[u], id)
		}
	}
	return e, md, gone, us
}

// coldRows sums the versions of the committed segments.
func coldRows(t testing.TB, e *env) int64 {
	segs, err := e.m.Segments(context.Background(), ns, "items")
	require.NoError(t, err)
	var n int64
	for _, s := range segs {
		n += s.Rows
	}
	return n
}

// assertFilesMatchManifest fails if a temporary file exists or a segment
// file is not in the manifest, or the other way round.
func assertFilesMatchManifest(t testing.TB, e *env) {
	t.Helper()
	segs, err := e.m.Segments(context.Background(), ns, "items")
	require.NoError(t, err)
	if e.s3 != nil {
		want := []string{}
		for _, s := range segs {
			want = append(want, s.Path)
		}
		sort.Strings(want)
		got := e.s3.objects(t)
		if got == nil {
			got = []string{}
		}
		require.Equal(t, want, got, "the bucket holds exactly the recorded segments")
		return
	}
	want := map[string]bool{}
	for _, s := range segs {
		want[filepath.Join(e.root, filepath.FromSlash(s.Path))] = true
	}
	got := map[string]bool{}
	require.NoError(t, filepath.WalkDir(e.root, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if !d.IsDir() {
			require.False(t, strings.HasSuffix(p, segment.TempExt), "temporary file left: %s", p)
			got[p] = true
		}
		return nil
	}))
	require.Equal(t, want, got)
}

// flushItems and compactItems are the operations under test.
func flushItems(e *env) error {
	_, err := e.m.Flush(e.ctx, ns, "items")
	return err
}

func compactItems(e *env) error {
	_, err := e.m.Compact(e.ctx, ns, "items")
	return err
}

// countOps counts the backend and file operations of op on e.
func countOps(t *testing.T, e *env, op func(*env) error) int {
	f := &faults{at: -1}
	f.install(e)
	require.NoError(t, op(e))
	f.clear(e)
	return f.n
}

// faulted runs op on e with its at-th backend or file operation failing:
// once, or with crash every later one too. op must report the fault,
// unless afterCommit (nil: never) says the failed operation came after
// op's outcome was decided: then op succeeds when the fault was a single
// one, and may fail or not after a crash (later work fails). The faults are
// cleared on return.
func faulted(t *testing.T, e *env, at int, crash bool, op func(*env) error, afterCommit func(where string) bool) *faults {
	t.Helper()
	f := &faults{at: at, crash: crash}
	f.install(e)
	err := op(e)
	f.clear(e)
	switch {
	case !f.fired:
		require.NoError(t, err)
	case afterCommit != nil && afterCommit(f.where):
		if !crash {
			require.NoError(t, err, "fault at %d (%s), after the commit", at, f.where)
		}
	default:
		require.Error(t, err, "fault at %d (%s)", at, f.where)
	}
	return f
}

// opsOfFlush counts the operations of the flush under test.
func opsOfFlush(t *testing.T, typ catalog.TableType) int {
	e, _, _, _ := crashScenario(t, typ)
	return countOps(t, e, flushItems)
}

// TestCrashAtEveryStep crashes the process (backend and files at once) at
// every operation of a flush, loses what was not durable, reopens, and
// compares every row with the expected ones; then it completes the flush and
// checks that no version was lost or written twice.
func TestCrashAtEveryStep(t *testing.T) { crashAtEveryStep(t) }

// TestCrashAtEveryStepWithBatchLimits is TestCrashAtEveryStep on a
// backend that applies at most 8 operations at once: a commit takes
// several batches, and a crash between them must lose nothing and leave
// no version to be flushed twice.
func TestCrashAtEveryStepWithBatchLimits(t *testing.T) {
	defer withBatchLimits(8, 0)()
	crashAtEveryStep(t)
}

func crashAtEveryStep(t *testing.T) {
	for _, c := range lockModes() {
		for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
			t.Run(c.name+"/"+string(typ), func(t *testing.T) {
				defer flush.SetLockAllAbove(c.above)()
				total := opsOfFlush(t, typ)
				require.Greater(t, total, 10, "the flush has many steps")
				t.Logf("%d backend and file operations in the flush", total)
				// The versions of the first flush, and of the flush under test:
				// 5 new (13 to 18 but 15, deleted before any flush; 14 in its
				// updated version), 1 update of a cold row (2) and 1 tombstone
				// (3: 15 has nothing cold to hide).
				_, _, _, us := crashScenario(t, typ)
				wantCold := int64(len(us) * (12 + 7))
				for at := 1; at <= total+1; at++ {
					e, md, gone, us := crashScenario(t, typ)
					f := faulted(t, e, at, true, flushItems, nil)
					require.NoError(t, e.fsys.PowerLoss())
					e.reopen()
					e.check("items", md, us, gone)
					assertFilesMatchManifest(t, e)

					require.NoError(t, flushItems(e), "crash at %d (%s)", at, f.where)
					require.Zero(t, e.bufferLen("items"))
					require.Equal(t, wantCold, coldRows(t, e), "crash at %d (%s): every version exactly once", at, f.where)
					e.check("items", md, us, gone)
					assertFilesMatchManifest(t, e)
				}
			})
		}
	}
}

// TestCrashAtEveryStepOnS3 is TestCrashAtEveryStep with the segments in
// an S3 bucket (moto) behind a disk cache: every request to the store is a
// step, and a crash leaves what was committed.
func TestCrashAtEveryStepOnS3(t *testing.T) {
	defer withS3(t)()
	crashAtEveryStep(t)
}

// TestFailAtEveryStepOnS3 is TestFailAtEveryStep with the segments in an
// S3 bucket behind a disk cache.
func TestFailAtEveryStepOnS3(t *testing.T) {
	defer withS3(t)()
	failAtEveryStep(t)
}

// TestFailAtEveryStep fails one operation of a flush, at every position:
// the flush reports the error, reads are unaffected, and a retry completes
// the flush with every version exactly once.
func TestFailAtEveryStep(t *testing.T) { failAtEveryStep(t) }

// TestFailAtEveryStepWithBatchLimits is TestFailAtEveryStep on a backend
// that applies at most 8 operations at once.
func TestFailAtEveryStepWithBatchLimits(t *testing.T) {
	defer withBatchLimits(8, 0)()
	failAtEveryStep(t)
}

func failAtEveryStep(t *testing.T) {
	for _, c := range lockModes() {
		for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
			t.Run(c.name+"/"+string(typ), func(t *testing.T) {
				defer flush.SetLockAllAbove(c.above)()
				total := opsOfFlush(t, typ)
				for at := 1; at <= total+1; at++ {
					e, md, gone, us := crashScenario(t, typ)
					wantCold := int64(len(us) * (12 + 7))
					f := faulted(t, e, at, false, flushItems, nil)
					e.check("items", md, us, gone)
					require.NoError(t, flushItems(e), "fault at %d (%s)", at, f.where)
					require.Zero(t, e.bufferLen("items"))
					require.Equal(t, wantCold, coldRows(t, e), "fault at %d (%s)", at, f.where)
					e.check("items", md, us, gone)
					e.reopen()
					e.check("items", md, us, gone)
					assertFilesMatchManifest(t, e)
				}
			})
		}
	}
}

// lockModes are the two ways a commit locks the buffer: the locks of its
// keys, and (with the threshold at zero) every lock of the table, which
// skips re-reading the buffer when no write happened since the flush read
// it.
func lockModes() []struct {
	name  string
	above int
} {
	return []struct {
		name  string
		above int
	}{{"lock-keys", 1 << 30}, {"lock-all", 0}}
}

// TestPowerLossWithoutDirectorySyncWouldLoseData shows that the fault
// model has teeth: a file whose rename was never made durable disappears,
// and recovery reports the committed segment as missing rather than
// silently losing its rows.
func TestPowerLossWithoutDirectorySyncWouldLoseData(t *testing.T) {
	e, _, _, _ := crashScenario(t, catalog.SharedTable)
	// Let the directory sync of the flush "succeed" without syncing.
	e.fsys.SetRule(nil)
	wrapped := &skipSyncDir{FS: e.fsys}
	e.opts.FS = wrapped
	require.NoError(t, reopenWith(e, wrapped))
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	require.NoError(t, e.fsys.PowerLoss())
	err = e.tryReopen()
	require.Error(t, err, "the segment's rename was lost with the power")
	assert.Contains(t, err.Error(), "missing")
}

type skipSyncDir struct{ *faultfs.FS }

func (s *skipSyncDir) SyncDir(string) error { return nil }

func reopenWith(e *env, fsys segment.FS) error {
	e.m.Stop()
	opts := e.opts
	opts.FS = fsys
	m, err := flushOpen(e, opts)
	e.m = m
	return err
}
