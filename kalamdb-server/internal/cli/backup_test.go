package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup/backuptest"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/server"
)

// dbConfig writes the configuration of a database on backend in a fresh
// directory.
func dbConfig(t *testing.T, backend string) string {
	dir := t.TempDir()
	return writeConfig(t, fmt.Sprintf(`[storage]
backend = %q
parquet_dir = %q

[storage.%s]
path = %q

[[auth.users]]
id = "admin"
role = "admin"
token = "a-very-secret-token"
`, backend, filepath.Join(dir, "parquet"), backend, filepath.Join(dir, "data")))
}

// withTables opens the database of the configuration at path with its
// table layer, as the server does, and calls fn.
func withTables(t *testing.T, path string, fn func(m *flush.Manager)) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(config.Options{Path: path})
	require.NoError(t, err)
	st, err := server.OpenStorage(ctx, cfg, backends.Default())
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	segs, err := st.Segments(ctx, true)
	require.NoError(t, err)
	m, err := flush.Open(ctx, st.Backend, flush.Options{Store: segs, GCGrace: -1, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	defer m.Stop()
	fn(m)
}

func TestBackupRestoreMigrateCommands(t *testing.T) {
	src := dbConfig(t, "rocksdb")
	var want string
	withTables(t, src, func(m *flush.Manager) {
		backuptest.Populate(t, m)
		want = backuptest.Dump(t, m.DB())
	})

	archive := filepath.Join(t.TempDir(), "db.tar.gz")
	code, out, errOut := run(t, nil, "backup", "--config", src, "--to", archive)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "backed up")
	require.Regexp(t, `(?m)^app\.notes\s+\d+\s+2\s+80$`, out, "counts per table")
	require.Contains(t, errOut, "progress")

	// Restore into Pebble.
	dst := dbConfig(t, "pebble")
	code, out, errOut = run(t, nil, "restore", "--config", dst, "--from", archive)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "verified")
	require.Regexp(t, `(?m)^app\.prices\s+\d+\s+2\s+\d+$`, out)
	withTables(t, dst, func(m *flush.Manager) { require.Equal(t, want, backuptest.Dump(t, m.DB())) })

	// A second restore finds the target not empty.
	code, _, errOut = run(t, nil, "restore", "--config", dst, "--from", archive)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not empty")
	require.Contains(t, errOut, "system:catalog")
	code, _, errOut = run(t, nil, "restore", "--config", dst, "--from", archive, "--force")
	require.Equal(t, 0, code, errOut)

	// Migrate RocksDB to bbolt.
	mig := dbConfig(t, "bbolt")
	code, out, errOut = run(t, nil, "migrate", "--from", src, "--to", mig)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "migrated")
	withTables(t, mig, func(m *flush.Manager) { require.Equal(t, want, backuptest.Dump(t, m.DB())) })
}

func TestBackupCommandErrors(t *testing.T) {
	src := dbConfig(t, "rocksdb")
	code, _, errOut := run(t, nil, "backup", "--config", src)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--to")

	// A damaged backup is refused, naming the file.
	withTables(t, src, func(m *flush.Manager) { backuptest.Populate(t, m) })
	dir := filepath.Join(t.TempDir(), "b")
	code, _, errOut = run(t, nil, "backup", "--config", src, "--to", dir)
	require.Equal(t, 0, code, errOut)
	f := filepath.Join(dir, "partitions", "00001.kvs")
	data, err := os.ReadFile(f)
	require.NoError(t, err)
	data[len(data)-3] ^= 1
	require.NoError(t, os.WriteFile(f, data, 0o600))
	code, _, errOut = run(t, nil, "restore", "--config", dbConfig(t, "pebble"), "--from", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "partitions/00001.kvs, offset")

	code, _, errOut = run(t, nil, "restore", "--config", writeConfig(t, goodConfig), "--from", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not durable")
}

func TestServerRefusesAnUnfinishedRestore(t *testing.T) {
	ctx := context.Background()
	p := dbConfig(t, "rocksdb")
	cfg, err := config.Load(config.Options{Path: p})
	require.NoError(t, err)
	st, err := server.OpenStorage(ctx, cfg, backends.Default())
	require.NoError(t, err)
	require.NoError(t, st.Backend.CreatePartition(ctx, backup.RestoreMarker))
	require.NoError(t, st.Close())

	_, err = server.Open(ctx, cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.ErrorContains(t, err, "unfinished restore")
	code, _, errOut := run(t, nil, "backup", "--config", p, "--to", filepath.Join(t.TempDir(), "b"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "unfinished restore")
}

// backup --server asks the running server for an online backup.
func TestOnlineBackupCommand(t *testing.T) {
	ctx := context.Background()
	p := dbConfig(t, "rocksdb")
	withTables(t, p, func(m *flush.Manager) { backuptest.Populate(t, m) })
	cfg, err := config.Load(config.Options{Path: p})
	require.NoError(t, err)
	cfg.Server.Host, cfg.Server.Port = "127.0.0.1", 0
	s, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler), backends.Default())
	require.NoError(t, err)
	addr, err := s.Listen()
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	defer func() {
		require.NoError(t, s.Shutdown(ctx))
		require.NoError(t, <-served)
	}()
	base := "http://" + addr.String()

	dest := filepath.Join(t.TempDir(), "online")
	code, out, errOut := run(t, []string{"KALAMDB_TOKEN=a-very-secret-token"}, "backup", "--server", base, "--to", dest)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "backed up online")
	require.Regexp(t, `(?m)^app\.notes\s+\d+\s+2\s+80$`, out)
	idx, err := backup.Check(ctx, dest, backup.Options{})
	require.NoError(t, err)
	require.Len(t, idx.Segments, 4)

	code, _, errOut = run(t, []string{"KALAMDB_TOKEN=wrong-token-of-nobody"}, "backup", "--server", base, "--to", filepath.Join(t.TempDir(), "x"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "401")
	code, _, errOut = run(t, nil, "backup", "--server", base, "--to", dest)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "KALAMDB_TOKEN")
}

func TestProgressBar(t *testing.T) {
	p := backup.Progress{Phase: "restore", Keys: 500, TotalKeys: 1000, Bytes: 50 << 20, TotalBytes: 100 << 20}
	require.Equal(t, "restore   50% [===============               ] 500/1000 keys, 50.00 MiB of 100.00 MiB, eta 10s   ", barLine(p, 10*time.Second))
	p = backup.Progress{Phase: "backup", Keys: 7, Bytes: 2048}
	require.Equal(t, "backup   7 keys, 2.00 KiB, 3s   ", barLine(p, 3*time.Second))

	var b bytes.Buffer
	bar, done := progressBar(&b)
	bar(backup.Progress{Phase: "check", TotalBytes: 10, Bytes: 10, Started: time.Now()})
	bar(backup.Progress{Phase: "restore", TotalBytes: 10, Started: time.Now()})
	require.Equal(t, 2, strings.Count(b.String(), "\r"))
	require.Equal(t, 1, strings.Count(b.String(), "\n"), "a new line for each new phase")
	done()
	require.True(t, strings.HasSuffix(b.String(), "\n"), "the last line ended")
}

// The segments of a backup go, in the restored database, under the
// database id its catalog holds: where the server looks for them.
func TestRestorePutsSegmentsUnderTheDatabaseID(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := memory.New()
	m, err := flush.Open(ctx, b, flush.Options{Dir: dir, GCGrace: -1, CompactSegments: flush.NeverCompact})
	require.NoError(t, err)
	backuptest.Populate(t, m)
	id := m.DB().Catalog().DatabaseID()
	m.Stop()
	var segs []string
	require.NoError(t, segment.FSStore(segment.DirFS(dir), dir).List(ctx, "", func(o segment.ObjectInfo) error {
		segs = append(segs, o.Name)
		return nil
	}))
	require.NotEmpty(t, segs, "the database has segments")
	loc := filepath.Join(t.TempDir(), "b")
	_, err = backup.Backup(ctx, backup.Source{Backend: b, Name: "memory", Segments: segment.FSStore(segment.DirFS(dir), dir)}, loc, backup.Options{})
	require.NoError(t, err)

	target := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("[storage]\nbackend = \"rocksdb\"\nparquet_dir = %q\n\n[storage.rocksdb]\npath = %q\n\n[[auth.users]]\nid = \"admin\"\nrole = \"admin\"\ntoken = \"a-very-secret-token\"\n",
		filepath.Join(target, "parquet"), filepath.Join(target, "data")))
	code, _, errOut := run(t, nil, "restore", "--config", cfg, "--from", loc)
	require.Equal(t, 0, code, errOut)
	for _, name := range segs {
		_, err := os.Stat(filepath.Join(target, "parquet", id, name))
		assert.NoError(t, err, "segment %s under the database id", name)
	}
}

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// backup --to and restore --from take the object-store URLs of
// storage.segments_url.
func TestBackupToAnObjectStoreURL(t *testing.T) {
	src := dbConfig(t, "rocksdb")
	var want string
	withTables(t, src, func(m *flush.Manager) {
		backuptest.Populate(t, m)
		want = backuptest.Dump(t, m.DB())
	})
	_, bucket := s3test.Bucket(t)
	loc := bucket + "&prefix=nightly/"
	code, _, errOut := run(t, s3test.Env(), "backup", "--config", src, "--to", loc)
	require.Equal(t, 0, code, errOut)
	dst := dbConfig(t, "pebble")
	code, _, errOut = run(t, s3test.Env(), "restore", "--config", dst, "--from", loc)
	require.Equal(t, 0, code, errOut)
	withTables(t, dst, func(m *flush.Manager) { require.Equal(t, want, backuptest.Dump(t, m.DB())) })
}
