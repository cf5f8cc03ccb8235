package sql

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

const (
	adminToken = "admin-token-for-sql-tests"
	aliceToken = "alice-token-for-sql-tests"
	bobToken   = "bob-token-for-sql-tests"
)

// fixture is an API with the SQL endpoint over a backend.
type fixture struct {
	api *api.API
	e   *Engine
	db  *tables.DB
}

func newFixture(t testing.TB, mods ...func(*Options)) *fixture {
	t.Helper()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	return newFixtureOn(t, b, false, mods...)
}

// newFixtureOn builds a fixture on backend b, with a Parquet cold tier
// when cold is set.
func newFixtureOn(t testing.TB, b store.StorageBackend, cold bool, mods ...func(*Options)) *fixture {
	t.Helper()
	dir := ""
	if cold {
		dir = t.TempDir()
	}
	return newFixtureOnDir(t, b, dir, mods...)
}

// newFixtureOnDir is newFixtureOn with the cold tier in dir ("" for none).
func newFixtureOnDir(t testing.TB, b store.StorageBackend, dir string, mods ...func(*Options)) *fixture {
	t.Helper()
	var db *tables.DB
	var coldTier api.ColdTier
	if dir != "" {
		m, err := flush.Open(context.Background(), b, flush.Options{Dir: dir, CompactSegments: flush.NeverCompact})
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = m.Close(context.Background()) })
		db, coldTier = m.DB(), m
		mods = append([]func(*Options){func(o *Options) { o.Segments = m }}, mods...)
	} else {
		var err error
		db, err = tables.Open(context.Background(), b, tables.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
	}
	return newFixtureWith(t, db, coldTier, mods...)
}

// newFixtureWith builds a fixture on an open table layer and its cold tier
// (nil for none).
func newFixtureWith(t testing.TB, db *tables.DB, coldTier api.ColdTier, mods ...func(*Options)) *fixture {
	t.Helper()
	return newFixtureBackup(t, db, coldTier, nil, mods...)
}

// newFixtureBackup is newFixtureWith with the API's online backup
// (api.Options.Backup; nil for none).
func newFixtureBackup(t testing.TB, db *tables.DB, coldTier api.ColdTier, bk func(context.Context, string) (*backup.Index, error), mods ...func(*Options)) *fixture {
	t.Helper()
	authn, err := auth.New([]config.User{
		{ID: "root", Role: config.RoleAdmin, Token: adminToken},
		{ID: "alice", Role: config.RoleUser, Token: aliceToken},
		{ID: "bob", Role: config.RoleUser, Token: bobToken},
	})
	require.NoError(t, err)
	a := api.New(api.Options{Auth: authn, DB: db, Cold: coldTier, Backup: bk, MaxBodyBytes: 1 << 20, EvictionInterval: time.Hour,
		Defaults: api.Defaults{FlushRows: 1000, FlushInterval: time.Minute, StreamTTL: time.Hour, StreamMaxRows: 1000}})
	opts := Options{API: a, DB: db}
	for _, m := range mods {
		m(&opts)
	}
	e, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	e.Register(a)
	return &fixture{api: a, e: e, db: db}
}

// reply is a decoded answer of the endpoint.
type reply struct {
	status int
	body   []byte
	Response
}

func (f *fixture) post(t testing.TB, token, body string) reply {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/api/sql", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	r := reply{status: rec.Code, body: rec.Body.Bytes()}
	require.NoError(t, json.Unmarshal(r.body, &r.Response), "body: %s", r.body)
	return r
}

// sql runs statements with params in namespace app.
func (f *fixture) sql(t testing.TB, token, stmts string, params ...any) reply {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"sql": stmts, "params": params, "namespace_id": "app"})
	require.NoError(t, err)
	return f.post(t, token, string(body))
}

// ok runs statements that must succeed and returns the last result.
func (f *fixture) ok(t testing.TB, token, stmts string, params ...any) Result {
	t.Helper()
	r := f.sql(t, token, stmts, params...)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "success", r.Status)
	require.NotEmpty(t, r.Results)
	return r.Results[len(r.Results)-1]
}

// fail runs statements that must fail with status and code, and returns
// the message.
func (f *fixture) fail(t testing.TB, status int, code, token, stmts string, params ...any) string {
	t.Helper()
	r := f.sql(t, token, stmts, params...)
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "error", r.Status)
	require.NotNil(t, r.Error, "body: %s", r.body)
	require.Equal(t, code, r.Error.Code, "body: %s", r.body)
	require.Empty(t, r.Results)
	return r.Error.Message
}

// rest sends a REST request.
func (f *fixture) rest(t testing.TB, method, path, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// setup creates namespace app and user table app.items.
func (f *fixture) setup(t testing.TB) {
	t.Helper()
	f.ok(t, adminToken, `CREATE NAMESPACE app;
		CREATE USER TABLE app.items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty INT, price DOUBLE, ok BOOLEAN, data BYTES, seen TIMESTAMP)`)
}
