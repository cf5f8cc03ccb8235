package sql

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup/backuptest"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// backupFixture is a fixture whose API takes online backups as the server
// wires them: the backend behind a write gate, segment removals held
// while a backup copies the segments. It holds backuptest.Populate's
// tables, and want is what the table API reads of them.
func backupFixture(t *testing.T) (f *fixture, want string) {
	t.Helper()
	ctx := context.Background()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	gate := backup.NewGate(b)
	dir := t.TempDir()
	hold := backup.NewSegmentHold(segment.FSStore(segment.DirFS(dir), dir))
	m, err := flush.Open(ctx, gate, flush.Options{Store: hold, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = m.Close(context.Background()) })
	backuptest.Populate(t, m)
	online := func(ctx context.Context, to string) (*backup.Index, error) {
		return backup.Backup(ctx, backup.Source{Backend: gate, Name: "memory", Segments: hold,
			Pause: gate.Pause, HoldSegments: hold.Hold}, to, backup.Options{})
	}
	return newFixtureBackup(t, m.DB(), m, online), backuptest.Dump(t, m.DB())
}

// restoredDump restores the backup at from into a new memory database and
// returns what the table API reads of it.
func restoredDump(t *testing.T, from string) string {
	t.Helper()
	ctx := context.Background()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	dir := t.TempDir()
	_, err := backup.Restore(ctx, from, backup.Target{Backend: b, Segments: func(context.Context, store.StorageBackend) (segment.Store, error) {
		return segment.FSStore(segment.DirFS(dir), dir), nil
	}}, backup.Options{})
	require.NoError(t, err)
	m, err := flush.Open(ctx, b, flush.Options{Dir: dir, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	defer func() { _, _ = m.Close(ctx) }()
	return backuptest.Dump(t, m.DB())
}

func TestBackupDatabase(t *testing.T) {
	for _, dest := range []string{"dir", "backup.tar.gz"} {
		t.Run(dest, func(t *testing.T) {
			f, want := backupFixture(t)
			loc := filepath.Join(t.TempDir(), dest)
			res := f.ok(t, adminToken, `BACKUP DATABASE TO '`+loc+`'`)
			require.Len(t, res.Rows, 1)
			names := make([]string, len(res.Schema))
			for i, c := range res.Schema {
				names[i] = c.Name
			}
			require.Equal(t, []string{"to", "partitions", "keys", "segments", "bytes", "tables", "created", "consistency"}, names)
			r := res.Rows[0]
			require.Equal(t, loc, r[0])
			require.Equal(t, float64(3), r[5], "the tables of backuptest.Populate")
			require.Contains(t, r[7], "writes were paused")
			require.Positive(t, r[3], "the flushed segments")
			require.Regexp(t, `^Backed up [1-9][0-9]* partition\(s\), [1-9][0-9]* key\(s\), [1-9][0-9]* segment\(s\) to '`+loc+`'$`, res.Message)

			require.Equal(t, want, restoredDump(t, loc))
		})
	}
}

func TestBackupDatabaseRefusals(t *testing.T) {
	f, _ := backupFixture(t)
	loc := filepath.Join(t.TempDir(), "b")

	msg := f.fail(t, http.StatusForbidden, "FORBIDDEN", aliceToken, `BACKUP DATABASE TO '`+loc+`'`)
	require.Contains(t, msg, "BACKUP DATABASE needs the admin role")
	_, err := os.Stat(loc)
	require.ErrorIs(t, err, os.ErrNotExist, "a refused backup writes nothing")

	// The statement's syntax: the destination is a quoted string literal.
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `BACKUP DATABASE TO `+loc)
	require.Contains(t, msg, "expected the backup's destination as a quoted string")
	require.Contains(t, msg, "(at position 19)")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `BACKUP DATABASE TO "`+loc+`"`)
	require.Contains(t, msg, "(at position 19)")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `BACKUP DATABASE TO ''`)
	require.Contains(t, msg, "is empty")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `BACKUP DATABASE TO $1`, loc)
	require.Contains(t, msg, "(at position 19)")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `BACKUP TO '`+loc+`'`)
	require.Contains(t, msg, "expected DATABASE")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `BACKUP DATABASE TO '`+loc+`' NOW`)
	require.Contains(t, msg, "expected the end of the statement")
	_, err = os.Stat(loc)
	require.ErrorIs(t, err, os.ErrNotExist, "a statement that does not parse writes nothing")

	// Destinations the backup cannot use: 400, as POST /v1/admin/backup.
	f.ok(t, adminToken, `BACKUP DATABASE TO '`+loc+`'`)
	msg = f.fail(t, http.StatusBadRequest, "BAD_REQUEST", adminToken, `BACKUP DATABASE TO '`+loc+`'`)
	require.Contains(t, msg, "not empty")
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	f.fail(t, http.StatusBadRequest, "BAD_REQUEST", adminToken, `BACKUP DATABASE TO '`+filepath.Join(file, "sub")+`'`)
	tgz := filepath.Join(t.TempDir(), "b.tar.gz")
	f.ok(t, adminToken, `BACKUP DATABASE TO '`+tgz+`'`)
	msg = f.fail(t, http.StatusBadRequest, "BAD_REQUEST", adminToken, `BACKUP DATABASE TO '`+tgz+`'`)
	require.Contains(t, msg, "exists")
}

func TestBackupDatabaseWithoutOnlineBackups(t *testing.T) {
	f := newFixture(t)
	dest := filepath.Join(t.TempDir(), "b")
	msg := f.fail(t, http.StatusNotImplemented, "NOT_IMPLEMENTED", adminToken, `BACKUP DATABASE TO '`+dest+`'`)
	require.Contains(t, msg, "kalamdb-server backup")
	_, err := os.Stat(dest)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestRestoreDatabaseIsRefused(t *testing.T) {
	f, want := backupFixture(t)
	loc := filepath.Join(t.TempDir(), "b")
	f.ok(t, adminToken, `BACKUP DATABASE TO '`+loc+`'`)

	msg := f.fail(t, http.StatusForbidden, "FORBIDDEN", aliceToken, `RESTORE DATABASE FROM '`+loc+`'`)
	require.Contains(t, msg, "RESTORE DATABASE needs the admin role")
	msg = f.fail(t, http.StatusForbidden, "FORBIDDEN", aliceToken, `RESTORE nonsense`)
	require.Contains(t, msg, "needs the admin role", "the admin check comes first")

	msg = f.fail(t, http.StatusBadRequest, CodeUnsupported, adminToken, `RESTORE DATABASE FROM '`+loc+`'`)
	require.Contains(t, msg, "stop the server and run `kalamdb-server restore --config C --from "+loc+"`")
	msg = f.fail(t, http.StatusBadRequest, CodeUnsupported, adminToken, `RESTORE DATABASE FROM '/backups/it''s monday'`)
	require.Contains(t, msg, `--from '/backups/it'\''s monday'`, "the source quoted for a shell")

	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `RESTORE DATABASE FROM `+loc)
	require.Contains(t, msg, "expected the backup to restore as a quoted string")
	require.Contains(t, msg, "(at position 22)")
	f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `RESTORE DATABASE TO '`+loc+`'`)

	require.Equal(t, want, backuptest.Dump(t, f.db), "the database is unchanged")
}
