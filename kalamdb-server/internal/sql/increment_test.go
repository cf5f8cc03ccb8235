package sql

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An UPDATE computes its new values from the rows as the query read them;
// the write applies only while each row still holds the version read, and
// the statement is evaluated again when another request changed one. So
// concurrent increments of the same rows are never lost, and a DELETE
// never removes a row whose values no longer match its condition.
func TestConcurrentIncrementsAreNotLost(t *testing.T) {
	f := newFixture(t)
	f.ok(t, adminToken, `CREATE NAMESPACE app; CREATE SHARED TABLE app.c (id BIGINT PRIMARY KEY, n BIGINT)`)
	f.ok(t, adminToken, `INSERT INTO app.c (id, n) VALUES (1, 0), (2, 0), (3, 0)`)
	const clients, each = 6, 15
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for range each {
				req := httptest.NewRequest("POST", "/v1/api/sql", strings.NewReader(`{"sql":"UPDATE app.c SET n = n + 1 WHERE id <= 2"}`))
				req.Header.Set("Authorization", "Bearer "+adminToken)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				f.api.ServeHTTP(rec, req)
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
	require.Len(t, res.Rows, 3)
	want := fmt.Sprint(clients * each)
	assert.Equal(t, "[1 "+want+"]", fmt.Sprint(res.Rows[0]), "no increment lost")
	assert.Equal(t, "[2 "+want+"]", fmt.Sprint(res.Rows[1]), "no increment lost")
	assert.Equal(t, "[3 0]", fmt.Sprint(res.Rows[2]))
}
