package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup/backuptest"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
)

// An online backup through POST /v1/admin/backup, taken while clients
// insert, restores to a database that holds every insert acknowledged
// before the backup was asked for, and the flushed segments.
func TestOnlineBackupThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	s, err := Open(ctx, rocksConfig(t, t.TempDir(), t.TempDir()), log, backends.Default())
	require.NoError(t, err)
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"},{"name":"w","type":"int64"}],"primary_key":"id"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":-1,"w":0},{"id":-2,"w":0}]}`).Code)
	require.Equal(t, 200, do(t, h, "POST", "/v1/namespaces/app/tables/m/flush", "").Code)

	ws := backuptest.StartWriters(t, 3, func(w int, i int64) error {
		body := fmt.Sprintf(`{"rows":[{"id":%d,"w":%d}]}`, int64(w)<<32|i, w)
		if rec := do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", body); rec.Code != 201 {
			return fmt.Errorf("insert: %d %s", rec.Code, rec.Body)
		}
		return nil
	})
	before := ws.Acked()
	dest := filepath.Join(t.TempDir(), "online.tar.gz")
	rec := do(t, h, "POST", "/v1/admin/backup", `{"to":"`+dest+`"}`)
	ws.Stop()
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var got struct {
		Segments    int    `json:"segments"`
		Consistency string `json:"consistency"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, 1, got.Segments)
	require.Contains(t, got.Consistency, "writes were paused")

	// The same destination again is the caller's mistake.
	rec = do(t, h, "POST", "/v1/admin/backup", `{"to":"`+dest+`"}`)
	require.Equal(t, 400, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "exists")
	require.NoError(t, s.Shutdown(ctx))

	// Restore into a fresh database and read it through the API.
	cfg2 := rocksConfig(t, t.TempDir(), t.TempDir())
	st, err := OpenStorage(ctx, cfg2, backends.Default())
	require.NoError(t, err)
	_, err = backup.Restore(ctx, dest, backup.Target{Backend: st.Backend, Segments: func(ctx context.Context, _ store.StorageBackend) (segment.Store, error) {
		return st.Segments(ctx, true)
	}}, backup.Options{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	s2, err := Open(ctx, cfg2, log, backends.Default())
	require.NoError(t, err)
	defer func() { _ = s2.Shutdown(ctx) }()
	have := map[int64]bool{}
	for path := "/v1/namespaces/app/tables/m/rows"; path != ""; {
		rec = do(t, s2.Handler(), "GET", path, "")
		require.Equal(t, 200, rec.Code, rec.Body.String())
		var page struct {
			Rows []struct {
				ID int64 `json:"id"`
			} `json:"rows"`
			Next *string `json:"next"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		for _, r := range page.Rows {
			have[r.ID] = true
		}
		path = ""
		if page.Next != nil {
			path = "/v1/namespaces/app/tables/m/rows?after=" + *page.Next
		}
	}
	require.True(t, have[-1] && have[-2], "the flushed rows")
	for w, n := range before {
		for i := int64(0); i < n; i++ {
			require.True(t, have[int64(w)<<32|i], "row %d of writer %d, acknowledged before the backup", i, w)
		}
	}
}

func TestOnlineBackupIsForAdmins(t *testing.T) {
	doc := memoryConfig + "\n[[auth.users]]\nid = \"bob\"\nrole = \"user\"\ntoken = \"test-user-token-bob\"\n"
	s, err := Open(context.Background(), loadConfig(t, doc, nil), slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	rec := doAs(t, s.Handler(), "test-user-token-bob", "POST", "/v1/admin/backup", `{"to":"`+t.TempDir()+`"}`)
	require.Equal(t, 403, rec.Code, rec.Body.String())
	rec = do(t, s.Handler(), "POST", "/v1/admin/backup", `{}`)
	require.Equal(t, 400, rec.Code, rec.Body.String())
}

// SQL's BACKUP DATABASE takes the server's online backup, as
// POST /v1/admin/backup does: for admins only, and a backup that restores.
func TestOnlineBackupThroughSQL(t *testing.T) {
	ctx := context.Background()
	doc := memoryConfig + "\n[[auth.users]]\nid = \"bob\"\nrole = \"user\"\ntoken = \"test-user-token-bob\"\n"
	s, err := Open(ctx, loadConfig(t, doc, nil), slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(ctx) }()
	h := s.Handler()
	sql := func(token, stmt string) (int, string) {
		body, err := json.Marshal(map[string]string{"sql": stmt})
		require.NoError(t, err)
		rec := doAs(t, h, token, "POST", "/v1/api/sql", string(body))
		return rec.Code, rec.Body.String()
	}
	code, body := sql("test-admin-token", `CREATE NAMESPACE app; CREATE SHARED TABLE app.m (id BIGINT PRIMARY KEY, w TEXT); INSERT INTO app.m VALUES (1, 'one'), (2, 'two')`)
	require.Equal(t, 200, code, body)

	dest := filepath.Join(t.TempDir(), "b.tar.gz")
	code, body = sql("test-user-token-bob", `BACKUP DATABASE TO '`+dest+`'`)
	require.Equal(t, 403, code, body)
	code, body = sql("test-admin-token", `BACKUP DATABASE TO '`+dest+`'`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "to '"+dest+"'")
	require.Contains(t, body, "writes were paused")
	code, body = sql("test-admin-token", `BACKUP DATABASE TO '`+dest+`'`)
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "exists")

	b := memory.New()
	defer func() { _ = b.Close() }()
	_, err = backup.Restore(ctx, dest, backup.Target{Backend: b}, backup.Options{})
	require.NoError(t, err)
	db, err := tables.Open(ctx, b, tables.Options{})
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	rs, err := db.RowStore(ctx, "app", "m", "")
	require.NoError(t, err)
	got, err := rs.Get(ctx, row.Int64(2))
	require.NoError(t, err)
	require.Equal(t, row.String("two"), got.Values[1])
}
