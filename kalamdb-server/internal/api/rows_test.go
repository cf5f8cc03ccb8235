package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// newRowsFixture is newFixture with the table layer, so that the row
// routes exist.
func newRowsFixture(t testing.TB, mods ...func(*Options)) *fixture {
	t.Helper()
	backend := memory.New()
	db, err := tables.Open(context.Background(), backend, tables.Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = db.Close()
		_ = backend.Close()
	})
	f := newFixture(t, func(o *Options) {
		o.DB = db
		o.MaxPageRows = 50
		o.EvictionInterval = time.Hour
		for _, m := range mods {
			m(o)
		}
	})
	require.Equal(t, http.StatusCreated, f.json(t, "POST", "/v1/namespaces", adminToken, `{"name":"app"}`).status)
	return f
}

func (f *fixture) createTable(t testing.TB, def string) {
	t.Helper()
	r := f.json(t, "POST", "/v1/namespaces/app/tables", adminToken, def)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
}

// pageAll lists every row of path through pages of limit rows.
func (f *fixture) pageAll(t *testing.T, path, token string, limit int) []map[string]any {
	t.Helper()
	var out []map[string]any
	after, hasAfter := "", false
	for i := 0; i < 1000; i++ {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if hasAfter {
			q.Set("after", after)
		}
		r := f.do(t, "GET", path+"?"+q.Encode(), token, "", nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		body := r.decode(t)
		for _, x := range body["rows"].([]any) {
			out = append(out, x.(map[string]any))
		}
		next, ok := body["next"].(string)
		if !ok {
			return out
		}
		after, hasAfter = next, true
	}
	t.Fatal("paging never ended")
	return nil
}

// Every primary-key type pages in key order and its rows are reachable by
// the key's text form in the URL, odd characters included.
func TestKeysOfEveryTypeRoundTripThroughURLs(t *testing.T) {
	f := newRowsFixture(t)
	cases := []struct {
		typ  string
		keys []any    // JSON values, inserted in this order
		text []string // their text form in URLs, in key order
	}{
		{"int32", []any{5, -3, 2147483647}, []string{"-3", "5", "2147483647"}},
		{"int64", []any{-9007199254740991, 0, 42}, []string{"-9007199254740991", "0", "42"}},
		{"string", []any{"b/c", "a b", "ü?&#%", " "}, []string{" ", "a b", "b/c", "ü?&#%"}},
		{"bytes", []any{"/w==", "AAE=", "AA=="}, []string{"AA==", "AAE=", "/w=="}},
		{"timestamp", []any{"2026-01-02T03:04:05.123456Z", "1999-12-31T23:59:59Z"}, []string{"1999-12-31T23:59:59Z", "2026-01-02T03:04:05.123456Z"}},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			name := "k_" + c.typ
			f.createTable(t, fmt.Sprintf(`{"name":%q,"type":"user","columns":[{"name":"k","type":%q},{"name":"n","type":"int32"}],"primary_key":"k"}`, name, c.typ))
			path := "/v1/namespaces/app/tables/" + name + "/rows"
			var rows []map[string]any
			for i, k := range c.keys {
				rows = append(rows, map[string]any{"k": k, "n": i})
			}
			r := f.json(t, "POST", path, userToken, map[string]any{"rows": rows})
			require.Equal(t, http.StatusCreated, r.status, string(r.body))
			got := f.pageAll(t, path, userToken, 1)
			require.Len(t, got, len(c.text))
			for i, want := range c.text {
				assert.Equal(t, want, formatJSONKey(got[i]["k"]), "row %d in key order", i)
				one := f.do(t, "GET", path+"/"+url.PathEscape(want), userToken, "", nil)
				require.Equal(t, http.StatusOK, one.status, "GET %s: %s", want, one.body)
				assert.Equal(t, got[i]["n"], one.decode(t)["n"])
			}
		})
	}
}

// formatJSONKey renders a decoded JSON key as the text the API uses.
func formatJSONKey(v any) string {
	switch x := v.(type) {
	case float64:
		return fmt.Sprintf("%.0f", x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

func TestParseAndFormatKeyAreInverse(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for _, v := range []row.Value{
		row.Int32(-7), row.Int64(1 << 60), row.String("x/y z"), row.Bytes([]byte{0, 0xff, 7}), row.Timestamp(ts),
	} {
		tbl := &catalog.Table{Namespace: "n", Name: "t", Type: catalog.UserTable, PrimaryKey: "k",
			Columns: []catalog.Column{{Name: "k", Type: v.Type()}}}
		b := memory.New()
		cat, err := catalog.Open(context.Background(), b, catalog.Options{})
		require.NoError(t, err)
		_, err = cat.CreateNamespace(context.Background(), "n")
		require.NoError(t, err)
		created, err := cat.CreateTable(context.Background(), *tbl)
		require.NoError(t, err)
		got, err := parseKey(created, formatKey(v), "key")
		require.NoError(t, err)
		assert.True(t, v.Equal(got), "%v -> %q -> %v", v, formatKey(v), got)
		require.NoError(t, b.Close())
	}
}

// A bytes key is found under each base64 spelling a client library gives it,
// and only under a canonical one; a timestamp key is RFC 3339 text.
func TestKeySpellingsInURLs(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"b","type":"user","columns":[{"name":"k","type":"bytes"},{"name":"n","type":"int32"}],"primary_key":"k"}`)
	f.createTable(t, `{"name":"ts","type":"user","columns":[{"name":"k","type":"timestamp"},{"name":"n","type":"int32"}],"primary_key":"k"}`)
	r := f.json(t, "POST", "/v1/namespaces/app/tables/b/rows", userToken, `{"rows":[{"k":"/+8=","n":1}]}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = f.json(t, "POST", "/v1/namespaces/app/tables/ts/rows", userToken, `{"rows":[{"k":"2026-01-02T03:04:05.5Z","n":2}]}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	for _, spelling := range []string{"/+8=", "/+8", "_-8=", "_-8"} {
		r := f.do(t, "GET", "/v1/namespaces/app/tables/b/rows/"+url.PathEscape(spelling), userToken, "", nil)
		assert.Equal(t, http.StatusOK, r.status, "%s: %s", spelling, r.body)
	}
	for _, spelling := range []string{"_-9=", "_-9", "/+8==", "/+8=x", "_+8="} {
		r := f.do(t, "GET", "/v1/namespaces/app/tables/b/rows/"+url.PathEscape(spelling), userToken, "", nil)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", spelling, r.body)
		_, msg := r.errorBody(t)
		assert.Contains(t, msg, "base64, standard or URL-safe, padded or not", spelling)
	}
	for spelling, status := range map[string]int{
		"2026-01-02T03:04:05.5Z":      http.StatusOK,
		"2026-01-02T04:04:05.5+01:00": http.StatusOK,
		"1767323045500000":            http.StatusBadRequest, // a number does not say its unit
		"yesterday":                   http.StatusBadRequest,
	} {
		r := f.do(t, "GET", "/v1/namespaces/app/tables/ts/rows/"+url.PathEscape(spelling), userToken, "", nil)
		assert.Equal(t, status, r.status, "%s: %s", spelling, r.body)
	}
}

// Of many concurrent inserts of one key, exactly one succeeds; the others
// are 409s, never 500s.
func TestConcurrentInsertsOfOneKey(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"},{"name":"w","type":"int32"}],"primary_key":"id"}`)
	const n = 16
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := f.json(t, "POST", "/v1/namespaces/app/tables/m/rows", userToken, fmt.Sprintf(`{"rows":[{"id":1,"w":%d}]}`, i))
			statuses[i] = r.status
		}(i)
	}
	wg.Wait()
	sort.Ints(statuses)
	assert.Equal(t, http.StatusCreated, statuses[0])
	for _, s := range statuses[1:] {
		assert.Equal(t, http.StatusConflict, s)
	}
}

func TestListQueryValidation(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"m","type":"user","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`)
	path := "/v1/namespaces/app/tables/m/rows"
	for q, msg := range map[string]string{
		"?limit=0":         `"limit" must be an integer from 1 to 50`,
		"?limit=51":        `"limit" must be an integer from 1 to 50`,
		"?limit=x":         `"limit"`,
		"?after=x":         `query parameter "after" "x" is not a valid int64`,
		"?sort=desc":       `query parameter "sort" is not known`,
		"?limit=5&foo=1":   `"foo"`,
		"?limit=2&limit=3": `query parameter "limit" is given 2 times; give it once`,
		"?after=1&after=2": `query parameter "after" is given 2 times`,
	} {
		r := f.do(t, "GET", path+q, userToken, "", nil)
		assert.Equal(t, http.StatusBadRequest, r.status, q)
		_, m := r.errorBody(t)
		assert.Contains(t, m, msg, q)
	}
	r := f.do(t, "GET", path, userToken, "", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"rows":[]}`, string(r.body), "an empty table lists as an empty array, without next")
}

func TestRowErrorsNameRowAndColumn(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"m","type":"user","columns":[{"name":"id","type":"int64"},{"name":"n","type":"int32","nullable":true}],"primary_key":"id"}`)
	path := "/v1/namespaces/app/tables/m/rows"
	r := f.json(t, "POST", path, userToken, `{"rows":[{"id":1},{"id":2,"n":"many"}]}`)
	assert.Equal(t, http.StatusBadRequest, r.status)
	code, msg := r.errorBody(t)
	assert.Equal(t, CodeInvalidRow, code)
	assert.Contains(t, msg, "rows[1]")
	assert.Contains(t, msg, `column "n"`)

	r = f.json(t, "POST", path, userToken, `{"rows":[{"id":1},null]}`)
	assert.Equal(t, http.StatusBadRequest, r.status)
	_, msg = r.errorBody(t)
	assert.Contains(t, msg, `"rows[1]" must be an object`)

	r = f.json(t, "POST", path, userToken, `{"rows":[{"id":3000000000,"n":3000000000}]}`)
	assert.Equal(t, http.StatusBadRequest, r.status, "int32 overflow is refused")
	assert.Empty(t, f.pageAll(t, path, userToken, 10), "nothing was written")
}

// Without a cold tier (no Flush and Compact options), flushing and
// compacting answer 501 with a message saying why.
func TestFlushAndCompactWithoutColdTier(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`)
	for _, op := range []string{"flush", "compact"} {
		r := f.do(t, "POST", "/v1/namespaces/app/tables/m/"+op, adminToken, "", nil)
		assert.Equal(t, http.StatusNotImplemented, r.status, op)
		assert.Contains(t, string(r.body), "NOT_IMPLEMENTED", op)
		r = f.do(t, "POST", "/v1/namespaces/app/tables/m/"+op, userToken, "", nil)
		assert.Equal(t, http.StatusForbidden, r.status, op)
	}
}

// POST …/columns adds a nullable column: rows written before list it as
// null, new rows may carry it; bad requests name the problem, and only
// admins may do it.
func TestAddColumnOverHTTP(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"},{"name":"v","type":"string"}],"primary_key":"id"}`)
	path := "/v1/namespaces/app/tables/m"
	require.Equal(t, http.StatusCreated, f.json(t, "POST", path+"/rows", adminToken, `{"rows":[{"id":1,"v":"a"}]}`).status)

	r := f.json(t, "POST", path+"/columns", adminToken, `{"name":"note","type":"string","nullable":true}`)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Contains(t, string(r.body), `{"name":"note","type":"string","nullable":true}`)
	require.Equal(t, http.StatusCreated, f.json(t, "POST", path+"/rows", adminToken, `{"rows":[{"id":2,"v":"b","note":"hello"}]}`).status)
	rows := f.pageAll(t, path+"/rows", adminToken, 10)
	require.Len(t, rows, 2)
	assert.Nil(t, rows[0]["note"])
	assert.Equal(t, "hello", rows[1]["note"])

	for body, want := range map[string]string{
		`{"name":"x","type":"string"}`:                   `must be true`,
		`{"name":"x","type":"text","nullable":true}`:     `the types are`,
		`{"type":"string","nullable":true}`:              `is required`,
		`{"name":"note","type":"int64","nullable":true}`: `defined twice`,
	} {
		r := f.json(t, "POST", path+"/columns", adminToken, body)
		assert.Equal(t, http.StatusBadRequest, r.status, body)
		assert.Contains(t, string(r.body), want, body)
	}
	assert.Equal(t, http.StatusForbidden, f.json(t, "POST", path+"/columns", userToken, `{"name":"y","type":"string","nullable":true}`).status)
	assert.Equal(t, http.StatusNotFound, f.json(t, "POST", "/v1/namespaces/app/tables/nope/columns", adminToken, `{"name":"y","type":"string","nullable":true}`).status)
}

// Inputs that used to be stored changed, or stored unreachable, are refused
// with a 400 that names the column or the place.
func TestInputsAreRefusedNotChanged(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"m","type":"user","columns":[{"name":"k","type":"string"},{"name":"at","type":"timestamp","nullable":true},{"name":"x","type":"float64","nullable":true}],"primary_key":"k"}`)
	path := "/v1/namespaces/app/tables/m/rows"
	for body, want := range map[string]string{
		`{"rows":[{"k":""}]}`:                               `column "k": is the primary key and the value is empty`,
		`{"rows":[{"k":"a","at":1767323045}]}`:              `column "at": must be an RFC 3339 timestamp string such as "2026-01-02T03:04:05Z", got the number 1767323045: a number does not say its unit`,
		`{"rows":[{"k":"a","at":"yesterday"}]}`:             `column "at": must be an RFC 3339 timestamp string such as "2026-01-02T03:04:05Z", got the string "yesterday"`,
		`{"rows":[{"k":"a","at":"10000-01-01T00:00:00Z"}]}`: `column "at"`,
		`{"rows":[{"k":"a","x":1e-400}]}`:                   `column "x": must be a number, got the number 1e-400: it is too small for a float64`,
		`{"rows":[{"k":"a","k":"b"}]}`:                      `field "rows[0]" has the field "k" twice`,
		`{"Rows":[{"k":"a"}]}`:                              `did you mean "rows"?`,
		"{\"rows\":[{\"k\":\"caf\xe9\"}]}":                  `request body is not valid UTF-8 at byte 18`,
	} {
		r := f.json(t, "POST", path, userToken, body)
		require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", body, r.body)
		_, msg := r.errorBody(t)
		assert.Contains(t, msg, want, body)
		assert.NotContains(t, msg, "json.Number", body)
	}
	page := f.do(t, "GET", path, userToken, "", nil)
	assert.JSONEq(t, `{"rows":[]}`, string(page.body), "nothing was stored")

	r := f.json(t, "POST", path, userToken, `{"rows":[{"k":"a","at":"2026-01-02T03:04:05.123456789+01:00"}]}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = f.do(t, "GET", path+"/a", userToken, "", nil)
	assert.Equal(t, "2026-01-02T02:04:05.123456Z", r.decode(t)["at"], "stored in UTC, to the microsecond")
	assert.Equal(t, http.StatusNotFound, f.do(t, "DELETE", path+"/b", userToken, "", nil).status, "deleting a missing row is 404")
}

// A stream holds at most max_buffer_rows events and max_buffer_bytes bytes
// as soon as an append returns, not only after the next eviction round; an
// append that alone exceeds a bound is refused.
func TestStreamBoundsHoldOnAppend(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"ev","type":"stream","columns":[{"name":"x","type":"string","nullable":true}],"max_buffer_rows":100}`)
	f.createTable(t, `{"name":"big","type":"stream","columns":[{"name":"x","type":"string","nullable":true}],"max_buffer_bytes":1000}`)
	r := f.do(t, "GET", "/v1/namespaces/app/tables/big", userToken, "", nil)
	assert.Contains(t, string(r.body), `"max_buffer_rows":1000,"max_buffer_bytes":1000`)
	path := "/v1/namespaces/app/tables/ev/rows"
	many := func(n int, x string) string {
		rows := make([]string, n)
		for i := range rows {
			rows[i] = `{"x":"` + x + `"}`
		}
		return `{"rows":[` + strings.Join(rows, ",") + `]}`
	}
	r = f.json(t, "POST", path, userToken, many(101, ""))
	require.Equal(t, http.StatusBadRequest, r.status)
	_, msg := r.errorBody(t)
	assert.Contains(t, msg, "append of 101 events to app.ev exceeds its maximum buffer of 100 events")
	for range 3 {
		require.Equal(t, http.StatusCreated, f.json(t, "POST", path, userToken, many(40, "")).status)
		got := f.pageAll(t, path, userToken, 50)
		assert.LessOrEqual(t, len(got), 100)
	}
	path = "/v1/namespaces/app/tables/big/rows"
	for range 5 {
		require.Equal(t, http.StatusCreated, f.json(t, "POST", path, userToken, many(3, strings.Repeat("b", 90))).status)
	}
	got := f.pageAll(t, path, userToken, 50)
	assert.LessOrEqual(t, len(got), 9, "the byte bound holds too: about 110 bytes an event")
	r = f.json(t, "POST", path, userToken, many(9, strings.Repeat("z", 90)))
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	_, msg = r.errorBody(t)
	assert.Contains(t, msg, "exceeds its maximum buffer of 1000 bytes")
}

// A listing of large rows is cut by server.max_page_bytes as well as by
// limit: each page ends once its rows take the bound (one larger row comes
// alone), next is set, and paging returns every row once; streams too.
func TestListingsAreBoundedInBytes(t *testing.T) {
	f := newRowsFixture(t, func(o *Options) { o.MaxPageBytes = 300; o.MaxBodyBytes = 16384 })
	f.createTable(t, `{"name":"m","type":"user","columns":[{"name":"id","type":"int64"},{"name":"body","type":"string"}],"primary_key":"id"}`)
	f.createTable(t, `{"name":"ev","type":"stream","columns":[{"name":"body","type":"string"}]}`)
	for _, path := range []string{"/v1/namespaces/app/tables/m/rows", "/v1/namespaces/app/tables/ev/rows"} {
		var rows []map[string]any
		for i := range 12 {
			body := strings.Repeat("<", 100)
			if i == 5 {
				body = strings.Repeat("&", 1000)
			}
			if strings.HasSuffix(path, "m/rows") {
				rows = append(rows, map[string]any{"id": i, "body": body})
			} else {
				rows = append(rows, map[string]any{"body": body})
			}
		}
		r := f.json(t, "POST", path, userToken, map[string]any{"rows": rows})
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		r = f.do(t, "GET", path+"?limit=50", userToken, "", nil)
		require.Equal(t, http.StatusOK, r.status)
		page := r.decode(t)
		assert.Len(t, page["rows"], 3, "%s: three rows of about 110 bytes reach 300", path)
		assert.Contains(t, page, "next")
		assert.Less(t, len(r.body), 1000, "'<' is not escaped to six bytes")
		all := f.pageAll(t, path, userToken, 50)
		assert.Len(t, all, 12, path)
	}
}

// readHook is a request body that runs hook before its first read: inside
// the handler, after the handler looked the table up.
type readHook struct {
	r    io.Reader
	hook func()
}

func (b *readHook) Read(p []byte) (int, error) {
	if h := b.hook; h != nil {
		b.hook = nil
		h()
	}
	return b.r.Read(p)
}

// A request never mixes two tables of one name: an insert whose table is
// dropped and re-created under the same name (its columns in another
// order) while the handler reads the body finds its table gone, applies
// nothing to it, and runs once more on the new table, where its columns
// are matched by name.
func TestARequestNeverMixesARecreatedTable(t *testing.T) {
	f := newRowsFixture(t)
	const def = `{"name":"t","type":"user","columns":[{"name":"id","type":"int64"},{"name":%q,"type":"string"},{"name":%q,"type":"string"}],"primary_key":"id"}`
	f.createTable(t, fmt.Sprintf(def, "a", "b"))
	path := "/v1/namespaces/app/tables/t/rows"
	const row = `{"rows":[{"id":1,"a":"for a","b":"for b"}]}`
	body := &readHook{r: strings.NewReader(row), hook: func() {
		require.Equal(t, http.StatusNoContent, f.do(t, "DELETE", "/v1/namespaces/app/tables/t", adminToken, "", nil).status)
		f.createTable(t, fmt.Sprintf(def, "b", "a"))
	}}
	r := f.do(t, "POST", path, userToken, "application/json", body)
	require.Nil(t, body.hook, "the handler read the body")
	require.Equal(t, http.StatusCreated, r.status, "run once more on the new table: %s", r.body)
	assert.Len(t, f.pageAll(t, path, userToken, 10), 1, "the row reached the new table once")
	r = f.json(t, "POST", path, userToken, row)
	require.Equal(t, http.StatusConflict, r.status, string(r.body))

	got := f.do(t, "GET", path+"/1", userToken, "", nil)
	require.Equal(t, http.StatusOK, got.status, string(got.body))
	m := got.decode(t)
	assert.Equal(t, "for a", m["a"])
	assert.Equal(t, "for b", m["b"])
	assert.True(t, strings.Index(string(got.body), `"b"`) < strings.Index(string(got.body), `"a"`), "the new table's column order: %s", got.body)
}

// The routes of a row by primary key refuse a stream table with a hint.
func TestRowRoutesRefuseAStreamTable(t *testing.T) {
	f := newRowsFixture(t)
	f.createTable(t, `{"name":"ev","type":"stream","columns":[{"name":"n","type":"int64"}]}`)
	for _, method := range []string{"GET", "PATCH", "DELETE"} {
		r := f.json(t, method, "/v1/namespaces/app/tables/ev/rows/1", userToken, `{"n":2}`)
		require.Equal(t, http.StatusBadRequest, r.status, method)
		code, msg := r.errorBody(t)
		assert.Equal(t, CodeWrongTableType, code, method)
		assert.Equal(t, "wrong table type: app.ev is a stream table: its events have no primary key; read them with GET …/rows?after=<_seq>", msg, method)
	}
}
