package tables_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// The background refresh of the catalog runs only on a backend that
// several processes share, and Close stops it.
func TestCatalogRefreshOnlyWhenShared(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	embedded, err := tables.Open(ctx, memory.New(), tables.Options{Clock: clk})
	require.NoError(t, err)
	defer embedded.Close()
	assert.Zero(t, clk.Tickers(), "an embedded backend runs no refresh")

	shared, err := tables.Open(ctx, tablestest.MultiProcess(memory.New()), tables.Options{Clock: clk})
	require.NoError(t, err)
	assert.Equal(t, 1, clk.Tickers(), "a shared backend runs the refresh")
	require.NoError(t, shared.Close())
	assert.Zero(t, clk.Tickers(), "Close stopped the refresh")
}
