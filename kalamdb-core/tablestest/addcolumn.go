package tablestest

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// testAddColumn adds a nullable column to a table with rows, while
// readers and updaters run: rows written before read it as null, new rows
// need a value (or null) for it, updates may set it, the store a caller
// already holds follows the new definition, and all of it survives a
// restart.
func testAddColumn(t *testing.T, e *env, s rowStore) {
	tableName := sharedTable
	if s.user() != "" {
		tableName = userTable
	}
	for id := int64(1); id <= 20; id++ {
		_, err := s.Insert(e.ctx, sample(id))
		require.NoError(t, err)
	}
	var (
		wg    sync.WaitGroup
		stop  atomic.Bool
		reads atomic.Int64
	)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); !stop.Load(); i++ {
				id := 1 + (i+int64(w)*7)%20
				var err error
				switch w {
				case 0:
					var r row.Row
					if r, err = s.Get(e.ctx, row.Int64(id)); err == nil && len(r.Values) < len(columns()) {
						t.Errorf("get %d: %d values", id, len(r.Values))
					}
				case 1:
					var p tables.Page
					if p, err = s.Scan(e.ctx, tables.ScanOptions{Limit: 7}); err == nil && len(p.Rows) != 7 {
						t.Errorf("scan: %d rows", len(p.Rows))
					}
				default:
					_, err = s.Update(e.ctx, row.Int64(id), map[string]row.Value{"body": row.String("during " + itoa(i))})
				}
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for reads.Load() < 50 && !t.Failed() {
		// Let the workers run before and after the change.
		runtime.Gosched()
	}
	held := s
	tbl, err := e.db.AddColumn(e.ctx, ns, tableName, catalog.Column{Name: "note", Type: row.TypeString, Nullable: true})
	require.NoError(t, err)
	for before := reads.Load(); reads.Load() < before+50 && !t.Failed(); {
		runtime.Gosched()
	}
	stop.Store(true)
	wg.Wait()
	require.False(t, t.Failed())
	n := len(columns()) + 1
	require.Len(t, tbl.Columns, n)

	check := func(s rowStore, what string) {
		t.Helper()
		r, err := s.Get(e.ctx, row.Int64(3))
		require.NoError(t, err, what)
		require.Len(t, r.Values, n, what)
		assert.True(t, r.Values[n-1].IsNull(), "%s: a row written before reads the new column as null", what)
		r, err = s.Get(e.ctx, row.Int64(21))
		require.NoError(t, err, what)
		assert.Equal(t, "new", r.Values[n-1].Str(), what)
		r, err = s.Get(e.ctx, row.Int64(4))
		require.NoError(t, err, what)
		assert.Equal(t, "set", r.Values[n-1].Str(), what)
		p, err := s.Scan(e.ctx, tables.ScanOptions{Limit: 100})
		require.NoError(t, err, what)
		require.Len(t, p.Rows, 21, what)
		for _, r := range p.Rows {
			require.Len(t, r.Values, n, what)
		}
	}
	_, err = held.Insert(e.ctx, sample(99))
	require.ErrorIs(t, err, core.ErrInvalidRow, "a row without the new column")
	_, err = held.Insert(e.ctx, append(sample(21), row.String("new")))
	require.NoError(t, err, "the store held since before the change takes the new column")
	_, err = held.Update(e.ctx, row.Int64(4), map[string]row.Value{"note": row.String("set")})
	require.NoError(t, err)
	check(held, "before the restart")
	e.restart()
	check(e.kinds()[map[bool]string{true: "user", false: "shared"}[s.user() != ""]](), "after the restart")
}
