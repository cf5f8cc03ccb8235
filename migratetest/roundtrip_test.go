package migratetest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/bbolt"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/pebble"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup/backuptest"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// engine opens a fresh, empty backend of one engine.
type engine struct {
	name string
	open func(t *testing.T) store.StorageBackend
}

func rocksEngine(t *testing.T) store.StorageBackend {
	cfg := rocksdb.DefaultConfig()
	cfg.Path = t.TempDir()
	b, err := rocksdb.OpenWith(cfg)
	require.NoError(t, err)
	return b
}

func engines() []engine {
	return []engine{
		{"memory", func(*testing.T) store.StorageBackend { return memory.New() }},
		{"rocksdb", rocksEngine},
		{"pebble", func(t *testing.T) store.StorageBackend {
			cfg := pebble.DefaultConfig()
			cfg.Path = t.TempDir()
			b, err := pebble.OpenWith(cfg)
			require.NoError(t, err)
			return b
		}},
		{"bbolt", func(t *testing.T) store.StorageBackend {
			cfg := bbolt.DefaultConfig()
			cfg.Path = t.TempDir()
			b, err := bbolt.OpenWith(cfg)
			require.NoError(t, err)
			return b
		}},
		{"redis", func(t *testing.T) store.StorageBackend {
			srv := redistest.StartT(t, redistest.Options{})
			cfg := redis.DefaultConfig()
			cfg.Addr = srv.Addr
			b, err := redis.OpenWith(context.Background(), cfg)
			require.NoError(t, err)
			return b
		}},
		{"etcd", func(t *testing.T) store.StorageBackend {
			c := etcdtest.StartT(t, etcdtest.Options{})
			cfg := etcd.DefaultConfig()
			cfg.Endpoints = c.Endpoints()
			b, err := etcd.OpenWith(context.Background(), cfg)
			require.NoError(t, err)
			return b
		}},
		{"rocksdb", rocksEngine},
	}
}

// TestRoundTripThroughEveryEngine fills a memory database, then backs up
// each database and restores it into the next engine: memory → rocksdb →
// pebble → bbolt → redis → etcd → rocksdb. What the table API reads is
// the same at every step, and each backup is the same as the first (every
// key and every segment).
func TestRoundTripThroughEveryEngine(t *testing.T) {
	ctx := context.Background()
	var want string
	var first *backup.Index
	prev := ""
	for i, e := range engines() {
		b := e.open(t)
		dir := t.TempDir()
		segs := segment.FSStore(segment.DirFS(dir), dir)
		if i > 0 {
			rep, err := backup.Restore(ctx, prev, backup.Target{Backend: b, Segments: func(context.Context, store.StorageBackend) (segment.Store, error) {
				return segs, nil
			}}, backup.Options{})
			require.NoError(t, err, "restore into %s", e.name)
			require.Equal(t, len(first.Segments), rep.Segments)
		}
		m, err := flush.Open(ctx, b, flush.Options{Store: segs, GCGrace: -1, CompactSegments: flush.NeverCompact})
		require.NoError(t, err, e.name)
		if i == 0 {
			backuptest.Populate(t, m)
			want = backuptest.Dump(t, m.DB())
		} else {
			require.Equal(t, want, backuptest.Dump(t, m.DB()), "the data read on %s", e.name)
		}
		m.Stop()
		require.NoError(t, m.DB().Close())

		// Alternate directories and archives.
		loc := filepath.Join(t.TempDir(), fmt.Sprintf("step%d-%s", i, e.name))
		if i%2 == 1 {
			loc += ".tar.gz"
		}
		idx, err := backup.Backup(ctx, backup.Source{Backend: b, Name: e.name, Segments: segs}, loc, backup.Options{})
		require.NoError(t, err, "backup of %s", e.name)
		if first == nil {
			first = idx
		} else {
			require.Equal(t, first.Partitions, idx.Partitions, "the partitions backed up from %s", e.name)
			require.Equal(t, first.Segments, idx.Segments, "the segments backed up from %s", e.name)
			require.Equal(t, first.Tables, idx.Tables)
		}
		require.NoError(t, b.Close())
		prev = loc
	}
}
