package sql

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// Two servers of one database, each with its own table layer on a backend
// they share. Their clocks never move, so only the statements themselves
// make a server read the catalog again.
func TestStatementsSeeDefinitionsOfAnotherServer(t *testing.T) {
	b := tablestest.MultiProcess(memory.New())
	t.Cleanup(func() { _ = b.Close() })
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	var f [2]*fixture
	for i := range f {
		db, err := tables.Open(context.Background(), b, tables.Options{Clock: clk})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		f[i] = newFixtureWith(t, db, nil)
	}
	r := f[0].sql(t, adminToken, "CREATE NAMESPACE app; CREATE SHARED TABLE kv (k BIGINT PRIMARY KEY, v TEXT)")
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	r = f[1].sql(t, adminToken, "SHOW NAMESPACES")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Len(t, r.Results[0].Rows, 1, "the listing reads the catalog again")
	r = f[1].sql(t, adminToken, "SHOW TABLES IN app")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Len(t, r.Results[0].Rows, 1)
	r = f[1].sql(t, aliceToken, "INSERT INTO kv (k, v) VALUES (1, 'one')")
	require.Equal(t, http.StatusOK, r.status, "an insert into a table another server created: %s", r.body)
	r = f[1].sql(t, aliceToken, "SELECT v FROM kv WHERE k = 1")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, [][]any{{"one"}}, r.Results[0].Rows)
	r = f[1].sql(t, adminToken, "DESCRIBE TABLE app.kv")
	assert.Equal(t, http.StatusOK, r.status, string(r.body))

	r = f[0].sql(t, adminToken, "CREATE SHARED TABLE more (k BIGINT PRIMARY KEY)")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = f[1].sql(t, aliceToken, "SELECT count(*) AS n FROM more")
	require.Equal(t, http.StatusOK, r.status, "a query of a table another server created: %s", r.body)
	r = f[1].sql(t, aliceToken, "SELECT * FROM nope")
	assert.Equal(t, http.StatusNotFound, r.status, "a table no server created is still unknown: %s", r.body)
}
