package tables_test

import (
	"context"
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
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

type evicted struct {
	st  tables.EvictStats
	err error
}

// A panic during an eviction run reaches the report as a *guard.PanicError
// and the timer keeps running: the next run evicts.
func TestEvictionSurvivesAPanic(t *testing.T) {
	ctx := context.Background()
	b := faultstore.Wrap(memory.New())
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	db, err := tables.Open(ctx, b, tables.Options{Clock: clk})
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Catalog().CreateNamespace(ctx, "app")
	require.NoError(t, err)
	_, err = db.Catalog().CreateTable(ctx, catalog.Table{Namespace: "app", Name: "events", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "n", Type: row.TypeInt64}}, Stream: catalog.StreamOptions{TTL: time.Minute, MaxBuffer: 100}})
	require.NoError(t, err)
	s, err := db.Stream(ctx, "app", "events")
	require.NoError(t, err)
	_, err = s.Append(ctx, []row.Value{row.Int64(1)})
	require.NoError(t, err)

	reports := make(chan evicted, 4)
	require.NoError(t, s.StartEviction(time.Hour, func(st tables.EvictStats, err error) { reports <- evicted{st, err} }))
	b.SetRule(func(op faultstore.Op) error {
		if op == faultstore.OpScan {
			panic("backend bug")
		}
		return nil
	})
	clk.Advance(time.Hour)
	r := <-reports
	var pe *guard.PanicError
	require.ErrorAs(t, r.err, &pe)
	assert.Contains(t, pe.Error(), "tables: eviction of app.events: panic: backend bug")
	assert.NotEmpty(t, pe.Stack)

	b.SetRule(nil)
	clk.Advance(time.Hour)
	r = <-reports
	require.NoError(t, r.err)
	assert.Equal(t, int64(1), r.st.Expired)
	s.StopEviction()
}

// blockingScans wraps a backend: once armed, a Scan signals on entered and
// blocks until its context is done, then sends the context's error on left
// and fails with it. It is a backend call that only cancellation ends.
type blockingScans struct {
	store.StorageBackend
	armed   atomic.Bool
	entered chan struct{}
	left    chan error
}

func newBlockingScans() *blockingScans {
	return &blockingScans{StorageBackend: memory.New(), entered: make(chan struct{}, 1), left: make(chan error, 1)}
}

func (b *blockingScans) Scan(ctx context.Context, p store.Partition, opts store.ScanOptions) (store.Iterator, error) {
	if !b.armed.Load() {
		return b.StorageBackend.Scan(ctx, p, opts)
	}
	b.entered <- struct{}{}
	<-ctx.Done()
	b.left <- ctx.Err()
	return nil, ctx.Err()
}

// streamDB opens a DB on b with stream table app.events.
func streamDB(t *testing.T, b store.StorageBackend, clk *clock.Fake) *tables.DB {
	t.Helper()
	ctx := context.Background()
	db, err := tables.Open(ctx, b, tables.Options{Clock: clk})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Catalog().CreateNamespace(ctx, "app")
	require.NoError(t, err)
	createEvents(t, db)
	return db
}

func createEvents(t *testing.T, db *tables.DB) {
	t.Helper()
	_, err := db.Catalog().CreateTable(context.Background(), catalog.Table{Namespace: "app", Name: "events", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "n", Type: row.TypeInt64}}, Stream: catalog.StreamOptions{TTL: time.Minute, MaxBuffer: 100}})
	require.NoError(t, err)
}

// assertEnded checks that the blocked scan of b has returned, cancelled.
func assertEnded(t *testing.T, b *blockingScans) {
	t.Helper()
	select {
	case err := <-b.left:
		assert.ErrorIs(t, err, context.Canceled)
	default:
		t.Fatal("Close returned while an eviction was still blocked in the backend")
	}
}

// An eviction blocked inside the backend does not hold Close up: Close
// cancels its context, and it has ended when Close returns.
func TestCloseCancelsABlockedEviction(t *testing.T) {
	b := newBlockingScans()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	db := streamDB(t, b, clk)
	s, err := db.Stream(context.Background(), "app", "events")
	require.NoError(t, err)
	require.NoError(t, s.StartEviction(time.Minute, nil))
	b.armed.Store(true)
	clk.Advance(time.Minute)
	<-b.entered
	require.NoError(t, db.Close())
	assertEnded(t, b)
}

// The eviction of a stream store that a re-created table replaced, started
// after the replacement, runs on the DB's context too: Close stops it.
func TestCloseStopsTheEvictionOfAReplacedStore(t *testing.T) {
	ctx := context.Background()
	b := newBlockingScans()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	db := streamDB(t, b, clk)
	old, err := db.Stream(ctx, "app", "events")
	require.NoError(t, err)
	require.NoError(t, db.Catalog().DropTable(ctx, "app", "events"))
	createEvents(t, db)
	fresh, err := db.Stream(ctx, "app", "events")
	require.NoError(t, err)
	require.NotSame(t, old, fresh)

	require.NoError(t, old.StartEviction(time.Minute, nil))
	t.Cleanup(old.StopEviction)
	b.armed.Store(true)
	clk.Advance(time.Minute)
	<-b.entered
	require.NoError(t, db.Close())
	assertEnded(t, b)
}

// Once the DB's eviction is stopped (DB.StopEviction, as a server does
// when it shuts down, or Close), no eviction timer starts again: it would
// run on a context nothing cancels. The store keeps working otherwise.
func TestEvictionDoesNotStartAfterStop(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	db := streamDB(t, memory.New(), clk)
	s, err := db.Stream(ctx, "app", "events")
	require.NoError(t, err)
	require.NoError(t, s.StartEviction(time.Minute, nil))
	db.StopEviction()
	err = s.StartEviction(time.Minute, nil)
	require.ErrorIs(t, err, store.ErrClosed)
	assert.Contains(t, err.Error(), "eviction of app.events")
	_, err = s.Append(ctx, []row.Value{row.Int64(1)})
	require.NoError(t, err)
	assert.Zero(t, clk.Tickers(), "no timer left running")

	require.NoError(t, db.Close())
	require.ErrorIs(t, s.StartEviction(time.Minute, nil), store.ErrClosed)
}
