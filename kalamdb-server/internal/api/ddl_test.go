package api

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const messagesTable = `{"name":"messages","type":"user","columns":[{"name":"id","type":"int64"},{"name":"body","type":"string","nullable":true},{"name":"at","type":"timestamp"}],"primary_key":"id","flush":{"rows":10000,"interval_seconds":300}}`

func TestNamespaceLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	r := f.json(t, "POST", "/v1/namespaces", adminToken, `{"name":"app"}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Equal(t, "app", r.decode(t)["name"])

	r = f.json(t, "POST", "/v1/namespaces", adminToken, `{"name":"app"}`)
	assert.Equal(t, http.StatusConflict, r.status)
	code, _ := r.errorBody(t)
	assert.Equal(t, CodeNamespaceExists, code)

	r = f.json(t, "POST", "/v1/namespaces", userToken, `{"name":"other"}`)
	assert.Equal(t, http.StatusForbidden, r.status, "only admins create namespaces")

	r = f.do(t, "GET", "/v1/namespaces", userToken, "", nil)
	require.Equal(t, http.StatusOK, r.status)
	nss := r.decode(t)["namespaces"].([]any)
	require.Len(t, nss, 1)
	assert.Equal(t, "app", nss[0].(map[string]any)["name"])

	r = f.do(t, "GET", "/v1/namespaces", "", "", nil)
	assert.Equal(t, http.StatusUnauthorized, r.status)

	for body, msg := range map[string]string{
		`{}`:                 `field "name" is required`,
		`{"name":"App"}`:     "must start with a lowercase letter",
		`{"name":""}`:        "is empty",
		`{"name":"a-b"}`:     `has '-' (U+002D) at byte offset 1`,
		`{"name":["x"]}`:     `field "name" must be a string`,
		`{"name":"x","y":1}`: `unknown field "y"`,
	} {
		r = f.json(t, "POST", "/v1/namespaces", adminToken, body)
		assert.Equal(t, http.StatusBadRequest, r.status, body)
		_, m := r.errorBody(t)
		assert.Contains(t, m, msg, body)
	}

	r = f.do(t, "DELETE", "/v1/namespaces/app", adminToken, "", nil)
	assert.Equal(t, http.StatusNoContent, r.status)
	r = f.do(t, "GET", "/v1/namespaces/app", adminToken, "", nil)
	assert.Equal(t, http.StatusNotFound, r.status)
	code, _ = r.errorBody(t)
	assert.Equal(t, CodeNamespaceNotFound, code)
}

func TestTableLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	require.Equal(t, http.StatusCreated, f.json(t, "POST", "/v1/namespaces", adminToken, `{"name":"app"}`).status)

	r := f.json(t, "POST", "/v1/namespaces/app/tables", userToken, messagesTable)
	assert.Equal(t, http.StatusForbidden, r.status, "only admins create tables")

	r = f.json(t, "POST", "/v1/namespaces/app/tables", adminToken, messagesTable)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	got := r.decode(t)
	assert.Equal(t, "user", got["type"])
	assert.Equal(t, "id", got["primary_key"])
	assert.Equal(t, map[string]any{"rows": 10000.0, "interval_seconds": 300.0}, got["flush"])
	assert.Len(t, got["columns"], 3)

	r = f.json(t, "POST", "/v1/namespaces/app/tables", adminToken, messagesTable)
	assert.Equal(t, http.StatusConflict, r.status)
	code, _ := r.errorBody(t)
	assert.Equal(t, CodeTableExists, code)

	r = f.json(t, "POST", "/v1/namespaces/nope/tables", adminToken, messagesTable)
	assert.Equal(t, http.StatusNotFound, r.status)
	code, _ = r.errorBody(t)
	assert.Equal(t, CodeNamespaceNotFound, code)

	// Defaults from the configuration.
	r = f.json(t, "POST", "/v1/namespaces/app/tables", adminToken, `{"name":"kv","type":"shared","columns":[{"name":"k","type":"string"},{"name":"v","type":"bytes","nullable":true}],"primary_key":"k"}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Equal(t, map[string]any{"rows": 500.0, "interval_seconds": 60.0}, r.decode(t)["flush"])

	r = f.json(t, "POST", "/v1/namespaces/app/tables", adminToken, `{"name":"events","type":"stream","columns":[{"name":"kind","type":"string"}],"ttl_seconds":60}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	got = r.decode(t)
	assert.Equal(t, 60.0, got["ttl_seconds"])
	assert.Equal(t, 1000.0, got["max_buffer_rows"])
	assert.NotContains(t, got, "flush")

	r = f.do(t, "GET", "/v1/namespaces/app/tables", userToken, "", nil)
	require.Equal(t, http.StatusOK, r.status)
	var names []string
	for _, x := range r.decode(t)["tables"].([]any) {
		names = append(names, x.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"events", "kv", "messages"}, names)

	r = f.do(t, "GET", "/v1/namespaces/app/tables/messages", userToken, "", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "messages", r.decode(t)["name"])

	r = f.do(t, "DELETE", "/v1/namespaces/app/tables/messages", userToken, "", nil)
	assert.Equal(t, http.StatusForbidden, r.status)
	r = f.do(t, "DELETE", "/v1/namespaces/app/tables/messages", adminToken, "", nil)
	assert.Equal(t, http.StatusNoContent, r.status)
	r = f.do(t, "GET", "/v1/namespaces/app/tables/messages", userToken, "", nil)
	assert.Equal(t, http.StatusNotFound, r.status)
	code, _ = r.errorBody(t)
	assert.Equal(t, CodeTableNotFound, code)
	r = f.do(t, "DELETE", "/v1/namespaces/app/tables/messages", adminToken, "", nil)
	assert.Equal(t, http.StatusNotFound, r.status)

	r = f.do(t, "DELETE", "/v1/namespaces/app", adminToken, "", nil)
	assert.Equal(t, http.StatusConflict, r.status, "a namespace with tables is not dropped")
	code, _ = r.errorBody(t)
	assert.Equal(t, CodeNamespaceNotEmpty, code)
}

func TestCreateTableBadInputNamesTheField(t *testing.T) {
	f := newFixture(t, nil)
	require.Equal(t, http.StatusCreated, f.json(t, "POST", "/v1/namespaces", adminToken, `{"name":"app"}`).status)
	cases := map[string]string{
		`{"type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`:                                                    `field "name" is required`,
		`{"name":"t","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`:                                                       `field "type" is required`,
		`{"name":"t","type":"table","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`:                                        `field "type" is "table"`,
		`{"name":"t","type":"user","columns":[],"primary_key":"id"}`:                                                                     `field "columns" must list at least one column`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"integer"}],"primary_key":"id"}`:                                       `field "columns[0].type" of column "id" is "integer"`,
		`{"name":"t","type":"user","columns":[{"type":"int64"}],"primary_key":"id"}`:                                                     `field "columns[0].name" is required`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}]}`:                                                            `field "primary_key" is required`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"nope"}`:                                       `column "nope": is the primary key of app.t but is not one of its columns`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"float64"}],"primary_key":"id"}`:                                       `column "id": is the primary key and has type float64`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"},{"name":"id","type":"int64"}],"primary_key":"id"}`:            `column "id": is defined twice`,
		`{"name":"t","type":"user","columns":[{"name":"_seq","type":"int64"}],"primary_key":"_seq"}`:                                     `reserved for system columns`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"rows":0}}`:                      `field "flush.rows" must be at least 1`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"interval_seconds":-1}}`:         `field "flush.interval_seconds" must be 0`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id","ttl_seconds":5}`:                         `only apply to stream tables`,
		`{"name":"t","type":"stream","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`:                                       `field "primary_key" does not apply to stream tables`,
		`{"name":"t","type":"stream","columns":[{"name":"id","type":"int64"}],"flush":{"rows":5}}`:                                       `field "flush" does not apply to stream tables`,
		`{"name":"t","type":"stream","columns":[{"name":"id","type":"int64"}],"ttl_seconds":0}`:                                          `field "ttl_seconds" must be from 1 to 9223372036`,
		`{"name":"t","type":"stream","columns":[{"name":"id","type":"int64"}],"ttl_seconds":18446744074}`:                                `field "ttl_seconds" must be from 1 to 9223372036 (about 292 years), got 18446744074`,
		`{"name":"t","type":"stream","columns":[{"name":"id","type":"int64"}],"ttl_seconds":9223372037}`:                                 `got 9223372037`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"interval_seconds":9223372037}}`: `field "flush.interval_seconds" must be 0 (no timed flush) to 9223372036`,
		`{"name":"t","type":"stream","columns":[{"name":"id","type":"int64"}],"max_buffer_rows":-5}`:                                     `field "max_buffer_rows" must be at least 1`,
		`{"name":"t","type":"stream","columns":[{"name":"id","type":"int64"}],"max_buffer_bytes":0}`:                                     `field "max_buffer_bytes" must be at least 1`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id","max_buffer_bytes":5}`:                    `"max_buffer_bytes" only apply to stream tables`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64","nullable":"yes"}],"primary_key":"id"}`:                        `field "columns.nullable" must be true or false`,
		`{"name":"t","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id","flush":{"rows":1.5}}`:                    `field "flush.rows" must be an integer`,
	}
	for body, msg := range cases {
		r := f.json(t, "POST", "/v1/namespaces/app/tables", adminToken, body)
		assert.Equal(t, http.StatusBadRequest, r.status, body)
		_, m := r.errorBody(t)
		assert.Contains(t, m, msg, body)
	}
	r := f.do(t, "GET", "/v1/namespaces/app/tables", adminToken, "", nil)
	assert.Empty(t, r.decode(t)["tables"], "no bad definition created a table")
}

// A write that other servers kept changing under it is a 409 the client
// may retry, not a 500.
func TestWriteConflictIs409(t *testing.T) {
	e := classifyCore(fmt.Errorf("app.items: other servers changed the row 100 times while this write ran; try again: %w", store.ErrConditionFailed))
	require.NotNil(t, e)
	assert.Equal(t, http.StatusConflict, e.Status)
	assert.Equal(t, CodeWriteConflict, e.Code)
	assert.Contains(t, e.Message, "try again")
}

// A flush or compaction that another server holds the table's lease for
// (or took it over from this one) is a 409 the admin may retry, not a 500.
func TestBusyTableIs409(t *testing.T) {
	for _, err := range []error{lease.ErrHeld, lease.ErrLost, lease.ErrExpiring} {
		e := classifyCore(fmt.Errorf("flush: app.items: %w", err))
		require.NotNil(t, e, "%v", err)
		assert.Equal(t, http.StatusConflict, e.Status)
		assert.Equal(t, CodeTableBusy, e.Code, "%v", err)
	}
}
