package catalog_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// yielding makes every read yield the processor, so that the races between
// two catalogs' read and batch happen often.
type yielding struct{ store.StorageBackend }

func (y yielding) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	v, err := y.StorageBackend.Get(ctx, p, key)
	runtime.Gosched()
	return v, err
}

// servers opens n catalogs on one backend, as n servers would.
func servers(t *testing.T, n int) (store.StorageBackend, []*catalog.Catalog) {
	b := yielding{newBackend(t)}
	cs := make([]*catalog.Catalog, n)
	for i := range cs {
		cs[i] = open(t, b)
	}
	return b, cs
}

func tablePartitions(t *testing.T, b store.StorageBackend) []string {
	ps, err := b.ListPartitions(context.Background())
	require.NoError(t, err)
	var out []string
	for _, p := range ps {
		if strings.HasPrefix(p.Name(), "t:") {
			out = append(out, p.Name())
		}
	}
	return out
}

// A change made through one catalog is seen by another after Refresh, and
// only then; an unchanged table keeps its *Table.
func TestRefreshSeesOtherServersChanges(t *testing.T) {
	ctx := context.Background()
	_, cs := servers(t, 2)
	a, b := cs[0], cs[1]
	_, err := a.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	_, err = b.Namespace("app")
	require.ErrorIs(t, err, core.ErrNamespaceNotFound, "a copy until refreshed")
	changed, err := b.Refresh(ctx)
	require.NoError(t, err)
	require.True(t, changed)
	_, err = b.Namespace("app")
	require.NoError(t, err)

	_, err = a.CreateTable(ctx, messages())
	require.NoError(t, err)
	_, err = b.Refresh(ctx)
	require.NoError(t, err)
	before, err := b.Table("app", "messages")
	require.NoError(t, err)
	changed, err = b.Refresh(ctx)
	require.NoError(t, err)
	assert.False(t, changed, "nothing moved")

	other := messages()
	other.Name = "other"
	_, err = a.CreateTable(ctx, other)
	require.NoError(t, err)
	changed, err = b.Refresh(ctx)
	require.NoError(t, err)
	assert.True(t, changed)
	after, err := b.Table("app", "messages")
	require.NoError(t, err)
	assert.Same(t, before, after, "an unchanged table keeps its definition")

	// AddColumn through b extends the stored definition, even where b's
	// copy is behind.
	_, err = a.AddColumn(ctx, "app", "messages", catalog.Column{Name: "from_a", Type: row.TypeString, Nullable: true})
	require.NoError(t, err)
	tb, err := b.AddColumn(ctx, "app", "messages", catalog.Column{Name: "from_b", Type: row.TypeInt64, Nullable: true})
	require.NoError(t, err)
	var names []string
	for _, c := range tb.Columns {
		names = append(names, c.Name)
	}
	assert.Equal(t, []string{"id", "body", "sent", "from_a", "from_b"}, names)

	require.NoError(t, b.DropTable(ctx, "app", "other"))
	_, err = a.Refresh(ctx)
	require.NoError(t, err)
	_, err = a.Table("app", "other")
	assert.ErrorIs(t, err, core.ErrTableNotFound)
	assert.ErrorIs(t, a.DropTable(ctx, "app", "other"), core.ErrTableNotFound)
}

// Catalogs creating tables at once: one table per name, distinct ids, no
// partition left over by the losers.
func TestConcurrentCreatesOfOneName(t *testing.T) {
	ctx := context.Background()
	b, cs := servers(t, 3)
	_, err := cs[0].CreateNamespace(ctx, "app")
	require.NoError(t, err)
	for _, c := range cs {
		_, err := c.Refresh(ctx)
		require.NoError(t, err)
	}
	const names = 8
	wins := make([]int, names)
	ids := map[uint64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cs {
		for w := range 2 {
			wg.Go(func() {
				for i := range names {
					def := messages()
					def.Name = fmt.Sprintf("t%d", (i+w)%names)
					tbl, err := c.CreateTable(ctx, def)
					if err != nil {
						assert.ErrorIs(t, err, core.ErrTableExists)
						continue
					}
					mu.Lock()
					wins[(i+w)%names]++
					assert.Empty(t, ids[tbl.ID], "id %d given twice", tbl.ID)
					ids[tbl.ID] = def.Name
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for i, n := range wins {
		assert.Equal(t, 1, n, "table t%d created %d times", i, n)
	}
	assert.Len(t, tablePartitions(t, b), names, "one partition per table, none left by a lost create")
	fresh := open(t, b)
	tables, err := fresh.Tables("app")
	require.NoError(t, err)
	assert.Len(t, tables, names)
}

// A namespace dropped while another server creates a table in it: never
// both. Either the drop wins and the create fails, or the create wins and
// the drop finds the namespace not empty.
func TestDropNamespaceRacingCreateTable(t *testing.T) {
	ctx := context.Background()
	b, cs := servers(t, 2)
	for round := range 30 {
		ns := fmt.Sprintf("ns%d", round)
		_, err := cs[0].CreateNamespace(ctx, ns)
		require.NoError(t, err)
		def := messages()
		def.Namespace = ns
		var createErr, dropErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, createErr = cs[1].CreateTable(ctx, def) })
		wg.Go(func() { dropErr = cs[0].DropNamespace(ctx, ns) })
		wg.Wait()
		switch {
		case createErr == nil:
			require.ErrorIs(t, dropErr, core.ErrNamespaceNotEmpty, "round %d", round)
		case dropErr == nil:
			require.ErrorIs(t, createErr, core.ErrNamespaceNotFound, "round %d", round)
		default:
			t.Fatalf("round %d: both failed: %v / %v", round, createErr, dropErr)
		}
		fresh := open(t, b)
		_, nsErr := fresh.Namespace(ns)
		tables, _ := fresh.Tables(ns)
		if nsErr != nil {
			assert.Empty(t, tables, "round %d: a table outlived its namespace", round)
		}
	}
}

// The sweep at open leaves alone the partition of a create in progress on
// another server (its id reserved, its table not yet recorded) until the
// reservation is older than ReservationGrace, and the partition of a table
// recorded after the sweeping catalog loaded.
func TestSweepSparesCreatesInProgress(t *testing.T) {
	ctx := context.Background()
	mem := newBackend(t)
	a := open(t, mem)
	_, err := a.CreateNamespace(ctx, "app")
	require.NoError(t, err)

	// A create that stops after its partition exists: the batch that
	// records the table fails.
	stalled := &failRecord{StorageBackend: mem}
	s, err := catalog.Open(ctx, stalled, catalog.Options{Clock: clock.NewFake(t0)})
	require.NoError(t, err)
	_, err = s.CreateTable(ctx, messages())
	require.Error(t, err)
	require.Len(t, tablePartitions(t, mem), 1, "the partition waits for its create")

	fk := clock.NewFake(t0.Add(catalog.ReservationGrace / 2))
	_, err = catalog.Open(ctx, mem, catalog.Options{Clock: fk})
	require.NoError(t, err)
	assert.Len(t, tablePartitions(t, mem), 1, "a recent reservation keeps its partition")

	fk = clock.NewFake(t0.Add(catalog.ReservationGrace + 1))
	_, err = catalog.Open(ctx, mem, catalog.Options{Clock: fk})
	require.NoError(t, err)
	assert.Empty(t, tablePartitions(t, mem), "an abandoned reservation's partition is swept")

	// A table recorded between the sweeping catalog's load and its sweep.
	racer := &beforeList{StorageBackend: mem, run: func() {
		def := messages()
		def.Name = "late"
		_, err := a.CreateTable(ctx, def)
		require.NoError(t, err)
	}}
	_, err = catalog.Open(ctx, racer, catalog.Options{Clock: clock.NewFake(t0.Add(2 * catalog.ReservationGrace))})
	require.NoError(t, err)
	assert.Len(t, tablePartitions(t, mem), 1, "the late table keeps its partition")
	fresh := open(t, mem)
	_, err = fresh.Table("app", "late")
	require.NoError(t, err)
}

// failRecord fails the batch that records a table (the one holding a
// check of the namespace), with an error whose outcome is unknown.
type failRecord struct{ store.StorageBackend }

func (f *failRecord) Batch(ctx context.Context, ops []store.Operation) error {
	if len(ops) > 4 {
		return fmt.Errorf("connection reset")
	}
	return f.StorageBackend.Batch(ctx, ops)
}

// beforeList runs run once, before the first ListPartitions: between the
// catalog's load and its sweep.
type beforeList struct {
	store.StorageBackend
	run  func()
	done bool
}

func (b *beforeList) ListPartitions(ctx context.Context) ([]store.Partition, error) {
	if !b.done {
		b.done = true
		b.run()
	}
	return b.StorageBackend.ListPartitions(ctx)
}
