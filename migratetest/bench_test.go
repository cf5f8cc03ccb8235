package migratetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/pebble"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// benchRows is how many rows the benchmarks' databases hold:
// $KALAMDB_BACKUP_BENCH_ROWS, else 200,000.
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("KALAMDB_BACKUP_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// benchDB is a RocksDB database of the benchmarks, built once per process.
type benchDB struct {
	b    store.StorageBackend
	segs segment.Store
	// backup is a backup of it in a directory.
	backup string
	rows   int
	bytes  int64
}

var (
	benchRoot string
	benchMu   sync.Mutex
	benchDBs  = map[string]*benchDB{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	benchMu.Lock()
	for _, d := range benchDBs {
		_ = d.b.Close()
	}
	benchMu.Unlock()
	if benchRoot != "" {
		_ = os.RemoveAll(benchRoot)
	}
	os.Exit(code)
}

func scratch(b *testing.B) string {
	if benchRoot == "" {
		dir, err := os.MkdirTemp("", "kalamdb-backup-bench-")
		require.NoError(b, err)
		benchRoot = dir
	}
	dir, err := os.MkdirTemp(benchRoot, "")
	require.NoError(b, err)
	return dir
}

// sourceDB returns the database of kind "buffered" (every row in RocksDB)
// or "flushed" (every row in Parquet segments, the buffer empty).
func sourceDB(b *testing.B, kind string) *benchDB {
	benchMu.Lock()
	defer benchMu.Unlock()
	if d := benchDBs[kind]; d != nil {
		return d
	}
	ctx := context.Background()
	dir := scratch(b)
	cfg := rocksdb.DefaultConfig()
	cfg.Path = filepath.Join(dir, "db")
	be, err := rocksdb.OpenWith(cfg)
	require.NoError(b, err)
	segDir := filepath.Join(dir, "segments")
	require.NoError(b, os.MkdirAll(segDir, 0o700))
	segs := segment.FSStore(segment.DirFS(segDir), segDir)
	m, err := flush.Open(ctx, be, flush.Options{Store: segs, GCGrace: -1, CompactSegments: flush.NeverCompact})
	require.NoError(b, err)
	_, err = m.DB().Catalog().CreateNamespace(ctx, "bench")
	require.NoError(b, err)
	_, err = m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: "bench", Name: "t", Type: catalog.SharedTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "payload", Type: row.TypeString}}})
	require.NoError(b, err)
	t, err := m.DB().Shared(ctx, "bench", "t")
	require.NoError(b, err)
	n := benchRows()
	batch := make([][]row.Value, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, []row.Value{row.Int64(int64(i)), row.String(fmt.Sprintf("payload of row %09d, some forty more bytes of text", i))})
		if len(batch) == cap(batch) || i == n-1 {
			_, err := t.Insert(ctx, batch...)
			require.NoError(b, err)
			batch = batch[:0]
		}
	}
	if kind == "flushed" {
		_, err := m.Flush(ctx, "bench", "t")
		require.NoError(b, err)
	}
	m.Stop()
	require.NoError(b, m.DB().Close())
	d := &benchDB{b: be, segs: segs, rows: n, backup: filepath.Join(dir, "backup")}
	idx, err := backup.Backup(ctx, d.source(), d.backup, backup.Options{})
	require.NoError(b, err)
	_, d.bytes = idx.Totals()
	benchDBs[kind] = d
	return d
}

func (d *benchDB) source() backup.Source {
	return backup.Source{Backend: d.b, Name: "rocksdb", Segments: d.segs}
}

// emptyTarget opens an empty database of engine ("rocksdb" or "pebble").
func emptyTarget(b *testing.B, engine string) (store.StorageBackend, backup.Target) {
	dir := scratch(b)
	var be store.StorageBackend
	var err error
	if engine == "pebble" {
		cfg := pebble.DefaultConfig()
		cfg.Path = filepath.Join(dir, "db")
		be, err = pebble.OpenWith(cfg)
	} else {
		cfg := rocksdb.DefaultConfig()
		cfg.Path = filepath.Join(dir, "db")
		be, err = rocksdb.OpenWith(cfg)
	}
	require.NoError(b, err)
	segDir := filepath.Join(dir, "segments")
	require.NoError(b, os.MkdirAll(segDir, 0o700))
	segs := segment.FSStore(segment.DirFS(segDir), segDir)
	return be, backup.Target{Backend: be, Segments: func(context.Context, store.StorageBackend) (segment.Store, error) { return segs, nil }}
}

func report(b *testing.B, d *benchDB) {
	b.SetBytes(d.bytes)
	b.ReportMetric(float64(d.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBackup backs up a RocksDB database of benchRows rows, all
// buffered or all flushed, into a directory. MB/s counts the backup's
// bytes.
func BenchmarkBackup(b *testing.B) {
	for _, kind := range []string{"buffered", "flushed"} {
		b.Run(kind, func(b *testing.B) {
			d := sourceDB(b, kind)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dest := scratch(b)
				b.StartTimer()
				_, err := backup.Backup(context.Background(), d.source(), dest, backup.Options{})
				require.NoError(b, err)
				b.StopTimer()
				require.NoError(b, os.RemoveAll(dest))
				b.StartTimer()
			}
			report(b, d)
		})
	}
}

// BenchmarkRestore restores that backup into an empty RocksDB database:
// the check, the writes and the verification.
func BenchmarkRestore(b *testing.B) {
	benchInto(b, "rocksdb", func(d *benchDB, t backup.Target, _ string) error {
		_, err := backup.Restore(context.Background(), d.backup, t, backup.Options{})
		return err
	})
}

// BenchmarkMigrateRocksDBToPebble migrates the RocksDB database into an
// empty Pebble one: backup, restore, verification.
func BenchmarkMigrateRocksDBToPebble(b *testing.B) {
	benchInto(b, "pebble", func(d *benchDB, t backup.Target, tmp string) error {
		_, err := backup.Migrate(context.Background(), d.source(), t, backup.Options{TempDir: tmp})
		return err
	})
}

// benchInto times op, which copies a source database (buffered, then
// flushed) into an empty one of engine, given a scratch directory.
func benchInto(b *testing.B, engine string, op func(d *benchDB, t backup.Target, tmp string) error) {
	for _, kind := range []string{"buffered", "flushed"} {
		b.Run(kind, func(b *testing.B) {
			d := sourceDB(b, kind)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				be, t := emptyTarget(b, engine)
				tmp := scratch(b)
				b.StartTimer()
				require.NoError(b, op(d, t, tmp))
				b.StopTimer()
				require.NoError(b, be.Close())
				b.StartTimer()
			}
			report(b, d)
		})
	}
}
