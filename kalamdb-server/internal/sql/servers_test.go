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

// twoServers returns two servers of one database, each with its own table
// layer on a backend they share. Their clocks never move, so only the
// statements themselves make a server read the catalog again.
func twoServers(t *testing.T) [2]*fixture {
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
	return f
}

// Statements see what another server defined.
func TestStatementsSeeDefinitionsOfAnotherServer(t *testing.T) {
	f := twoServers(t)
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

// A table dropped and created again through one server is used at once
// through the other, whose copy of the catalog still holds the dropped
// table: each statement that finds its table gone runs once more on the
// catalog read again, and applies once.
func TestStatementsUseATableAnotherServerCreatedAgain(t *testing.T) {
	f := twoServers(t)
	r := f[0].sql(t, adminToken, "CREATE NAMESPACE app; CREATE SHARED TABLE kv (k BIGINT PRIMARY KEY, v TEXT)")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	for round := range 3 {
		// The other server knows the table as it is now.
		r = f[1].sql(t, aliceToken, "INSERT INTO kv (k, v) VALUES (100, 'old')")
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		r = f[0].sql(t, adminToken, "DROP TABLE app.kv; CREATE SHARED TABLE kv (k BIGINT PRIMARY KEY, v TEXT)")
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var stmt string
		switch round {
		case 0:
			stmt = "INSERT INTO kv (k, v) VALUES (1, 'new')"
		case 1:
			stmt = "SELECT count(*) FROM kv"
		case 2:
			stmt = "DELETE FROM kv WHERE k = 1"
		}
		r = f[1].sql(t, aliceToken, stmt)
		require.Equal(t, http.StatusOK, r.status, "%s on the table created again: %s", stmt, r.body)
		r = f[0].sql(t, aliceToken, "SELECT v FROM kv")
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		want := map[int][][]any{0: {{"new"}}, 1: {}, 2: {}}[round]
		assert.Equal(t, want, r.Results[0].Rows, "round %d", round)
	}
}
