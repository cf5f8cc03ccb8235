package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const messagesDef = `{"name":"messages","type":"user",
 "columns":[{"name":"id","type":"int64"},{"name":"body","type":"string","nullable":true},{"name":"at","type":"timestamp"}],
 "primary_key":"id","flush":{"rows":10000,"interval_seconds":300}}`

const rowsPath = "/v1/namespaces/app/tables/messages/rows"

// setupMessages creates namespace app and the user table messages.
func setupMessages(t *testing.T, in *instance) {
	t.Helper()
	expect(t, in.call("POST", "/v1/namespaces", adminToken, `{"name":"app"}`), http.StatusCreated, "")
	expect(t, in.call("POST", "/v1/namespaces/app/tables", adminToken, messagesDef), http.StatusCreated, "")
}

func msg(id int, body string) map[string]any {
	return map[string]any{"id": id, "body": body, "at": "2026-01-02T03:04:05Z"}
}

func rowsOf(r reply) []map[string]any {
	raw, _ := r.Body["rows"].([]any)
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

// listAll pages through a listing with limit and returns the rows.
func listAll(t *testing.T, in *instance, path, token string, limit int) []map[string]any {
	t.Helper()
	var all []map[string]any
	after, hasAfter := "", false
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100000, "paging does not end")
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if hasAfter {
			q.Set("after", after)
		}
		r := expect(t, in.call("GET", path+"?"+q.Encode(), token, nil), http.StatusOK, "")
		rows := rowsOf(r)
		require.LessOrEqual(t, len(rows), limit)
		all = append(all, rows...)
		next, ok := r.Body["next"].(string)
		if !ok {
			return all
		}
		require.NotEmpty(t, rows, "a page with a next has rows")
		after, hasAfter = next, true
	}
}

func ids(rows []map[string]any) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = int(r["id"].(float64))
	}
	return out
}

func TestTableLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		in := startServer(t, b.name, options{})
		setupMessages(t, in)

		r := expect(t, in.call("GET", "/v1/namespaces/app/tables/messages", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "user", r.Body["type"])
		assert.Equal(t, "id", r.Body["primary_key"])

		var rows []map[string]any
		for i := 10; i >= 1; i-- {
			rows = append(rows, msg(i, fmt.Sprintf("message %d", i)))
		}
		r = expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": rows}), http.StatusCreated, "")
		assert.Equal(t, 10.0, r.Body["inserted"])

		// Listing: primary-key order, pages, system columns.
		got := listAll(t, in, rowsPath, aliceToken, 3)
		assert.Equal(t, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, ids(got))
		assert.Contains(t, got[0], "_seq")
		assert.Contains(t, got[0], "_updated")
		assert.NotContains(t, got[0], "_deleted")
		assert.Equal(t, "message 1", got[0]["body"])
		assert.Equal(t, "2026-01-02T03:04:05Z", got[0]["at"])

		r = expect(t, in.call("GET", rowsPath+"?limit=100", aliceToken, nil), http.StatusOK, "")
		assert.Len(t, rowsOf(r), 10)
		assert.NotContains(t, r.Body, "next", "no next on the last page")

		// Get, patch, delete.
		r = expect(t, in.call("GET", rowsPath+"/7", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "message 7", r.Body["body"])
		seq := r.Body["_seq"].(float64)
		r = expect(t, in.call("PATCH", rowsPath+"/7", aliceToken, `{"body":null}`), http.StatusOK, "")
		assert.Nil(t, r.Body["body"])
		assert.Equal(t, 7.0, r.Body["id"])
		assert.Greater(t, r.Body["_seq"].(float64), seq, "an update gets a new _seq")
		r = expect(t, in.call("GET", rowsPath+"/7", aliceToken, nil), http.StatusOK, "")
		assert.Nil(t, r.Body["body"])

		expect(t, in.call("DELETE", rowsPath+"/7", aliceToken, nil), http.StatusNoContent, "")
		expect(t, in.call("GET", rowsPath+"/7", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
		expect(t, in.call("DELETE", rowsPath+"/7", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
		expect(t, in.call("PATCH", rowsPath+"/7", aliceToken, `{"body":"x"}`), http.StatusNotFound, "ROW_NOT_FOUND")
		assert.Equal(t, []int{1, 2, 3, 4, 5, 6, 8, 9, 10}, ids(listAll(t, in, rowsPath, aliceToken, 4)), "deleted rows are excluded")

		// A deleted key can be inserted again.
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(7, "again")}}), http.StatusCreated, "")
		r = expect(t, in.call("GET", rowsPath+"/7", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "again", r.Body["body"])

		r = expect(t, in.call("GET", "/v1/namespaces/app/tables/messages", aliceToken, nil), http.StatusOK, "")
		assert.Contains(t, r.Body, "buffered_rows")
		assert.Contains(t, r.Body, "segments")

		// Drop the table: everything goes.
		expect(t, in.call("DELETE", "/v1/namespaces/app/tables/messages", adminToken, nil), http.StatusNoContent, "")
		expect(t, in.call("GET", "/v1/namespaces/app/tables/messages", aliceToken, nil), http.StatusNotFound, "TABLE_NOT_FOUND")
		expect(t, in.call("GET", rowsPath+"/1", aliceToken, nil), http.StatusNotFound, "TABLE_NOT_FOUND")
		// A new table of the same name starts empty.
		expect(t, in.call("POST", "/v1/namespaces/app/tables", adminToken, messagesDef), http.StatusCreated, "")
		assert.Empty(t, listAll(t, in, rowsPath, aliceToken, 10))
	})
}

func TestUserIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		in := startServer(t, b.name, options{})
		setupMessages(t, in)

		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(1, "alice 1"), msg(2, "alice 2")}}), http.StatusCreated, "")
		// The same primary key for another user is not a duplicate.
		expect(t, in.call("POST", rowsPath, bobToken, map[string]any{"rows": []any{msg(1, "bob 1"), msg(3, "bob 3")}}), http.StatusCreated, "")

		assert.Equal(t, []int{1, 2}, ids(listAll(t, in, rowsPath, aliceToken, 10)))
		assert.Equal(t, []int{1, 3}, ids(listAll(t, in, rowsPath, bobToken, 10)))
		assert.Empty(t, listAll(t, in, rowsPath, adminToken, 10), "admins have their own rows too, not everyone's")

		r := expect(t, in.call("GET", rowsPath+"/1", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "alice 1", r.Body["body"])
		r = expect(t, in.call("GET", rowsPath+"/1", bobToken, nil), http.StatusOK, "")
		assert.Equal(t, "bob 1", r.Body["body"])

		// Alice cannot reach Bob's row 3 in any way.
		expect(t, in.call("GET", rowsPath+"/3", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
		expect(t, in.call("PATCH", rowsPath+"/3", aliceToken, `{"body":"hacked"}`), http.StatusNotFound, "ROW_NOT_FOUND")
		expect(t, in.call("DELETE", rowsPath+"/3", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
		r = expect(t, in.call("GET", rowsPath+"/3", bobToken, nil), http.StatusOK, "")
		assert.Equal(t, "bob 3", r.Body["body"])

		// Changing one's own row 1 leaves the other user's row 1 alone.
		expect(t, in.call("PATCH", rowsPath+"/1", aliceToken, `{"body":"alice changed"}`), http.StatusOK, "")
		expect(t, in.call("DELETE", rowsPath+"/1", bobToken, nil), http.StatusNoContent, "")
		r = expect(t, in.call("GET", rowsPath+"/1", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "alice changed", r.Body["body"])
		expect(t, in.call("GET", rowsPath+"/1", bobToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")

		// Duplicate keys are per user.
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(2, "dup")}}), http.StatusConflict, "DUPLICATE_KEY")

		// Shared tables are one table for everybody.
		expect(t, in.call("POST", "/v1/namespaces/app/tables", adminToken, `{"name":"settings","type":"shared","columns":[{"name":"key","type":"string"},{"name":"value","type":"string"}],"primary_key":"key"}`), http.StatusCreated, "")
		shared := "/v1/namespaces/app/tables/settings/rows"
		expect(t, in.call("POST", shared, aliceToken, `{"rows":[{"key":"theme","value":"dark"}]}`), http.StatusCreated, "")
		r = expect(t, in.call("GET", shared+"/theme", bobToken, nil), http.StatusOK, "")
		assert.Equal(t, "dark", r.Body["value"])
		expect(t, in.call("POST", shared, bobToken, `{"rows":[{"key":"theme","value":"light"}]}`), http.StatusConflict, "DUPLICATE_KEY")
		expect(t, in.call("PATCH", shared+"/theme", bobToken, `{"value":"light"}`), http.StatusOK, "")
		r = expect(t, in.call("GET", shared+"/theme", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "light", r.Body["value"])
	})
}

func TestStreamTables(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		in := startServer(t, b.name, options{})
		expect(t, in.call("POST", "/v1/namespaces", adminToken, `{"name":"app"}`), http.StatusCreated, "")
		r := expect(t, in.call("POST", "/v1/namespaces/app/tables", adminToken,
			`{"name":"events","type":"stream","columns":[{"name":"kind","type":"string"},{"name":"payload","type":"bytes","nullable":true}],"ttl_seconds":3600,"max_buffer_rows":1000}`), http.StatusCreated, "")
		assert.Equal(t, 3600.0, r.Body["ttl_seconds"])
		path := "/v1/namespaces/app/tables/events/rows"
		expect(t, in.call("POST", path, aliceToken, `{"rows":[{"kind":"a","payload":"AAEC"},{"kind":"b"}]}`), http.StatusCreated, "")
		expect(t, in.call("POST", path, bobToken, `{"rows":[{"kind":"c"}]}`), http.StatusCreated, "")

		var kinds []string
		var seqs []float64
		for _, row := range listAllStream(t, in, path, adminToken, 2) {
			kinds = append(kinds, row["kind"].(string))
			seqs = append(seqs, row["_seq"].(float64))
		}
		assert.Equal(t, []string{"a", "b", "c"}, kinds, "every user reads every event, in _seq order")
		assert.True(t, sort.Float64sAreSorted(seqs))

		r = expect(t, in.call("GET", path+"?limit=1", bobToken, nil), http.StatusOK, "")
		require.Len(t, rowsOf(r), 1)
		assert.Equal(t, "AAEC", rowsOf(r)[0]["payload"], "bytes travel as base64")

		// Events have no primary key.
		r = in.call("GET", path+"/1", aliceToken, nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
		expect(t, in.call("POST", "/v1/namespaces/app/tables/events/flush", adminToken, nil), http.StatusBadRequest, "WRONG_TABLE_TYPE")
		expect(t, in.call("POST", "/v1/namespaces/app/tables/events/compact", adminToken, nil), http.StatusBadRequest, "WRONG_TABLE_TYPE")
	})
}

// listAllStream pages through a stream listing, whose after is a _seq.
func listAllStream(t *testing.T, in *instance, path, token string, limit int) []map[string]any {
	t.Helper()
	return listAll(t, in, path, token, limit)
}

func TestBadInputOverHTTP(t *testing.T) {
	in := startServer(t, "memory", options{})
	setupMessages(t, in)
	tables := "/v1/namespaces/app/tables"

	// 401: no token, a wrong one, a malformed header.
	expect(t, in.call("GET", "/v1/namespaces", "", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	expect(t, in.call("GET", "/v1/namespaces", "not-a-token", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	expect(t, in.call("GET", "/v1/namespaces", "", nil, "Authorization", "Basic YWRtaW46eA=="), http.StatusUnauthorized, "UNAUTHORIZED")
	expect(t, in.call("POST", rowsPath, "", map[string]any{"rows": []any{msg(1, "x")}}), http.StatusUnauthorized, "UNAUTHORIZED")

	// 403: DDL and flush are for admins.
	expect(t, in.call("POST", "/v1/namespaces", aliceToken, `{"name":"mine"}`), http.StatusForbidden, "FORBIDDEN")
	expect(t, in.call("POST", tables, aliceToken, messagesDef), http.StatusForbidden, "FORBIDDEN")
	expect(t, in.call("DELETE", tables+"/messages", bobToken, nil), http.StatusForbidden, "FORBIDDEN")
	expect(t, in.call("POST", tables+"/messages/flush", aliceToken, nil), http.StatusForbidden, "FORBIDDEN")
	expect(t, in.call("POST", tables+"/messages/compact", aliceToken, nil), http.StatusForbidden, "FORBIDDEN")

	// 404s.
	expect(t, in.call("GET", "/v1/namespaces/nope/tables", aliceToken, nil), http.StatusNotFound, "NAMESPACE_NOT_FOUND")
	expect(t, in.call("GET", "/v1/namespaces/app/tables/nope/rows", aliceToken, nil), http.StatusNotFound, "TABLE_NOT_FOUND")
	expect(t, in.call("POST", "/v1/namespaces/app/tables/nope/rows", aliceToken, `{"rows":[]}`), http.StatusNotFound, "TABLE_NOT_FOUND")
	expect(t, in.call("GET", rowsPath+"/12345", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
	expect(t, in.call("GET", "/v1/nothing", aliceToken, nil), http.StatusNotFound, "NOT_FOUND")

	// 409s.
	expect(t, in.call("POST", "/v1/namespaces", adminToken, `{"name":"app"}`), http.StatusConflict, "NAMESPACE_EXISTS")
	expect(t, in.call("POST", tables, adminToken, messagesDef), http.StatusConflict, "TABLE_EXISTS")
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(1, "x")}}), http.StatusCreated, "")
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(1, "x")}}), http.StatusConflict, "DUPLICATE_KEY")
	// All or none: the new row 2 is not written when row 1 is a duplicate.
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(2, "new"), msg(1, "dup")}}), http.StatusConflict, "DUPLICATE_KEY")
	expect(t, in.call("GET", rowsPath+"/2", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
	// A key twice in one request is a duplicate too.
	expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(3, "a"), msg(3, "b")}}), http.StatusConflict, "DUPLICATE_KEY")
	expect(t, in.call("GET", rowsPath+"/3", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")

	// 413 and 415.
	big := fmt.Sprintf(`{"rows":[{"id":9,"body":%q,"at":"2026-01-02T03:04:05Z"}]}`, strings.Repeat("x", 2<<20))
	expect(t, in.call("POST", rowsPath, aliceToken, big), http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	expect(t, in.call("POST", rowsPath, aliceToken, `{"rows":[]}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
	expect(t, in.call("POST", rowsPath, aliceToken, `{"rows":[]}`, "Content-Type", ""), http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")

	// 400s, each naming what is wrong.
	for _, c := range []struct {
		method, path, body, code, want string
	}{
		{"POST", rowsPath, `{"rows":[{"id":"one","at":"2026-01-02T03:04:05Z"}]}`, "INVALID_ROW", `"id"`},
		{"POST", rowsPath, `{"rows":[{"id":1}]}`, "INVALID_ROW", `"at"`},
		{"POST", rowsPath, `{"rows":[{"id":5,"at":"yesterday"}]}`, "INVALID_ROW", `"at"`},
		{"POST", rowsPath, `{"rows":[{"id":5,"at":"2026-01-02T03:04:05Z","colour":"red"}]}`, "INVALID_ROW", `"colour"`},
		{"POST", rowsPath, `{"rows":[{"id":5,"at":"2026-01-02T03:04:05Z","_seq":1}]}`, "INVALID_ROW", `"_seq"`},
		{"POST", rowsPath, `{"rows":[{"id":1.5,"at":"2026-01-02T03:04:05Z"}]}`, "INVALID_ROW", `"id"`},
		{"POST", rowsPath, `{"rows":[{"id":99999999999999999999,"at":"2026-01-02T03:04:05Z"}]}`, "INVALID_ROW", `"id"`},
		{"POST", rowsPath, `{"rows":"all"}`, "BAD_REQUEST", `"rows"`},
		{"POST", rowsPath, `{"rows":[5]}`, "BAD_REQUEST", `"rows"`},
		{"POST", rowsPath, `{}`, "BAD_REQUEST", `"rows"`},
		{"POST", rowsPath, `{"rows":[]}`, "BAD_REQUEST", `"rows"`},
		{"POST", rowsPath, `{"rows":[{"id":1,`, "INVALID_JSON", "JSON"},
		{"POST", rowsPath, `not json`, "INVALID_JSON", "JSON"},
		{"PATCH", rowsPath + "/1", `{"id":2}`, "INVALID_ROW", `"id"`},
		{"PATCH", rowsPath + "/1", `{"body":5}`, "INVALID_ROW", `"body"`},
		{"PATCH", rowsPath + "/1", `{}`, "INVALID_ROW", "sets no column"},
		{"GET", rowsPath + "/abc", "", "BAD_REQUEST", "primary key"},
		{"GET", rowsPath + "?limit=-1", "", "BAD_REQUEST", `"limit"`},
		{"GET", rowsPath + "?limit=ten", "", "BAD_REQUEST", `"limit"`},
		{"GET", rowsPath + "?after=xyz", "", "BAD_REQUEST", `"after"`},
		{"GET", rowsPath + "?colour=red", "", "BAD_REQUEST", `"colour"`},
		{"POST", tables, `{"name":"t2","type":"user","columns":[{"name":"id","type":"uuid"}],"primary_key":"id"}`, "BAD_REQUEST", `"columns[0].type"`},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		token := aliceToken
		if c.path == tables {
			token = adminToken
		}
		r := expect(t, in.call(c.method, c.path, token, body), http.StatusBadRequest, c.code)
		assert.Contains(t, r.ErrorMessage(), c.want, "%s %s %s", c.method, c.path, c.body)
	}
	// Nothing above was half-applied.
	assert.Equal(t, []int{1}, ids(listAll(t, in, rowsPath, aliceToken, 10)))

	// None of it was a 500, and the log never holds a token.
	r := in.call("GET", "/metrics", "", nil)
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if strings.HasPrefix(line, "kalamdb_http_requests_total{") && strings.Contains(line, `status="5`) {
			assert.True(t, strings.HasSuffix(line, " 0"), "a server error was answered: %s", line)
		}
	}
	logs := in.logs.String()
	for _, tok := range []string{adminToken, aliceToken, bobToken} {
		assert.NotContains(t, logs, tok)
	}
}

// TestFlushThenReadBack flushes a table to Parquet and reads every row
// back, merged with rows written after the flush.
func TestFlushThenReadBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		in := startServer(t, b.name, options{})
		setupMessages(t, in)
		var rows []any
		for i := 1; i <= 30; i++ {
			rows = append(rows, msg(i, fmt.Sprintf("before flush %d", i)))
		}
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": rows}), http.StatusCreated, "")
		expect(t, in.call("POST", rowsPath, bobToken, map[string]any{"rows": []any{msg(1, "bob")}}), http.StatusCreated, "")

		r := expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
		assert.Equal(t, 31.0, r.Body["rows_flushed"])
		assert.NotEmpty(t, r.Body["files"])

		// After the flush: update a flushed row, delete one, add one.
		expect(t, in.call("PATCH", rowsPath+"/5", aliceToken, `{"body":"changed after flush"}`), http.StatusOK, "")
		expect(t, in.call("DELETE", rowsPath+"/6", aliceToken, nil), http.StatusNoContent, "")
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(31, "after flush")}}), http.StatusCreated, "")
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(7, "dup")}}), http.StatusConflict, "DUPLICATE_KEY")

		got := listAll(t, in, rowsPath, aliceToken, 8)
		want := []int{}
		for i := 1; i <= 31; i++ {
			if i != 6 {
				want = append(want, i)
			}
		}
		assert.Equal(t, want, ids(got))
		r = expect(t, in.call("GET", rowsPath+"/5", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "changed after flush", r.Body["body"])
		r = expect(t, in.call("GET", rowsPath+"/12", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "before flush 12", r.Body["body"])
		expect(t, in.call("GET", rowsPath+"/6", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
		assert.Equal(t, []int{1}, ids(listAll(t, in, rowsPath, bobToken, 8)), "isolation holds in flushed files too")

		r = expect(t, in.call("GET", "/v1/namespaces/app/tables/messages", aliceToken, nil), http.StatusOK, "")
		assert.GreaterOrEqual(t, r.Body["segments"], 1.0, "alice's own segments")

		// A second flush, then a major compaction: alice's two segments
		// become one without the old version of 5, nor row 6 and its
		// tombstone; every read is the same.
		expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
		r = expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/compact", adminToken, nil), http.StatusOK, "")
		assert.Equal(t, 2.0, r.Body["segments_merged"], "alice's two segments; bob has one without tombstones")
		assert.Equal(t, 1.0, r.Body["segments_written"])
		assert.Equal(t, 30.0, r.Body["rows"])
		assert.Equal(t, 3.0, r.Body["versions_dropped"], "row 5's first version, row 6 and its tombstone")
		assert.Equal(t, want, ids(listAll(t, in, rowsPath, aliceToken, 8)), "the same rows after the compaction")
		r = expect(t, in.call("GET", rowsPath+"/5", aliceToken, nil), http.StatusOK, "")
		assert.Equal(t, "changed after flush", r.Body["body"])
		expect(t, in.call("GET", rowsPath+"/6", aliceToken, nil), http.StatusNotFound, "ROW_NOT_FOUND")
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(12, "dup")}}), http.StatusConflict, "DUPLICATE_KEY")
		assert.Equal(t, []int{1}, ids(listAll(t, in, rowsPath, bobToken, 8)))

		if b.durable {
			in.stop()
			in.start()
			assert.Equal(t, want, ids(listAll(t, in, rowsPath, aliceToken, 8)), "flushed rows survive a restart")
		}
	})
}

// TestAddColumnOverHTTPAcrossTiers adds a column to a table whose rows are
// partly in Parquet segments, through the real binary on every backend:
// flushed and buffered rows list it as null, new rows and updates carry it
// through a flush and a compaction, and (durable backends) a restart.
func TestAddColumnOverHTTPAcrossTiers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		in := startServer(t, b.name, options{})
		setupMessages(t, in)
		var rows []any
		for i := 1; i <= 10; i++ {
			rows = append(rows, msg(i, fmt.Sprintf("m%d", i)))
		}
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": rows}), http.StatusCreated, "")
		expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{msg(11, "buffered")}}), http.StatusCreated, "")

		r := expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/columns", adminToken, `{"name":"read","type":"bool","nullable":true}`), http.StatusOK, "")
		assert.Len(t, r.Body["columns"], 4)
		withRead := msg(12, "new")
		withRead["read"] = true
		expect(t, in.call("POST", rowsPath, aliceToken, map[string]any{"rows": []any{withRead}}), http.StatusCreated, "")
		expect(t, in.call("PATCH", rowsPath+"/3", aliceToken, `{"read":false}`), http.StatusOK, "")

		check := func(what string) {
			t.Helper()
			got := listAll(t, in, rowsPath, aliceToken, 5)
			require.Len(t, got, 12, what)
			for _, row := range got {
				id := int(row["id"].(float64))
				switch id {
				case 3:
					assert.Equal(t, false, row["read"], "%s: row %d", what, id)
				case 12:
					assert.Equal(t, true, row["read"], "%s: row %d", what, id)
				default:
					assert.Nil(t, row["read"], "%s: row %d was written before the column", what, id)
				}
			}
		}
		check("after the change")
		expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/flush", adminToken, nil), http.StatusOK, "")
		check("after a flush")
		expect(t, in.call("POST", "/v1/namespaces/app/tables/messages/compact", adminToken, nil), http.StatusOK, "")
		check("after a compaction")
		if b.durable {
			in.stop()
			in.start()
			check("after a restart")
		}
	})
}
