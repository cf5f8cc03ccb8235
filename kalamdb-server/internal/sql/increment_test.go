package sql

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// An UPDATE computes its new values from the rows as the query read them;
// the write applies only while each row still holds the version read, and
// the statement is evaluated again when another request changed one. So
// concurrent increments of the same rows through two servers on one shared
// backend are never lost, also while other writes (the table layer's, as
// the REST API makes them) change the rows' other columns under them.
func TestConcurrentIncrementsAreNotLost(t *testing.T) {
	b := tablestest.MultiProcess(memory.New())
	t.Cleanup(func() { _ = b.Close() })
	f := newFixtureOn(t, b, false)
	servers := []*fixture{f, newFixtureOn(t, b, false)}
	f.ok(t, adminToken, `CREATE NAMESPACE app; CREATE SHARED TABLE app.c (id BIGINT PRIMARY KEY, n BIGINT, m TEXT)`)
	f.ok(t, adminToken, `INSERT INTO app.c (id, n) VALUES (1, 0), (2, 0), (3, 0)`)
	const clients, each = 6, 15
	errs := make([]error, clients+1)
	var wg sync.WaitGroup
	var done atomic.Int64 // statements that answered 200
	rs, err := f.db.RowStore(context.Background(), "app", "c", "")
	require.NoError(t, err)
	wg.Go(func() {
		for i := range 10 {
			if _, err := rs.Update(context.Background(), row.Int64(int64(1+i%2)), map[string]row.Value{"m": row.String(fmt.Sprint(i))}); err != nil {
				errs[clients] = err
				return
			}
		}
	})
	for c := range clients {
		wg.Go(func() {
			for range each {
				req := httptest.NewRequest("POST", "/v1/api/sql", strings.NewReader(`{"sql":"UPDATE app.c SET n = n + 1 WHERE id <= 2"}`))
				req.Header.Set("Authorization", "Bearer "+adminToken)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				servers[c%2].api.ServeHTTP(rec, req)
				if rec.Code == http.StatusConflict && strings.Contains(rec.Body.String(), `"WRITE_CONFLICT"`) {
					continue // evaluated again too often: applied nothing
				}
				done.Add(1)
				if rec.Code != http.StatusOK {
					errs[c] = fmt.Errorf("client %d: status %d: %s", c, rec.Code, rec.Body.String())
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	res := f.ok(t, adminToken, `SELECT id, n FROM app.c ORDER BY id`)
	m := f.ok(t, adminToken, `SELECT m FROM app.c WHERE id <= 2 ORDER BY id`)
	assert.Equal(t, "[[8] [9]]", fmt.Sprint(m.Rows), "the other writes kept")
	require.Len(t, res.Rows, 3)
	require.Greater(t, done.Load(), int64(clients*each/2), "most statements succeed")
	want := fmt.Sprint(done.Load())
	assert.Equal(t, "[1 "+want+"]", fmt.Sprint(res.Rows[0]), "no increment lost")
	assert.Equal(t, "[2 "+want+"]", fmt.Sprint(res.Rows[1]), "no increment lost")
	assert.Equal(t, "[3 0]", fmt.Sprint(res.Rows[2]))
}
