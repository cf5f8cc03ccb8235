package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
)

// Failing background refreshes of the catalog are logged once when they
// start failing and once when they work again, not at every refresh.
func TestCatalogRefreshLog(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	report := s.catalogRefreshLog()
	down := errors.New("backend down")
	report(false, nil)
	report(false, down)
	report(false, down)
	report(false, down)
	report(true, nil)
	report(false, nil)
	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, "reading the catalog again failed"), out)
	assert.Equal(t, 1, strings.Count(out, "reading the catalog again works again"), out)
	assert.Equal(t, 1, strings.Count(out, "catalog changed by another server"), out)
}

// The instance id naming a database's Parquet directory is the catalog's
// database id, which every server sharing the backend reads; a database
// whose server kept an instance id of its own before keeps that one, and
// the catalog adopts it.
func TestInstanceIDIsTheDatabaseID(t *testing.T) {
	ctx := context.Background()
	fresh := memory.New()
	defer fresh.Close()
	id, err := (&Server{backend: fresh}).instanceID(ctx)
	require.NoError(t, err)
	again, err := (&Server{backend: fresh}).instanceID(ctx)
	require.NoError(t, err)
	assert.Equal(t, id, again)
	c, err := catalog.Open(ctx, fresh, catalog.Options{})
	require.NoError(t, err)
	assert.Equal(t, id, c.DatabaseID())

	older := memory.New()
	defer older.Close()
	const kept = "0123456789abcdef0123456789abcdef"
	require.NoError(t, older.CreatePartition(ctx, metaPartition))
	require.NoError(t, older.Put(ctx, metaPartition, instanceKey, []byte(kept)))
	id, err = (&Server{backend: older}).instanceID(ctx)
	require.NoError(t, err)
	assert.Equal(t, kept, id)
	c, err = catalog.Open(ctx, older, catalog.Options{})
	require.NoError(t, err)
	assert.Equal(t, kept, c.DatabaseID())
}
