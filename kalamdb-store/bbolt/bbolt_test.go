package bbolt_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/bbolt"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

func harness() storetest.Harness {
	return harnessWith(bbolt.Name, func(c *bbolt.Config) {})
}

// harnessWith is harness with the default configuration changed by edit.
func harnessWith(name string, edit func(*bbolt.Config)) storetest.Harness {
	return storetest.Harness{
		Name: name,
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			cfg := bbolt.DefaultConfig()
			cfg.Path = t.TempDir()
			// The suite's second open of a database in use (SharedOpen)
			// waits this long for the lock.
			cfg.LockTimeoutSeconds = 1
			edit(&cfg)
			b, err := bbolt.OpenWith(cfg)
			require.NoError(t, err)
			reopen := func() (store.StorageBackend, error) { return bbolt.OpenWith(cfg) }
			return b, reopen
		},
		Register: bbolt.Register,
		Config:   func(t testing.TB) store.ConfigMap { return store.ConfigMap{"path": t.TempDir()} },
	}
}

// smallMap starts the memory map at bbolt's minimum, so that the suite's
// writes remap the file again and again under open iterators.
func smallMap(c *bbolt.Config) {
	c.InitialMmapMB = 0
	c.SyncWrites = false
}

func TestConformance(t *testing.T) { storetest.Run(t, harness()) }

// TestConformanceSmallMap runs the suite with the smallest memory map, so
// that it exercises the remap guard and iterator detaching.
func TestConformanceSmallMap(t *testing.T) {
	storetest.Run(t, harnessWith("bbolt-smallmap", smallMap))
}

func BenchmarkBBolt(b *testing.B) {
	b.Run("sync", func(b *testing.B) { storetest.Bench(b, harness()) })
	b.Run("nosync", func(b *testing.B) {
		storetest.Bench(b, harnessWith("bbolt-nosync", func(c *bbolt.Config) { c.SyncWrites = false }))
	})
}

func openDir(t *testing.T, dir string, edit func(*bbolt.Config)) store.StorageBackend {
	t.Helper()
	cfg := bbolt.DefaultConfig()
	cfg.Path = dir
	if edit != nil {
		edit(&cfg)
	}
	b, err := bbolt.OpenWith(cfg)
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
		{store.ConfigMap{"path": dir, "initial_mmap": 1}, "initial_mmap"},   // unknown key
		{store.ConfigMap{"path": dir, "sync_writes": "yes"}, "sync_writes"}, // wrong type
		{store.ConfigMap{"path": ""}, "storage.bbolt.path"},
		{store.ConfigMap{"path": " "}, "storage.bbolt.path"},
		{store.ConfigMap{"path": dir, "initial_mmap_mb": -1}, "storage.bbolt.initial_mmap_mb"},
		{store.ConfigMap{"path": dir, "initial_mmap_mb": bbolt.MaxInitialMmapMB + 1}, "storage.bbolt.initial_mmap_mb"},
		{store.ConfigMap{"path": dir, "lock_timeout_seconds": 0}, "storage.bbolt.lock_timeout_seconds"},
		{store.ConfigMap{"path": dir, "lock_timeout_seconds": 3601}, "storage.bbolt.lock_timeout_seconds"},
	} {
		_, err := bbolt.Open(ctx, c.section)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "%v", c.section)
		assert.Contains(t, err.Error(), c.key, "the error names the key")
	}
	_, err := os.Stat(filepath.Join(dir, bbolt.FileName))
	require.True(t, os.IsNotExist(err), "a refused configuration creates nothing")

	nested := filepath.Join(dir, "a", "b")
	b, err := bbolt.Open(ctx, store.ConfigMap{"path": nested, "sync_writes": false, "initial_mmap_mb": 0, "lock_timeout_seconds": 1})
	require.NoError(t, err, "the directory is created with its parents")
	require.NoError(t, b.Close())
	_, err = os.Stat(filepath.Join(nested, bbolt.FileName))
	require.NoError(t, err, "the database is the file %s in path", bbolt.FileName)
}

func TestConfigDefaults(t *testing.T) {
	c := bbolt.DefaultConfig()
	assert.Equal(t, bbolt.Config{Path: "data/bbolt", SyncWrites: true, InitialMmapMB: 1024, LockTimeoutSeconds: 5}, c)
	assert.NoError(t, c.Validate())
	assert.ErrorIs(t, bbolt.Config{}.Validate(), store.ErrInvalidArgument, "the zero Config is not valid")

	d := bbolt.DefaultConfig()
	require.NoError(t, store.DecodeTOML([]byte("sync_writes = false\ninitial_mmap_mb = 0\n"), &d))
	assert.Equal(t, bbolt.Config{Path: "data/bbolt", SyncWrites: false, InitialMmapMB: 0, LockTimeoutSeconds: 5}, d)
}

// TestCapabilities: snapshot scans and durable storage. Opening through a
// registry, and refusing unknown configuration keys, is the conformance
// suite's Factory behaviour.
func TestCapabilities(t *testing.T) {
	c := bbolt.DefaultConfig()
	c.Path = t.TempDir()
	b, err := bbolt.OpenWith(c)
	require.NoError(t, err)
	assert.Equal(t, store.Capabilities{SnapshotScans: true, Durable: true}, b.Capabilities())
	require.NoError(t, b.Close())
}

// TestSecondOpenTimesOut: the file belongs to one open backend; a second
// open waits lock_timeout_seconds and fails with a clear error.
func TestSecondOpenTimesOut(t *testing.T) {
	dir := t.TempDir()
	openDir(t, dir, nil)
	cfg := bbolt.DefaultConfig()
	cfg.Path, cfg.LockTimeoutSeconds = dir, 1
	_, err := bbolt.OpenWith(cfg)
	require.ErrorIs(t, err, bolt.ErrTimeout)
	assert.Contains(t, err.Error(), "is in use")
	assert.Contains(t, err.Error(), dir)
}

// TestForeignFileRefused: a bbolt file that KalamDB did not write is not
// taken over.
func TestForeignFileRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, bbolt.FileName), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("users"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}))
	require.NoError(t, db.Close())

	cfg := bbolt.DefaultConfig()
	cfg.Path = dir
	_, err = bbolt.OpenWith(cfg)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "did not write")
}

// TestFormatVersionChecked: a file of another layout version is refused.
func TestFormatVersionChecked(t *testing.T) {
	dir := t.TempDir()
	b := openDir(t, dir, nil)
	require.NoError(t, b.Close())

	db, err := bolt.Open(filepath.Join(dir, bbolt.FileName), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("\x00kalamdb")).Put([]byte("format"), []byte("kalamdb-bbolt/99"))
	}))
	require.NoError(t, db.Close())

	cfg := bbolt.DefaultConfig()
	cfg.Path = dir
	_, err = bbolt.OpenWith(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kalamdb-bbolt/99")
}

// within runs fn and crashes the test binary, printing every goroutine,
// if fn has not returned after d: the tests below would otherwise hang on a
// deadlock instead of failing.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	timer := time.AfterFunc(d, func() {
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		panic(fmt.Sprintf("%s: %s did not finish within %s: deadlock", t.Name(), what, d))
	})
	defer timer.Stop()
	fn()
}

// TestWriteWhileIteratorOpen: one goroutine holds open iterators and keeps
// writing (new keys, overwrites, deletes) until the file has outgrown its
// memory map many times over. No write waits for the iterators, and each
// iterator returns exactly the snapshot it started with.
func TestWriteWhileIteratorOpen(t *testing.T) {
	ctx := context.Background()
	b := openDir(t, t.TempDir(), smallMap)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	model := map[string]string{}
	filler := strings.Repeat("v", 1000)
	put := func(ops *[]store.Operation, k, v string) {
		*ops = append(*ops, store.PutOp(p, []byte(k), []byte(v)))
		model[k] = v
	}
	var ops []store.Operation
	for i := 0; i < 100; i++ {
		put(&ops, fmt.Sprintf("k%05d", i), filler)
	}
	require.NoError(t, b.Batch(ctx, ops))

	type open struct {
		it      store.Iterator
		reverse bool
		want    []string // "key=value" as of Scan, in scan order
		got     []string
	}
	snapshot := func(reverse bool) []string {
		out := make([]string, 0, len(model))
		for k, v := range model {
			out = append(out, k+"="+v)
		}
		sort.Strings(out)
		if reverse {
			slices.Reverse(out)
		}
		return out
	}
	within(t, 2*time.Minute, "writing under open iterators", func() {
		var its []*open
		n := 100
		for round := 0; round < 40; round++ {
			rev := round%2 == 1
			it, err := b.Scan(ctx, p, store.ScanOptions{Reverse: rev})
			require.NoError(t, err)
			its = append(its, &open{it: it, reverse: rev, want: snapshot(rev)})
			// About 100 KiB per round: 4 MiB in all, from a 32 KiB map.
			ops = ops[:0]
			for j := 0; j < 100; j++ {
				put(&ops, fmt.Sprintf("k%05d", n), filler)
				n++
			}
			put(&ops, fmt.Sprintf("k%05d", round), fmt.Sprintf("overwritten in round %d", round))
			require.NoError(t, b.Batch(ctx, ops))
			del := fmt.Sprintf("k%05d", 50+round)
			require.NoError(t, b.Delete(ctx, p, []byte(del)))
			delete(model, del)
			// Advance every open iterator a little between writes.
			for _, o := range its {
				if o.it.Next() {
					o.got = append(o.got, string(o.it.Key())+"="+string(o.it.Value()))
				}
			}
		}
		for i, o := range its {
			for o.it.Next() {
				o.got = append(o.got, string(o.it.Key())+"="+string(o.it.Value()))
			}
			require.NoError(t, o.it.Close())
			require.Equal(t, o.want, o.got, "iterator %d (reverse %v) returns exactly its snapshot", i, o.reverse)
		}
	})
	require.Equal(t, snapshot(false), scanAllRaw(t, b, p), "the writes all landed")
	require.NoError(t, b.Close(), "no iterator leaked, no transaction left open")
}

// TestWritersAndScannersAcrossRemaps: goroutines that scan (and hold their
// iterators while they write) run beside goroutines that only write, while
// the file grows from the smallest map.
func TestWritersAndScannersAcrossRemaps(t *testing.T) {
	ctx := context.Background()
	b := openDir(t, t.TempDir(), smallMap)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	val := bytes.Repeat([]byte("x"), 2000)
	within(t, 2*time.Minute, "concurrent writers and scanners", func() {
		errs := make(chan error, 8)
		for g := 0; g < 4; g++ {
			go func(g int) {
				errs <- func() error {
					for i := 0; i < 300; i++ {
						k := []byte(fmt.Sprintf("g%d/%05d", g, i))
						if g%2 == 0 {
							if err := b.Put(ctx, p, k, val); err != nil {
								return err
							}
							continue
						}
						// Scan, write while the iterator is open, then check
						// the iterator saw only keys written before it.
						it, err := b.Scan(ctx, p, store.ScanOptions{Prefix: []byte(fmt.Sprintf("g%d/", g))})
						if err != nil {
							return err
						}
						if err := b.Put(ctx, p, k, val); err != nil {
							it.Close()
							return err
						}
						n := 0
						for it.Next() {
							n++
						}
						if err := it.Close(); err != nil {
							return err
						}
						if n != i {
							return fmt.Errorf("goroutine %d round %d: scan saw %d keys, want %d", g, i, n, i)
						}
					}
					return nil
				}()
			}(g)
		}
		for g := 0; g < 4; g++ {
			require.NoError(t, <-errs)
		}
	})
}

// buckets returns the names of the top-level buckets of the database in
// dir, quoted, in order.
func buckets(t *testing.T, dir string) []string {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, bbolt.FileName), 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var names []string
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, fmt.Sprintf("%q", name))
			return nil
		})
	}))
	return names
}

// TestKeysInThePartitionBucket: keys up to store.MaxKeySize live in the
// partition's bucket as they are, and a dropped partition leaves nothing.
func TestKeysInThePartitionBucket(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openDir(t, dir, nil)
	p, q := store.MustPartition("p"), store.MustPartition("q")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.CreatePartition(ctx, q))
	top := bytes.Repeat([]byte{0xff}, store.MaxKeySize)
	require.NoError(t, b.Put(ctx, p, top, []byte("v")))
	require.NoError(t, b.Put(ctx, q, top, []byte("w")))
	require.NoError(t, b.DropPartition(ctx, q))
	require.NoError(t, b.Close())

	require.Equal(t, []string{`"\x00kalamdb"`, `"p"`}, buckets(t, dir))
	db, err := bolt.Open(filepath.Join(dir, bbolt.FileName), 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		assert.Equal(t, []byte("v"), tx.Bucket([]byte("p")).Get(top))
		return nil
	}))
}

// writeOverflow adds to the database in dir what earlier versions wrote for
// a key longer than bbolt's 32 KiB in partition: an entry under the key's
// first 32 KiB in the bucket partition 0x00 "long", holding the rest of the
// key. With an empty tail it leaves the bucket (and the nested one) empty.
func writeOverflow(t *testing.T, dir, partition string, key []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, bbolt.FileName), 0o600, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		long, err := tx.CreateBucketIfNotExists([]byte(partition + "\x00long"))
		if err != nil || key == nil {
			return err
		}
		nested, err := long.CreateBucketIfNotExists(key[:bolt.MaxKeySize])
		if err != nil || len(key) == bolt.MaxKeySize {
			return err
		}
		return nested.Put(key[bolt.MaxKeySize:], []byte("long value"))
	}))
}

// TestOverflowKeysRefused: a database in which an earlier version split
// keys over 32 KiB into overflow buckets is refused at open, naming every
// partition that holds such keys, rather than opened with those keys out of
// sight; the refusal changes nothing in the file.
func TestOverflowKeysRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openDir(t, dir, nil)
	users, other := store.MustPartition("users"), store.MustPartition("other")
	for _, p := range []store.Partition{users, other, store.MustPartition("plain")} {
		require.NoError(t, b.CreatePartition(ctx, p))
		require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	}
	require.NoError(t, b.Close())
	long := bytes.Repeat([]byte("u"), 40<<10)
	writeOverflow(t, dir, "users", long)
	writeOverflow(t, dir, "users", append(bytes.Clone(long), 'x'))
	writeOverflow(t, dir, "other", bytes.Repeat([]byte("o"), 64<<10))
	writeOverflow(t, dir, "plain", nil) // empty: no key hidden
	before := buckets(t, dir)

	cfg := bbolt.DefaultConfig()
	cfg.Path = dir
	_, err := bbolt.OpenWith(cfg)
	require.ErrorIs(t, err, store.ErrUnsupported)
	msg := err.Error()
	assert.Contains(t, msg, "holds keys longer than 4096 bytes, which this version no longer supports")
	assert.Contains(t, msg, `2 in partition "users"`)
	assert.Contains(t, msg, `1 in partition "other"`)
	assert.NotContains(t, msg, `"plain"`, "an empty overflow bucket hides no key")
	assert.Contains(t, msg, "delete those keys or drop their partitions")

	require.Equal(t, before, buckets(t, dir), "the refused open removed nothing")
	db, err := bolt.Open(filepath.Join(dir, bbolt.FileName), 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		assert.Equal(t, 2, tx.Bucket([]byte("users\x00long")).Bucket(long[:bolt.MaxKeySize]).Stats().KeyN)
		return nil
	}))
	require.NoError(t, db.Close())
	_, err = bbolt.OpenWith(cfg)
	require.ErrorIs(t, err, store.ErrUnsupported, "refused again on the next open")
}

// TestEmptyOverflowBucketsRemoved: overflow buckets that hold no key (an
// empty one, one with only an empty nested bucket) are removed at open,
// and their partitions work as before.
func TestEmptyOverflowBucketsRemoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openDir(t, dir, nil)
	p, q := store.MustPartition("p"), store.MustPartition("q")
	for _, x := range []store.Partition{p, q} {
		require.NoError(t, b.CreatePartition(ctx, x))
		require.NoError(t, b.Put(ctx, x, []byte("k"), []byte(x.Name())))
	}
	require.NoError(t, b.Close())
	writeOverflow(t, dir, "p", nil)
	writeOverflow(t, dir, "q", bytes.Repeat([]byte("q"), bolt.MaxKeySize))
	require.Equal(t, []string{`"\x00kalamdb"`, `"p"`, `"p\x00long"`, `"q"`, `"q\x00long"`}, buckets(t, dir))

	b = openDir(t, dir, nil)
	parts, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Partition{p, q}, parts)
	for _, x := range []store.Partition{p, q} {
		require.Equal(t, []string{"k=" + x.Name()}, scanAllRaw(t, b, x))
	}
	require.NoError(t, b.Close())
	require.Equal(t, []string{`"\x00kalamdb"`, `"p"`, `"q"`}, buckets(t, dir))
}

// scanAllRaw returns the pairs of p as "key=value", in key order.
func scanAllRaw(t *testing.T, b store.StorageBackend, p store.Partition) []string {
	t.Helper()
	it, err := b.Scan(context.Background(), p, store.ScanOptions{})
	require.NoError(t, err)
	out := []string{}
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	require.NoError(t, it.Close())
	return out
}

// BenchmarkCreatePartitions: creates per second at 100, 1,000 and 10,000
// partitions (docs/backend-comparison.md).
func BenchmarkCreatePartitions(b *testing.B) { storetest.BenchCreatePartitions(b, harness()) }
