package api

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

// serverFixtures returns n APIs, each with its own table layer, on one
// shared backend: n servers of one database. Their clocks never move, so
// only requests refresh their catalogs.
func serverFixtures(t *testing.T, n int) []*fixture {
	b := tablestest.MultiProcess(memory.New())
	t.Cleanup(func() { _ = b.Close() })
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	out := make([]*fixture, n)
	for i := range out {
		db, err := tables.Open(context.Background(), b, tables.Options{Clock: clk})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		out[i] = newFixture(t, func(o *Options) {
			o.DB, o.DatabaseID = db, db.Catalog().DatabaseID()
			o.MaxBodyBytes, o.EvictionInterval = 16384, time.Hour
		})
	}
	return out
}

// A namespace, a table and a column created through one server are used
// through another at once: a request that names what the server does not
// know reads the catalog again before it answers.
func TestServersSeeEachOthersDefinitions(t *testing.T) {
	s := serverFixtures(t, 2)
	a, b := s[0], s[1]
	require.Equal(t, http.StatusCreated, a.json(t, "POST", "/v1/namespaces", adminToken, `{"name":"app"}`).status)
	r := b.json(t, "GET", "/v1/namespaces", userToken, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Len(t, r.decode(t)["namespaces"], 1, "a listing reads the catalog again")
	r = b.json(t, "GET", "/v1/namespaces/app", userToken, nil)
	assert.Equal(t, http.StatusOK, r.status, string(r.body))
	a.createTable(t, `{"name":"kv","type":"shared","columns":[{"name":"k","type":"int64"},{"name":"v","type":"string","nullable":true}],"primary_key":"k"}`)
	r = b.json(t, "GET", "/v1/namespaces/app/tables", userToken, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Len(t, r.decode(t)["tables"], 1, "a listing reads the catalog again")
	r = b.json(t, "GET", "/v1/namespaces/app/tables/kv", userToken, nil)
	assert.Equal(t, http.StatusOK, r.status, string(r.body))

	path := "/v1/namespaces/app/tables/kv"
	r = b.json(t, "POST", path+"/rows", userToken, `{"rows":[{"k":1,"v":"one"}]}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	r = a.json(t, "POST", path+"/columns", adminToken, `{"name":"note","type":"string","nullable":true}`)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = b.json(t, "POST", path+"/rows", userToken, `{"rows":[{"k":2,"v":"two","note":"new"}]}`)
	require.Equal(t, http.StatusCreated, r.status, "an insert naming the new column: %s", r.body)
	r = b.json(t, "PATCH", path+"/rows/1", userToken, `{"note":"patched"}`)
	require.Equal(t, http.StatusOK, r.status, "an update naming the new column: %s", r.body)
	r = a.json(t, "GET", path+"/rows/1", userToken, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "patched", r.decode(t)["note"])

	r = b.json(t, "POST", path+"/rows", userToken, `{"rows":[{"k":3,"nope":1}]}`)
	assert.Equal(t, http.StatusBadRequest, r.status, "a column no server added is still unknown: %s", r.body)
	r = b.json(t, "GET", "/v1/namespaces/nope", userToken, nil)
	assert.Equal(t, http.StatusNotFound, r.status)
}

// Servers of one database show its one id in /healthz.
func TestServersShowOneDatabaseID(t *testing.T) {
	s := serverFixtures(t, 2)
	var ids []any
	for _, f := range s {
		r := f.do(t, "GET", "/healthz", "", "", nil)
		require.Equal(t, http.StatusOK, r.status)
		ids = append(ids, r.decode(t)["database_id"])
	}
	assert.NotEmpty(t, ids[0])
	assert.Equal(t, ids[0], ids[1])
}

// A table dropped and created again through one server is used at once
// through another, whose copy of the catalog still holds the dropped
// table: a request that finds its table gone runs once more, with its
// body, on the catalog read again, and applies once.
func TestServersUseATableAnotherCreatedAgain(t *testing.T) {
	s := serverFixtures(t, 2)
	a, b := s[0], s[1]
	require.Equal(t, http.StatusCreated, a.json(t, "POST", "/v1/namespaces", adminToken, `{"name":"app"}`).status)
	const def = `{"name":"kv","type":"shared","columns":[{"name":"k","type":"int64"},{"name":"v","type":"string","nullable":true}],"primary_key":"k"}`
	a.createTable(t, def)
	path := "/v1/namespaces/app/tables/kv"
	for _, req := range []struct {
		method, path, body string
		status             int
		after              []any // the values of kv afterwards, through a
	}{
		{"POST", path + "/rows", `{"rows":[{"k":1,"v":"new"}]}`, http.StatusCreated, []any{"new"}},
		{"GET", path + "/rows/1", "", http.StatusNotFound, []any{}},
		{"PATCH", path + "/rows/1", `{"v":"patched"}`, http.StatusNotFound, []any{}},
		{"GET", path + "/rows", "", http.StatusOK, []any{}},
	} {
		// b knows the table as it is now, with a row in it.
		r := b.json(t, "POST", path+"/rows", userToken, `{"rows":[{"k":100,"v":"old"}]}`)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		require.Equal(t, http.StatusNoContent, a.json(t, "DELETE", path, adminToken, nil).status)
		a.createTable(t, def)

		var body any
		if req.body != "" {
			body = req.body
		}
		r = b.json(t, req.method, req.path, userToken, body)
		require.Equal(t, req.status, r.status, "%s %s on the table created again: %s", req.method, req.path, r.body)
		if r.status == http.StatusNotFound {
			assert.Equal(t, "ROW_NOT_FOUND", r.decode(t)["error"].(map[string]any)["code"], "the row, not the table: %s", r.body)
		}
		r = a.json(t, "GET", path+"/rows", userToken, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var got []any
		for _, row := range r.decode(t)["rows"].([]any) {
			got = append(got, row.(map[string]any)["v"])
		}
		if got == nil {
			got = []any{}
		}
		assert.Equal(t, req.after, got, "%s %s", req.method, req.path)
	}
}
