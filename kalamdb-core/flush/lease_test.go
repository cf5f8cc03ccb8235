package flush_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/faultstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// onSegment calls hook once, when the first segment file is in place:
// after the flush wrote it, before the flush commits it.
type onSegment struct {
	segment.FS
	once sync.Once
	hook func()
}

func (o *onSegment) Rename(oldname, newname string) error {
	err := o.FS.Rename(oldname, newname)
	if err == nil && strings.HasSuffix(newname, ".parquet") {
		o.once.Do(o.hook)
	}
	return err
}

// A flush whose lease expired and was taken over by another server while
// it wrote its segment commits nothing: its batch fails the lease's check,
// the rows stay buffered, and no manifest records the segment. While the
// other server holds the lease no flush starts; once it is released, the
// flush moves every row.
func TestFlushWhoseLeaseWasTakenOverCommitsNothing(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	m, b, fs, mine, tbl := leasedTable(t, clk)
	other := aheadServer(t, b, clk)

	var taken *lease.Lease
	var takeErr error
	fs.hook = func() { taken, takeErr = other.Acquire(ctx, flush.LeaseName(tbl)) }
	_, err := m.Flush(ctx, ns, "leased")
	require.NoError(t, takeErr)
	require.ErrorIs(t, err, store.ErrConditionFailed, "the commit carries the lease's check")

	assertNothingCommitted(t, m, b, tbl)

	_, err = m.Flush(ctx, ns, "leased")
	require.ErrorIs(t, err, lease.ErrHeld, "no flush starts while another server holds the lease")

	require.NoError(t, taken.Release(ctx))
	flushAll(t, m, b, mine, tbl)
}

// On a backend several servers share, a Manager takes leases of its own
// without being given any: while another server holds a table's lease, it
// neither flushes nor compacts the table.
func TestLeasesOnASharedBackend(t *testing.T) {
	ctx := context.Background()
	b := tablestest.MultiProcess(memory.New())
	defer b.Close()
	var events []flush.Event
	m, err := flush.Open(ctx, b, flush.Options{FS: segment.DirFS(t.TempDir()), OnEvent: func(e flush.Event) { events = append(events, e) }})
	require.NoError(t, err)
	defer m.Stop()
	_, err = m.DB().Catalog().CreateNamespace(ctx, ns)
	require.NoError(t, err)
	tbl, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: ns, Name: "busy", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}}, Flush: catalog.FlushPolicy{RowLimit: 1}})
	require.NoError(t, err)
	s, err := m.DB().Shared(ctx, ns, "busy")
	require.NoError(t, err)
	// Two segments to compact, and a row to flush.
	for i := range 3 {
		_, err = s.Insert(ctx, []row.Value{row.Int64(int64(i))})
		require.NoError(t, err)
		if i < 2 {
			_, err = m.Flush(ctx, ns, "busy")
			require.NoError(t, err)
		}
	}
	events = nil

	other, err := lease.New(b, lease.Options{Owner: "another-server"})
	require.NoError(t, err)
	held, err := other.Acquire(ctx, flush.LeaseName(tbl))
	require.NoError(t, err)
	_, err = m.Flush(ctx, ns, "busy")
	require.ErrorIs(t, err, lease.ErrHeld)
	_, err = m.Compact(ctx, ns, "busy")
	require.ErrorIs(t, err, lease.ErrHeld)

	// The scheduler's round leaves the table to the other server: no
	// failure, no event, no backoff.
	_, err = m.CheckPolicies(ctx)
	require.NoError(t, err, "another server's lease is no failure of a scheduled flush")
	assert.Empty(t, events)
	assert.Empty(t, m.Health().Failing)

	require.NoError(t, held.Release(ctx))
	res, err := m.Flush(ctx, ns, "busy")
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.Rows)
}

// leaseWatch is a backend that reports the outcome of every batch that
// puts a lease record (an acquisition or a renewal) on renewals (while
// it has room), can fail
// those batches as an unreachable backend would, and counts the batches
// that check a lease and change no lease: the fenced commits.
type leaseWatch struct {
	store.StorageBackend
	renewals     chan error
	failRenewals atomic.Bool
	commits      atomic.Int64
}

var errUnreachable = errors.New("backend unreachable")

func (w *leaseWatch) Batch(ctx context.Context, ops []store.Operation) error {
	var puts, changes, checks bool
	for _, op := range ops {
		if op.Partition != layout.Leases {
			continue
		}
		puts = puts || op.Kind == store.OpPut
		changes = changes || !op.Kind.IsCheck()
		checks = checks || op.Kind.IsCheck()
	}
	if !puts {
		if checks && !changes {
			w.commits.Add(1)
		}
		return w.StorageBackend.Batch(ctx, ops)
	}
	err := errUnreachable
	if !w.failRenewals.Load() {
		err = w.StorageBackend.Batch(ctx, ops)
	}
	select {
	case w.renewals <- err:
	default: // nobody waits for it
	}
	return err
}

// drain empties w.renewals.
func (w *leaseWatch) drain() {
	for {
		select {
		case <-w.renewals:
		default:
			return
		}
	}
}

// next waits for the next batch that writes a lease record and returns
// its outcome.
func (w *leaseWatch) next(t *testing.T) error {
	select {
	case err := <-w.renewals:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no lease record was written")
		return nil
	}
}

// leasedTable opens a Manager on a leaseWatch with leases of server-a on
// clk, and a shared table of 10 buffered rows; the hook of the returned
// onSegment runs once the flush's segment is written, before its commit.
func leasedTable(t *testing.T, clk *clock.Fake) (*flush.Manager, *leaseWatch, *onSegment, *lease.Leases, *catalog.Table) {
	ctx := context.Background()
	w := &leaseWatch{StorageBackend: memory.New(), renewals: make(chan error, 64)}
	t.Cleanup(func() { _ = w.Close() })
	mine, err := lease.New(w, lease.Options{Owner: "server-a", Clock: clk})
	require.NoError(t, err)
	fs := &onSegment{FS: segment.DirFS(t.TempDir()), hook: func() {}}
	m, err := flush.Open(ctx, w, flush.Options{FS: fs, Leases: mine, Tables: tables.Options{Clock: clk}})
	require.NoError(t, err)
	t.Cleanup(m.Stop)
	_, err = m.DB().Catalog().CreateNamespace(ctx, ns)
	require.NoError(t, err)
	tbl, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: ns, Name: "leased", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "v", Type: row.TypeString}}})
	require.NoError(t, err)
	s, err := m.DB().Shared(ctx, ns, "leased")
	require.NoError(t, err)
	for i := range 10 {
		_, err := s.Insert(ctx, []row.Value{row.Int64(int64(i)), row.String("v")})
		require.NoError(t, err)
	}
	return m, w, fs, mine, tbl
}

// flushSendsNoCommit flushes tbl with hook run before the commit, and
// checks that the flush fails with want and store.ErrConditionFailed, sends
// no commit batch after hook, and commits nothing.
func flushSendsNoCommit(t *testing.T, m *flush.Manager, w *leaseWatch, fs *onSegment, tbl *catalog.Table, want error, hook func()) {
	var commits int64
	fs.hook = func() {
		hook()
		commits = w.commits.Load()
	}
	_, err := m.Flush(context.Background(), ns, tbl.Name)
	require.ErrorIs(t, err, want)
	require.ErrorIs(t, err, store.ErrConditionFailed)
	assert.Equal(t, commits, w.commits.Load(), "no commit batch is sent")
	assertNothingCommitted(t, m, w, tbl)
}

// aheadServer returns the leases of another server, server-b, whose clock
// reads past the leases this server takes now (this server paused, or the
// clocks disagree): it takes them over while they are still valid on clk,
// a takeover this server cannot know of before it commits.
func aheadServer(t *testing.T, b store.StorageBackend, clk *clock.Fake) *lease.Leases {
	ls, err := lease.New(b, lease.Options{Owner: "server-b", Clock: clock.NewFake(clk.Now().Add(lease.DefaultTTL + time.Second))})
	require.NoError(t, err)
	return ls
}

// assertNothingCommitted checks that the flush of tbl left no segment and
// every row buffered.
func assertNothingCommitted(t *testing.T, m *flush.Manager, b store.StorageBackend, tbl *catalog.Table) {
	ctx := context.Background()
	segs, err := m.Segments(context.Background(), ns, tbl.Name)
	require.NoError(t, err)
	assert.Empty(t, segs, "no segment is listed")
	n, err := store.Count(ctx, b, layout.Manifests, store.ScanOptions{})
	require.NoError(t, err)
	assert.Zero(t, n, "no manifest records the segment")
	buffered, err := store.Count(ctx, b, tbl.Partition(), store.ScanOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(10), buffered, "every row stays buffered")
}

// flushAll flushes tbl and checks that the flush moved its 10 rows and
// released its lease.
func flushAll(t *testing.T, m *flush.Manager, b store.StorageBackend, mine *lease.Leases, tbl *catalog.Table) {
	ctx := context.Background()
	res, err := m.Flush(ctx, ns, tbl.Name)
	require.NoError(t, err)
	assert.Equal(t, int64(10), res.Rows)
	buffered, err := store.Count(ctx, b, tbl.Partition(), store.ScanOptions{})
	require.NoError(t, err)
	assert.Zero(t, buffered, "no row stays buffered")
	holder, _, err := mine.Holder(ctx, flush.LeaseName(tbl))
	require.NoError(t, err)
	assert.Empty(t, holder, "the flush released its lease")
}

// A flush that lasts longer than its lease's TTL keeps the lease, renewed
// every third of the TTL, and commits.
func TestFlushOutlastingTheLeaseTTLCommits(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	m, w, fs, mine, tbl := leasedTable(t, clk)
	tickers := clk.Tickers()
	fs.hook = func() {
		w.drain()
		for range 4 { // 20 s of a 15 s lease
			clk.Advance(lease.DefaultTTL / 3)
			require.NoError(t, w.next(t), "renewed")
			_, until, err := mine.Holder(ctx, flush.LeaseName(tbl))
			require.NoError(t, err)
			assert.Equal(t, clk.Now().Add(lease.DefaultTTL), until)
		}
	}
	flushAll(t, m, w, mine, tbl)
	assert.Equal(t, tickers, clk.Tickers(), "the renewals end with the flush")
}

// A lease taken over between two renewals (by a server whose clock runs
// ahead): the next renewal finds it lost, and the flush sends no commit;
// its rows stay buffered.
func TestFlushWhoseRenewalFoundTheLeaseLostSendsNoCommit(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	m, w, fs, _, tbl := leasedTable(t, clk)
	other := aheadServer(t, w, clk)
	flushSendsNoCommit(t, m, w, fs, tbl, lease.ErrLost, func() {
		_, err := other.Acquire(ctx, flush.LeaseName(tbl))
		require.NoError(t, err)
		w.drain()
		clk.Advance(lease.DefaultTTL / 3)
		require.ErrorIs(t, w.next(t), store.ErrConditionFailed, "the renewal finds the lease taken over")
	})
}

// A commit within the lease's margin (its renewals failed, and a third of
// the TTL is left) is not sent; once renewals work again, the flush
// commits.
func TestFlushWithinTheLeaseMarginSendsNoCommit(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	m, w, fs, mine, tbl := leasedTable(t, clk)
	flushSendsNoCommit(t, m, w, fs, tbl, lease.ErrExpiring, func() {
		w.drain()
		w.failRenewals.Store(true)
		clk.Advance(lease.DefaultTTL - lease.DefaultTTL/3) // 5 s left
		require.ErrorIs(t, w.next(t), errUnreachable, "the renewal fails")
	})

	w.failRenewals.Store(false)
	flushAll(t, m, w, mine, tbl)
}

// Work that finds nothing to do takes no lease: taking one is a write to
// the backend, and while it is held every other server's flush of the
// table is refused. Every scheduler round asks each table for a
// compaction.
func TestCompactionWithNothingToMergeTakesNoLease(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	m, w, _, mine, tbl := leasedTable(t, clk)
	flushAll(t, m, w, mine, tbl)
	w.drain()
	_, err := m.CheckPolicies(ctx)
	require.NoError(t, err)
	res, err := m.Compact(ctx, ns, tbl.Name)
	require.NoError(t, err)
	assert.Zero(t, res.Merged)
	res, err = m.MajorCompact(ctx, ns, tbl.Name)
	require.NoError(t, err)
	assert.Zero(t, res.Merged)
	select {
	case err := <-w.renewals:
		t.Fatalf("a lease record was written (outcome %v) by work with nothing to merge", err)
	default:
	}

	// A compaction with something to merge takes the lease.
	s, err := m.DB().Shared(ctx, ns, tbl.Name)
	require.NoError(t, err)
	_, err = s.Insert(ctx, []row.Value{row.Int64(100), row.String("v")})
	require.NoError(t, err)
	_, err = m.Flush(ctx, ns, tbl.Name)
	require.NoError(t, err)
	w.drain()
	res, err = m.Compact(ctx, ns, tbl.Name)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Merged)
	require.NoError(t, w.next(t), "the compaction took the lease")
}

// A scheduler round on a backend several servers share, with nothing due,
// writes nothing to the backend: no table's lease is taken, and each
// table costs one read (its manifest version).
func TestIdleSchedulerRoundWritesNothing(t *testing.T) {
	ctx := context.Background()
	fb := faultstore.Wrap(tablestest.MultiProcess(memory.New()))
	defer fb.Close()
	m, err := flush.Open(ctx, fb, flush.Options{FS: segment.DirFS(t.TempDir())})
	require.NoError(t, err)
	defer m.Stop()
	_, err = m.DB().Catalog().CreateNamespace(ctx, ns)
	require.NoError(t, err)
	const n = 10
	for i := range n {
		name := fmt.Sprintf("t%d", i)
		_, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: ns, Name: name, Type: catalog.SharedTable, PrimaryKey: "id",
			Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}}})
		require.NoError(t, err)
		s, err := m.DB().Shared(ctx, ns, name)
		require.NoError(t, err)
		_, err = s.Insert(ctx, []row.Value{row.Int64(1)})
		require.NoError(t, err)
		_, err = m.Flush(ctx, ns, name)
		require.NoError(t, err)
	}
	fb.Reset()
	_, err = m.CheckPolicies(ctx)
	require.NoError(t, err)
	for _, op := range []faultstore.Op{faultstore.OpBatch, faultstore.OpPut, faultstore.OpDelete} {
		assert.Zero(t, fb.Count(op), "%s operations of an idle round", op)
	}
	assert.Equal(t, n, fb.Count(faultstore.OpGet), "one read a table")
}
