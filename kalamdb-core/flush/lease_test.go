package flush_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
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
	b := memory.New()
	defer b.Close()
	mine, err := lease.New(b, lease.Options{Owner: "server-a", Clock: clk})
	require.NoError(t, err)
	other, err := lease.New(b, lease.Options{Owner: "server-b", Clock: clk})
	require.NoError(t, err)
	fs := &onSegment{FS: segment.DirFS(t.TempDir())}
	m, err := flush.Open(ctx, b, flush.Options{FS: fs, Leases: mine, Tables: tables.Options{Clock: clk}})
	require.NoError(t, err)
	defer m.Stop()

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

	var taken *lease.Lease
	var takeErr error
	fs.hook = func() {
		// This server paused past its lease's expiry; another took it.
		clk.Advance(lease.DefaultTTL + time.Second)
		taken, takeErr = other.Acquire(ctx, flush.LeaseName(tbl))
	}
	_, err = m.Flush(ctx, ns, "leased")
	require.NoError(t, takeErr)
	require.ErrorIs(t, err, store.ErrConditionFailed, "the commit carries the lease's check")

	segs, err := m.Segments(ns, "leased")
	require.NoError(t, err)
	assert.Empty(t, segs, "no segment is listed")
	n, err := store.Count(ctx, b, layout.Manifests, store.ScanOptions{})
	require.NoError(t, err)
	assert.Zero(t, n, "no manifest records the segment")
	buffered, err := store.Count(ctx, b, tbl.Partition(), store.ScanOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(10), buffered, "every row stays buffered")

	_, err = m.Flush(ctx, ns, "leased")
	require.ErrorIs(t, err, lease.ErrHeld, "no flush starts while another server holds the lease")

	require.NoError(t, taken.Release(ctx))
	res, err := m.Flush(ctx, ns, "leased")
	require.NoError(t, err)
	assert.Equal(t, int64(10), res.Rows)
	got, err := s.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(10), got)
	holder, _, err := mine.Holder(ctx, flush.LeaseName(tbl))
	require.NoError(t, err)
	assert.Empty(t, holder, "the flush released its lease")
}

// On a backend several servers share, a Manager takes leases of its own
// without being given any: while another server holds a table's lease, it
// neither flushes nor compacts the table.
func TestLeasesOnASharedBackend(t *testing.T) {
	ctx := context.Background()
	b := tablestest.MultiProcess(memory.New())
	defer b.Close()
	m, err := flush.Open(ctx, b, flush.Options{FS: segment.DirFS(t.TempDir())})
	require.NoError(t, err)
	defer m.Stop()
	_, err = m.DB().Catalog().CreateNamespace(ctx, ns)
	require.NoError(t, err)
	tbl, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: ns, Name: "busy", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}}})
	require.NoError(t, err)
	s, err := m.DB().Shared(ctx, ns, "busy")
	require.NoError(t, err)
	_, err = s.Insert(ctx, []row.Value{row.Int64(1)})
	require.NoError(t, err)

	other, err := lease.New(b, lease.Options{Owner: "another-server"})
	require.NoError(t, err)
	held, err := other.Acquire(ctx, flush.LeaseName(tbl))
	require.NoError(t, err)
	_, err = m.Flush(ctx, ns, "busy")
	require.ErrorIs(t, err, lease.ErrHeld)
	_, err = m.MajorCompact(ctx, ns, "busy")
	require.ErrorIs(t, err, lease.ErrHeld)

	require.NoError(t, held.Release(ctx))
	res, err := m.Flush(ctx, ns, "busy")
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.Rows)
}
