package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fuzzAPI is an API with a user table of every column type.
// It lives as long as tb.
func fuzzAPI(tb testing.TB) *API {
	f := newRowsFixture(tb)
	f.createTable(tb, `{"name":"all","type":"user","primary_key":"k","columns":[
		{"name":"k","type":"string"},{"name":"i32","type":"int32","nullable":true},{"name":"i64","type":"int64","nullable":true},
		{"name":"f","type":"float64","nullable":true},{"name":"b","type":"bool","nullable":true},{"name":"by","type":"bytes","nullable":true},
		{"name":"ts","type":"timestamp","nullable":true}]}`)
	f.createTable(tb, `{"name":"ev","type":"stream","columns":[{"name":"x","type":"int64"}]}`)
	return f.api
}

// checkAnswer fails on a 5xx or an error without the envelope.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, what string) {
	if rec.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body.String())
	}
	if rec.Code >= 400 {
		var env envelope
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
			t.Fatalf("%s: status %d without the error envelope: %s", what, rec.Code, rec.Body.String())
		}
	}
}

// No request body makes the row routes answer 5xx.
func FuzzRowBodies(f *testing.F) {
	for _, s := range []string{
		`{"rows":[{"k":"a","i32":1,"i64":2,"f":1.5,"b":true,"by":"AAE=","ts":"2026-01-02T03:04:05Z"}]}`,
		`{"rows":[{"k":"a","i32":99999999999}]}`, `{"rows":[{"k":"b","f":1e400}]}`, `{"rows":[{"k":"c","ts":"0000-01-01T00:00:00Z"}]}`,
		`{"rows":[{"k":"d","ts":-9223372036854775808}]}`, `{"rows":[{"k":"` + strings.Repeat("x", 5000) + `"}]}`,
		`{"rows":[{"k":null}]}`, `{"rows":[{}]}`, `{"rows":[[]]}`, `[`, `{"rows":[{"k":"e","by":"***"}]}`, `{"i32":5}`, `{"k":"z"}`, `null`,
	} {
		f.Add(s)
	}
	a := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, target := range []struct{ method, path string }{
			{"POST", "/v1/namespaces/app/tables/all/rows"},
			{"PATCH", "/v1/namespaces/app/tables/all/rows/a"},
			{"POST", "/v1/namespaces/app/tables/ev/rows"},
		} {
			req := httptest.NewRequest(target.method, target.path, bytes.NewReader([]byte(body)))
			req.Header.Set("Authorization", "Bearer "+userToken)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			checkAnswer(t, rec, target.method+" "+target.path)
		}
	})
}

// No primary key or paging parameter in a URL makes the API answer 5xx.
func FuzzRowURLs(f *testing.F) {
	for _, s := range []string{"a", "", "%ff", strings.Repeat("k", 5000), "-1", "9223372036854775808", "2026-01-02T03:04:05Z", "AAE="} {
		f.Add(s)
	}
	a := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, s string) {
		esc := url.PathEscape(s)
		q := url.Values{"after": {s}, "limit": {s}}.Encode()
		for _, target := range []struct{ method, path string }{
			{"GET", "/v1/namespaces/app/tables/all/rows/" + esc},
			{"DELETE", "/v1/namespaces/app/tables/all/rows/" + esc},
			{"GET", "/v1/namespaces/app/tables/all/rows?" + url.Values{"after": {s}}.Encode()},
			{"GET", "/v1/namespaces/app/tables/ev/rows?" + q},
			{"GET", "/v1/namespaces/" + esc + "/tables/" + esc},
		} {
			req, err := http.NewRequest(target.method, "http://x"+target.path, nil)
			if err != nil {
				return // not a URL a client could send
			}
			req.Header.Set("Authorization", "Bearer "+userToken)
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			checkAnswer(t, rec, target.method+" "+target.path)
		}
	})
}
