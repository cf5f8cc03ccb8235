package bbolt_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
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
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
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
	assert.Contains(t, err.Error(), "locked")
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

// longKey returns a key of n bytes made of head repeated, ending in tail.
func longKey(n int, head byte, tail string) []byte {
	k := bytes.Repeat([]byte{head}, n-len(tail))
	return append(k, tail...)
}

// TestLongKeys: keys around bbolt's 32 KiB limit, up to the contract's
// 64 KiB, read, scan (in every direction and range) and delete exactly like
// the memory backend's, survive a reopen and go with their partition.
func TestLongKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openDir(t, dir, nil)
	ref := memory.New()
	defer ref.Close()
	p, q := store.MustPartition("p"), store.MustPartition("q")
	for _, be := range []store.StorageBackend{b, ref} {
		require.NoError(t, be.CreatePartition(ctx, p))
		require.NoError(t, be.CreatePartition(ctx, q))
	}
	const s = bolt.MaxKeySize
	var keys [][]byte
	for _, n := range []int{1, 2, s - 1, s, s + 1, s + 2, 2 * s, store.MaxKeySize} {
		for _, head := range []byte{0x00, 'a', 0xff} {
			for _, tail := range []string{"", "\x00", "a", "b", "\xff", "\xff\xff"} {
				if len(tail) < n {
					keys = append(keys, longKey(n, head, tail))
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, k := range keys {
		v := []byte(fmt.Sprintf("v%d", i))
		for _, be := range []store.StorageBackend{b, ref} {
			require.NoError(t, be.Put(ctx, p, k, v))
			require.NoError(t, be.Put(ctx, q, k, v))
		}
	}
	// Delete a third of them, in batches that also write.
	for i := 0; i < len(keys); i += 3 {
		ops := []store.Operation{store.DeleteOp(p, keys[i]), store.PutOp(p, keys[(i+1)%len(keys)], []byte("again"))}
		require.NoError(t, b.Batch(ctx, ops))
		require.NoError(t, ref.Batch(ctx, ops))
	}

	bounds := append([][]byte{{}}, keys...)
	for _, n := range []int{s - 1, s, s + 1} {
		bounds = append(bounds, longKey(n, 'a', "a\x00"), longKey(n, 'a', "0"), longKey(n, 0xff, "\xff\xff\xff"))
	}
	compare := func(b store.StorageBackend) {
		t.Helper()
		for _, k := range keys {
			want, werr := ref.Get(ctx, p, k)
			got, gerr := b.Get(ctx, p, k)
			if werr != nil {
				require.ErrorIs(t, gerr, store.ErrNotFound, "get of a deleted %d-byte key", len(k))
				continue
			}
			require.NoError(t, gerr, "get of a %d-byte key", len(k))
			require.Equal(t, want, got, "get of a %d-byte key", len(k))
		}
		for i := 0; i < 400; i++ {
			o := store.ScanOptions{
				Start:          bounds[rng.IntN(len(bounds))],
				ExclusiveStart: rng.IntN(2) == 0,
				Reverse:        rng.IntN(2) == 0,
				Limit:          rng.IntN(4) * 3,
			}
			if pr := bounds[rng.IntN(len(bounds))]; rng.IntN(3) == 0 && len(pr) > 0 {
				o.Prefix = pr[:1+rng.IntN(len(pr))]
			}
			require.Equal(t, scanAll(t, ref, p, o), scanAll(t, b, p, o), "scan %d: prefix %d bytes, start %d bytes, exclusive %v, reverse %v, limit %d",
				i, len(o.Prefix), len(o.Start), o.ExclusiveStart, o.Reverse, o.Limit)
		}
	}
	compare(b)
	require.NoError(t, b.DropPartition(ctx, q))
	require.NoError(t, b.CreatePartition(ctx, q))
	require.Empty(t, scanAll(t, b, q, store.ScanOptions{}), "a dropped partition takes its long keys along")
	_, err := b.Get(ctx, q, keys[len(keys)-1])
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, b.Close())
	b = openDir(t, dir, nil)
	compare(b)

	// Deleting every long key leaves no long-key bucket behind.
	for _, k := range keys {
		require.NoError(t, b.Delete(ctx, p, k))
	}
	require.Empty(t, scanAll(t, b, p, store.ScanOptions{}))
	require.NoError(t, b.Close())
	db, err := bolt.Open(filepath.Join(dir, bbolt.FileName), 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var buckets []string
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			buckets = append(buckets, fmt.Sprintf("%q", name))
			return nil
		})
	}))
	sort.Strings(buckets)
	require.Equal(t, []string{`"\x00kalamdb"`, `"p"`, `"q"`}, buckets)
}

// scanAll returns the keys and values of a scan, as strings.
func scanAll(t *testing.T, b store.StorageBackend, p store.Partition, o store.ScanOptions) []string {
	t.Helper()
	it, err := b.Scan(context.Background(), p, o)
	require.NoError(t, err)
	out := []string{}
	for it.Next() {
		k := it.Key()
		out = append(out, fmt.Sprintf("%d:%x…%x:%08x=%s", len(k), k[:min(len(k), 2)], k[max(0, len(k)-3):], crc32.ChecksumIEEE(k), it.Value()))
	}
	require.NoError(t, it.Close())
	return out
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
