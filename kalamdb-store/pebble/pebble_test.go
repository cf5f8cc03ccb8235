package pebble_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/pebble"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// harness opens backends on a fresh directory with cfg (Path is set here).
func harness(name string, cfg pebble.Config) storetest.Harness {
	return storetest.Harness{
		Name: name,
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			c := cfg
			c.Path = filepath.Join(t.TempDir(), "db")
			b, err := pebble.OpenWith(c)
			require.NoError(t, err)
			return b, func() (store.StorageBackend, error) { return pebble.OpenWith(c) }
		},
		Register: pebble.Register,
		Config: func(t testing.TB) store.ConfigMap {
			return store.ConfigMap{"path": filepath.Join(t.TempDir(), "db"), "sync_writes": cfg.SyncWrites}
		},
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, harness("pebble", pebble.DefaultConfig()))
}

// TestConformanceNoSync runs the suite with unsynced writes and the smallest
// memtable and cache.
func TestConformanceNoSync(t *testing.T) {
	cfg := pebble.DefaultConfig()
	cfg.SyncWrites = false
	cfg.MemTableMB, cfg.BlockCacheMB = 1, 1
	storetest.Run(t, harness("pebble-nosync", cfg))
}

func BenchmarkPebble(b *testing.B) {
	b.Run("sync", func(b *testing.B) { storetest.Bench(b, harness("pebble", pebble.DefaultConfig())) })
	cfg := pebble.DefaultConfig()
	cfg.SyncWrites = false
	b.Run("nosync", func(b *testing.B) { storetest.Bench(b, harness("pebble-nosync", cfg)) })
}

func open(t *testing.T, dir string) store.StorageBackend {
	t.Helper()
	cfg := pebble.DefaultConfig()
	cfg.Path = dir
	b, err := pebble.OpenWith(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConfigDecode(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	for _, c := range []struct {
		section store.ConfigMap
		key     string
	}{
		{store.ConfigMap{"path": dir, "block_cache_mbs": 1}, "block_cache_mbs"}, // unknown key
		{store.ConfigMap{"path": dir, "sync_writes": "yes"}, "sync_writes"},     // wrong type
		{store.ConfigMap{"path": ""}, "storage.pebble.path"},
		{store.ConfigMap{"path": "  "}, "storage.pebble.path"},
		{store.ConfigMap{"path": dir, "memtable_mb": 0}, "storage.pebble.memtable_mb"},
		{store.ConfigMap{"path": dir, "memtable_mb": 4096}, "storage.pebble.memtable_mb"},
		{store.ConfigMap{"path": dir, "block_cache_mb": 0}, "storage.pebble.block_cache_mb"},
		{store.ConfigMap{"path": dir, "block_cache_mb": -5}, "storage.pebble.block_cache_mb"},
	} {
		_, err := pebble.Open(ctx, c.section)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "%v", c.section)
		assert.Contains(t, err.Error(), c.key, "the error names the key")
	}
	_, err := os.Stat(filepath.Join(dir, "CURRENT"))
	require.True(t, os.IsNotExist(err), "a refused configuration creates nothing")

	nested := filepath.Join(dir, "a", "b")
	b, err := pebble.Open(ctx, store.ConfigMap{"path": nested, "sync_writes": false, "block_cache_mb": 1, "memtable_mb": 1})
	require.NoError(t, err, "the directory is created with its parents")
	require.NoError(t, b.Close())
}

func TestConfigDefaults(t *testing.T) {
	c := pebble.DefaultConfig()
	assert.Equal(t, pebble.Config{Path: "data/pebble", SyncWrites: true, BlockCacheMB: 64, MemTableMB: 64}, c)
	assert.NoError(t, c.Validate())
	assert.ErrorIs(t, pebble.Config{}.Validate(), store.ErrInvalidArgument, "the zero Config is not valid")

	// An empty section is the defaults.
	var d pebble.Config = pebble.DefaultConfig()
	require.NoError(t, store.ConfigMap(nil).Decode(&d))
	assert.Equal(t, pebble.DefaultConfig(), d)
	require.NoError(t, store.DecodeTOML([]byte("sync_writes = false\nmemtable_mb = 8\n"), &d))
	assert.Equal(t, pebble.Config{Path: "data/pebble", SyncWrites: false, BlockCacheMB: 64, MemTableMB: 8}, d)
}

// TestCapabilities: snapshot scans and durable storage. Opening through a
// registry, and refusing unknown configuration keys, is the conformance
// suite's Factory behaviour.
func TestCapabilities(t *testing.T) {
	c := pebble.DefaultConfig()
	c.Path = filepath.Join(t.TempDir(), "db")
	b, err := pebble.OpenWith(c)
	require.NoError(t, err)
	assert.Equal(t, store.Capabilities{SnapshotScans: true, Durable: true}, b.Capabilities())
	require.NoError(t, b.Close())
}

// TestSecondOpenFails: the directory belongs to one open backend.
func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	cfg := pebble.DefaultConfig()
	cfg.Path = dir
	_, err := pebble.OpenWith(cfg)
	require.Error(t, err, "a second open of a directory in use")
}

// TestForeignDatabaseRefused: a Pebble database that KalamDB did not write
// is not taken over.
func TestForeignDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := pdb.Open(dir, &pdb.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Set([]byte("users\x00k"), []byte("v"), pdb.Sync))
	require.NoError(t, db.Close())

	cfg := pebble.DefaultConfig()
	cfg.Path = dir
	_, err = pebble.OpenWith(cfg)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "not written by KalamDB")
}

// TestFormatVersionChecked: a store from another layout version is refused.
func TestFormatVersionChecked(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir)
	require.NoError(t, b.Close())

	db, err := pdb.Open(dir, &pdb.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Set([]byte("\x00format"), []byte("kalamdb-pebble/99"), pdb.Sync))
	require.NoError(t, db.Close())

	cfg := pebble.DefaultConfig()
	cfg.Path = dir
	_, err = pebble.OpenWith(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kalamdb-pebble/99")
}

// TestPrefixNames: partitions whose names are prefixes of each other, and
// keys that start with the separator bytes, stay apart; dropping one leaves
// the others whole, also after a reopen.
func TestPrefixNames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := open(t, dir)
	names := []string{"a", "a.b", "a:", "a_", "ab"}
	keys := []string{"\x00", "\x00\x00", "\x01", "x", "\xff", "\xff\xff"}
	for _, n := range names {
		p := store.MustPartition(n)
		require.NoError(t, b.CreatePartition(ctx, p))
		for _, k := range keys {
			require.NoError(t, b.Put(ctx, p, []byte(k), []byte(n+"="+k)))
		}
	}
	check := func(b store.StorageBackend, live []string) {
		t.Helper()
		for _, n := range live {
			p := store.MustPartition(n)
			it, err := b.Scan(ctx, p, store.ScanOptions{})
			require.NoError(t, err)
			var got []string
			for it.Next() {
				got = append(got, string(it.Value()))
			}
			require.NoError(t, it.Close())
			want := make([]string, len(keys))
			for i, k := range keys {
				want[i] = n + "=" + k
			}
			require.Equal(t, want, got, "partition %q", n)
			it, err = b.Scan(ctx, p, store.ScanOptions{Reverse: true, Limit: 1})
			require.NoError(t, err)
			require.True(t, it.Next())
			require.Equal(t, "\xff\xff", string(it.Key()), "last key of %q", n)
			require.NoError(t, it.Close())
		}
	}
	check(b, names)
	require.NoError(t, b.DropPartition(ctx, store.MustPartition("a")))
	live := []string{"a.b", "a:", "a_", "ab"}
	check(b, live)

	// Recreating the dropped partition gives an empty one.
	require.NoError(t, b.CreatePartition(ctx, store.MustPartition("a")))
	_, err := b.Get(ctx, store.MustPartition("a"), []byte("x"))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, b.DropPartition(ctx, store.MustPartition("a")))

	require.NoError(t, b.Close())
	b = open(t, dir)
	check(b, live)
	ps, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	got := make([]string, len(ps))
	for i, p := range ps {
		got[i] = p.Name()
	}
	require.Equal(t, live, got)
}

// TestManyKeysAcrossFlushes writes enough through a tiny memtable that the
// data lives in sstables, then checks every key and a reopen.
func TestManyKeysAcrossFlushes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := pebble.DefaultConfig()
	cfg.Path, cfg.SyncWrites, cfg.MemTableMB = dir, false, 1
	b, err := pebble.OpenWith(cfg)
	require.NoError(t, err)
	p, q := store.MustPartition("p"), store.MustPartition("q")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.CreatePartition(ctx, q))
	const n = 5000
	ops := make([]store.Operation, 0, 100)
	for i := 0; i < n; i++ {
		ops = append(ops, store.PutOp(p, []byte(fmt.Sprintf("k%06d", i)), []byte(fmt.Sprintf("value-%d-%01000d", i, i))))
		if i%2 == 0 {
			ops = append(ops, store.PutOp(q, []byte(fmt.Sprintf("k%06d", i)), []byte("q")))
		}
		if len(ops) >= 100 {
			require.NoError(t, b.Batch(ctx, ops))
			ops = ops[:0]
		}
	}
	require.NoError(t, b.Batch(ctx, ops))
	require.NoError(t, b.DropPartition(ctx, q))
	require.NoError(t, b.Close())

	b, err = pebble.OpenWith(cfg)
	require.NoError(t, err)
	defer b.Close()
	it, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	i := 0
	for it.Next() {
		require.Equal(t, fmt.Sprintf("k%06d", i), string(it.Key()))
		require.Equal(t, fmt.Sprintf("value-%d-%01000d", i, i), string(it.Value()))
		i++
	}
	require.NoError(t, it.Close())
	require.Equal(t, n, i)
	ok, err := b.PartitionExists(ctx, q)
	require.NoError(t, err)
	require.False(t, ok)
}

// TestBatchTooLarge: a batch past Pebble's 4 GiB limit is refused with an
// error, not a panic, and nothing of it is written.
func TestBatchTooLarge(t *testing.T) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	big := make([]byte, store.MaxValueSize) // shared by every operation
	ops := []store.Operation{store.PutOp(p, []byte("first"), []byte("v"))}
	for i := 0; i < 16; i++ {
		ops = append(ops, store.PutOp(p, []byte(fmt.Sprintf("big%02d", i)), big))
	}
	err := b.Batch(ctx, ops)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "at most")
	_, err = b.Get(ctx, p, []byte("first"))
	require.ErrorIs(t, err, store.ErrNotFound, "nothing of a refused batch is written")
}

// BenchmarkCreatePartitions: creates per second at 100, 1,000 and 10,000
// partitions (docs/backend-comparison.md).
func BenchmarkCreatePartitions(b *testing.B) {
	storetest.BenchCreatePartitions(b, harness("pebble", pebble.DefaultConfig()))
}
