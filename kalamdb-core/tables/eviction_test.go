package tables_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
