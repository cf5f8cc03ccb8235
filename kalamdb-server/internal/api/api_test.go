package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/metrics"
)

const (
	adminToken = "admin-secret-token"
	userToken  = "user-secret-token"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	api  *API
	logs *syncBuffer
	m    *metrics.Metrics
	cat  *catalog.Catalog
}

func newFixture(t testing.TB, mod func(*Options)) *fixture {
	t.Helper()
	authn, err := auth.New([]config.User{
		{ID: "root", Role: config.RoleAdmin, Token: adminToken},
		{ID: "alice", Role: config.RoleUser, Token: userToken},
	})
	require.NoError(t, err)
	logs := &syncBuffer{}
	m := metrics.New()
	backend := memory.New()
	t.Cleanup(func() { _ = backend.Close() })
	cat, err := catalog.Open(context.Background(), backend, catalog.Options{})
	require.NoError(t, err)
	opts := Options{
		Catalog:      cat,
		Defaults:     Defaults{FlushRows: 500, FlushInterval: time.Minute, StreamTTL: time.Hour, StreamMaxRows: 1000},
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth:         authn,
		Metrics:      m,
		MaxBodyBytes: 1024,
		Backend:      "memory",
		Ready:        func(context.Context) error { return nil },
	}
	if mod != nil {
		mod(&opts)
	}
	f := &fixture{api: New(opts), logs: logs, m: m, cat: cat}
	// Test routes exercising the shared machinery.
	type echoBody struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
		Inner struct {
			Flag bool `json:"flag"`
		} `json:"inner"`
	}
	f.api.route("POST /v1/test/echo", authenticated, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		var b echoBody
		if err := f.api.readJSON(w, r, &b); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]any{"user": p.ID, "name": b.Name, "count": b.Count})
		return nil
	})
	f.api.route("POST /v1/test/admin", adminOnly, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		writeJSON(w, http.StatusOK, map[string]string{"user": p.ID})
		return nil
	})
	f.api.route("GET /v1/test/panic", authenticated, func(http.ResponseWriter, *http.Request, auth.Principal) error {
		panic("secret internal detail")
	})
	f.api.route("GET /v1/test/fail", authenticated, func(http.ResponseWriter, *http.Request, auth.Principal) error {
		return errors.New("disk /var/lib/secret failed")
	})
	f.api.route("GET /v1/test/unavailable", authenticated, func(http.ResponseWriter, *http.Request, auth.Principal) error {
		return fmt.Errorf("reading row: kalamdb-store/redis: get at 10.1.2.3:6379: %w: connection refused", store.ErrUnavailable)
	})
	f.api.route("GET /v1/test/contained", authenticated, func(http.ResponseWriter, *http.Request, auth.Principal) error {
		err := guard.Run("work below", func() error { panic("secret contained bug") })
		return fmt.Errorf("reading: %w", err)
	})
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorBody(t *testing.T) (code, message string) {
	t.Helper()
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &env), "body: %s", r.body)
	require.NotEmpty(t, env.Error.Code, "body: %s", r.body)
	return env.Error.Code, env.Error.Message
}

// json sends v as a JSON body.
func (f *fixture) json(t testing.TB, method, path, token string, v any) response {
	t.Helper()
	var body io.Reader
	if s, ok := v.(string); ok {
		body = strings.NewReader(s)
	} else {
		data, err := json.Marshal(v)
		require.NoError(t, err)
		body = bytes.NewReader(data)
	}
	return f.do(t, method, path, token, "application/json", body)
}

// decode unmarshals the response body.
func (r response) decode(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (f *fixture) do(t testing.TB, method, path, token, contentType string, body io.Reader) response {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, "GET", "/healthz", "", "", nil)
	assert.Equal(t, 200, r.status)
	assert.JSONEq(t, `{"status":"ok"}`, string(r.body))

	r = f.do(t, "GET", "/readyz", "", "", nil)
	assert.Equal(t, 200, r.status)
	assert.JSONEq(t, `{"status":"ready","backend":"memory"}`, string(r.body))

	f.api.SetDraining()
	r = f.do(t, "GET", "/readyz", "", "", nil)
	assert.Equal(t, 503, r.status)
	code, _ := r.errorBody(t)
	assert.Equal(t, CodeNotReady, code)
	assert.Equal(t, 200, f.do(t, "GET", "/healthz", "", "", nil).status, "the process is still up while draining")
}

func TestReadinessFailsWhenBackendDoesNotAnswer(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	f := newFixture(t, func(o *Options) {
		o.Ready = func(context.Context) error {
			if down.Load() {
				return errors.New("connection refused")
			}
			return nil
		}
	})
	for range 3 {
		r := f.do(t, "GET", "/readyz", "", "", nil)
		assert.Equal(t, 503, r.status)
		code, msg := r.errorBody(t)
		assert.Equal(t, CodeNotReady, code)
		assert.Contains(t, msg, `"memory"`)
	}
	down.Store(false)
	for range 2 {
		assert.Equal(t, 200, f.do(t, "GET", "/readyz", "", "", nil).status)
	}
	logs := f.logs.String()
	assert.Equal(t, 1, strings.Count(logs, "storage backend is unavailable"), "a failing probe is logged once, not every time:\n%s", logs)
	assert.Contains(t, logs, "connection refused")
	assert.Equal(t, 1, strings.Count(logs, "storage backend answers again"), logs)
	assert.NotContains(t, logs, "level=ERROR")
}

// A backend outage is a 503 with Retry-After, distinct from a fault of the
// server (500); the outage and the recovery are logged once each, and the
// client never sees the backend's address.
func TestStorageUnavailableIs503(t *testing.T) {
	f := newFixture(t, nil)
	for range 3 {
		r := f.do(t, "GET", "/v1/test/unavailable", userToken, "", nil)
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		code, msg := r.errorBody(t)
		assert.Equal(t, CodeStorageUnavailable, code)
		assert.Contains(t, msg, `storage backend "memory" cannot be reached now; retry later`)
		assert.NotContains(t, msg, "10.1.2.3")
	}
	r := f.do(t, "GET", "/v1/test/fail", userToken, "", nil)
	assert.Equal(t, http.StatusInternalServerError, r.status, "a fault is still a 500")
	assert.Empty(t, r.header.Get("Retry-After"))
	require.Equal(t, 201, f.json(t, "POST", "/v1/test/echo", userToken, `{"name":"x"}`).status)
	logs := f.logs.String()
	assert.Equal(t, 1, strings.Count(logs, "storage backend is unavailable"), logs)
	assert.Contains(t, logs, "10.1.2.3:6379", "the operator sees the cause")
	assert.Equal(t, 1, strings.Count(logs, "storage backend answers again"), logs)
	text := string(f.do(t, "GET", "/metrics", "", "", nil).body)
	assert.Contains(t, text, `kalamdb_http_requests_total{method="GET",route="/v1/test/unavailable",status="503"} 3`)
}

// Requests that match no route are counted (by method, with unknown methods
// folded into OTHER) and logged like the others.
func TestUnmatchedRequestsAreCountedAndLogged(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.AccessLog = true })
	f.do(t, "GET", "/nope", "", "", nil)
	f.do(t, "GET", "/nope/"+strings.Repeat("x", 400), "", "", nil)
	f.do(t, "DELETE", "/healthz", "", "", nil)
	f.do(t, "BREW", "/coffee", "", "", nil)
	f.do(t, "BREW2", "/coffee", "", "", nil)
	text := string(f.do(t, "GET", "/metrics", "", "", nil).body)
	assert.Contains(t, text, `kalamdb_http_requests_total{method="GET",route="unmatched",status="404"} 2`)
	assert.Contains(t, text, `kalamdb_http_requests_total{method="DELETE",route="unmatched",status="405"} 1`)
	assert.Contains(t, text, `kalamdb_http_requests_total{method="OTHER",route="unmatched",status="404"} 2`)
	assert.NotContains(t, text, "BREW")
	logs := f.logs.String()
	assert.Contains(t, logs, `msg=request method=GET route=unmatched status=404`)
	assert.Contains(t, logs, `path=/nope`)
	assert.Contains(t, logs, "xxx…", "a long path is cut in the log")
	assert.NotContains(t, logs, strings.Repeat("x", 300))
}

// With the access log on, every request leaves one line with its route
// pattern, status, duration and user, and never the token.
func TestAccessLog(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.AccessLog = true })
	f.json(t, "POST", "/v1/test/echo", userToken, `{"name":"x"}`)
	f.json(t, "POST", "/v1/test/echo", userToken, `{"nmae":"x"}`)
	f.do(t, "POST", "/v1/test/admin", "wrong-token", "", nil)
	f.do(t, "GET", "/v1/test/panic", userToken, "", nil)
	logs := f.logs.String()
	for _, want := range []string{
		`level=INFO msg=request method=POST route=/v1/test/echo status=201 duration=`,
		`level=INFO msg=request method=POST route=/v1/test/echo status=400 duration=`,
		`route=/v1/test/admin status=401 duration=`,
		`route=/v1/test/panic status=500 duration=`,
		` user=alice remote=192.0.2.1:1234`,
	} {
		assert.Contains(t, logs, want)
	}
	assert.Equal(t, 4, strings.Count(logs, "msg=request "))
	assert.NotContains(t, logs, userToken)
	assert.NotContains(t, logs, "wrong-token")

	quiet := newFixture(t, nil)
	quiet.json(t, "POST", "/v1/test/echo", userToken, `{"name":"x"}`)
	assert.NotContains(t, quiet.logs.String(), "msg=request ", "the access log is off unless asked for")
}

func TestReadinessReportsADegradedServer(t *testing.T) {
	var problems []string
	f := newFixture(t, func(o *Options) { o.Degraded = func() []string { return problems } })
	r := f.do(t, "GET", "/readyz", "", "", nil)
	assert.Equal(t, 200, r.status)
	assert.JSONEq(t, `{"status":"ready","backend":"memory"}`, string(r.body))

	problems = []string{"cold tier: writing fails"}
	r = f.do(t, "GET", "/readyz", "", "", nil)
	assert.Equal(t, 200, r.status, "degraded is still ready")
	assert.JSONEq(t, `{"status":"degraded","backend":"memory","degraded":true,"problems":["cold tier: writing fails"]}`, string(r.body))
}

func TestReadinessPassesTheCheckersResponse(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Ready = func(context.Context) error {
			return fmt.Errorf("probe: %w", &Error{Status: 503, Code: CodeNotReady, Message: "writes fail"})
		}
	})
	r := f.do(t, "GET", "/readyz", "", "", nil)
	assert.Equal(t, 503, r.status)
	code, msg := r.errorBody(t)
	assert.Equal(t, CodeNotReady, code)
	assert.Equal(t, "writes fail", msg)
}

func TestUnknownRouteAndMethod(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, "GET", "/nope", "", "", nil)
	assert.Equal(t, 404, r.status)
	code, _ := r.errorBody(t)
	assert.Equal(t, CodeNotFound, code)

	r = f.do(t, "DELETE", "/healthz", "", "", nil)
	assert.Equal(t, 405, r.status)
	assert.Equal(t, "GET", r.header.Get("Allow"))
	code, _ = r.errorBody(t)
	assert.Equal(t, CodeMethodNotAllowed, code)
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, nil)
	twice := httptest.NewRequest("POST", "/v1/test/admin", nil)
	twice.Header.Add("Authorization", "Bearer "+userToken)
	twice.Header.Add("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, twice)
	assert.Equal(t, http.StatusBadRequest, rec.Code, "two Authorization headers are refused, not the first one used")
	assert.Contains(t, rec.Body.String(), "the request has 2 Authorization headers; send one")

	body := `{"name":"x"}`
	for _, token := range []string{"", "wrong"} {
		r := f.do(t, "POST", "/v1/test/echo", token, "application/json", strings.NewReader(body))
		assert.Equal(t, 401, r.status, "token %q", token)
		assert.Equal(t, `Bearer realm="kalamdb"`, r.header.Get("WWW-Authenticate"))
		code, _ := r.errorBody(t)
		assert.Equal(t, CodeUnauthorized, code)
	}
	r := f.do(t, "POST", "/v1/test/echo", userToken, "application/json", strings.NewReader(body))
	assert.Equal(t, 201, r.status, string(r.body))
	assert.JSONEq(t, `{"user":"alice","name":"x","count":0}`, string(r.body))

	r = f.do(t, "POST", "/v1/test/admin", userToken, "", nil)
	assert.Equal(t, 403, r.status)
	code, msg := r.errorBody(t)
	assert.Equal(t, CodeForbidden, code)
	assert.Contains(t, msg, "admin role")
	r = f.do(t, "POST", "/v1/test/admin", adminToken, "", nil)
	assert.Equal(t, 200, r.status)

	assert.NotContains(t, f.logs.String(), userToken)
	assert.NotContains(t, f.logs.String(), adminToken)
}

func TestBodyChecks(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name, ct, body string
		status         int
		code, msg      string
	}{
		{"no content type", "", `{"name":"x"}`, 415, CodeUnsupportedMediaType, "Content-Type: application/json"},
		{"form", "application/x-www-form-urlencoded", `name=x`, 415, CodeUnsupportedMediaType, "not \"application/x-www-form-urlencoded\""},
		{"text", "text/plain", `{"name":"x"}`, 415, CodeUnsupportedMediaType, "must be JSON"},
		{"empty", "application/json", ``, 400, CodeInvalidJSON, "empty"},
		{"syntax", "application/json", `{"name":}`, 400, CodeInvalidJSON, "not valid JSON at byte 9"},
		{"truncated", "application/json", `{"name":"x"`, 400, CodeInvalidJSON, "ends in the middle"},
		{"unknown field", "application/json", `{"nmae":"x"}`, 400, CodeBadRequest, `request body has the unknown field "nmae"; known fields: count, inner, name`},
		{"field in the wrong case", "application/json", `{"NAME":"x"}`, 400, CodeBadRequest, `request body has the field "NAME"; did you mean "name"? Field names are case-sensitive`},
		{"nested field in the wrong case", "application/json", `{"inner":{"Flag":true}}`, 400, CodeBadRequest, `field "inner" has the field "Flag"; did you mean "flag"?`},
		{"field twice", "application/json", `{"name":"x","name":"y"}`, 400, CodeBadRequest, `request body has the field "name" twice`},
		{"field twice, once escaped", "application/json", `{"name":"x","na\u006de":"y"}`, 400, CodeBadRequest, `has the field "name" twice`},
		{"nested field twice", "application/json", `{"inner":{"flag":true,"flag":false}}`, 400, CodeBadRequest, `field "inner" has the field "flag" twice`},
		{"invalid UTF-8", "application/json", "{\"name\":\"a\xffb\"}", 400, CodeInvalidJSON, "not valid UTF-8 at byte 10 (0xff)"},
		{"lone low surrogate", "application/json", `{"name":"a\udc00"}`, 400, CodeInvalidJSON, `field "name" has the escape \udc00 at byte 10, half of a UTF-16 surrogate pair`},
		{"lone high surrogate", "application/json", `{"name":"\ud83dx"}`, 400, CodeInvalidJSON, `escape \ud83d at byte 9`},
		{"surrogate pair", "application/json", `{"name":"\ud83d\ude00"}`, 201, "", ""},
		{"escaped backslash before u", "application/json", `{"name":"\\udc00"}`, 201, "", ""},
		{"deep nesting", "application/json", `{"inner":` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `}`, 400, CodeBadRequest, `field "inner" must be an object`},
		{"wrong type", "application/json", `{"name":5}`, 400, CodeBadRequest, `field "name" must be a string, not number`},
		{"nested wrong type", "application/json", `{"inner":{"flag":"yes"}}`, 400, CodeBadRequest, `field "inner.flag" must be true or false, not string`},
		{"not an object", "application/json", `[1,2]`, 400, CodeInvalidJSON, "request body must be an object, not array"},
		{"trailing data", "application/json", `{"name":"x"} {"name":"y"}`, 400, CodeInvalidJSON, "data after the JSON value"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", 2000) + `"}`, 413, CodePayloadTooLarge, "larger than 1024 bytes (server.max_body_bytes)"},
		{"charset ok", "application/json; charset=utf-8", `{"name":"x","count":2}`, 201, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/test/echo", userToken, tc.ct, strings.NewReader(tc.body))
			require.Equal(t, tc.status, r.status, string(r.body))
			if tc.code == "" {
				return
			}
			code, msg := r.errorBody(t)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, msg, tc.msg)
		})
	}
}

// A body without a Content-Length (chunked) that exceeds the limit is cut
// off while reading.
func TestBodyLimitWhileStreaming(t *testing.T) {
	f := newFixture(t, nil)
	req := httptest.NewRequest("POST", "/v1/test/echo", io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("y", 5000)), strings.NewReader(`"}`)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+userToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	assert.Equal(t, 413, rec.Code, rec.Body.String())
}

func TestServerFaultsNeverLeakDetails(t *testing.T) {
	f := newFixture(t, nil)
	for _, path := range []string{"/v1/test/panic", "/v1/test/fail", "/v1/test/contained"} {
		r := f.do(t, "GET", path, userToken, "", nil)
		assert.Equal(t, 500, r.status)
		code, msg := r.errorBody(t)
		assert.Equal(t, CodeInternal, code)
		assert.NotContains(t, string(r.body), "secret")
		assert.NotContains(t, string(r.body), "goroutine")
		assert.Contains(t, msg, "server log")
	}
	logs := f.logs.String()
	assert.Contains(t, logs, "secret internal detail", "the panic is logged for the operator")
	assert.Contains(t, logs, "disk /var/lib/secret failed")
	assert.Contains(t, logs, "secret contained bug")
	assert.Equal(t, 2, strings.Count(logs, "stack="), "both panics are logged with their stack")
	assert.Contains(t, logs, "api.newFixture", "the stack of the contained panic names where it happened")
}

func TestRequestsAreCountedByRoute(t *testing.T) {
	f := newFixture(t, nil)
	f.do(t, "GET", "/healthz", "", "", nil)
	f.do(t, "POST", "/v1/test/admin", userToken, "", nil)
	r := f.do(t, "GET", "/metrics", "", "", nil)
	require.Equal(t, 200, r.status)
	text := string(r.body)
	assert.Contains(t, text, `kalamdb_http_requests_total{method="GET",route="/healthz",status="200"} 1`)
	assert.Contains(t, text, `kalamdb_http_requests_total{method="POST",route="/v1/test/admin",status="403"} 1`)
}
