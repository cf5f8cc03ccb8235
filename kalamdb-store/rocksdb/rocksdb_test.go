package rocksdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// testConfig is DefaultConfig in a fresh directory.
func testConfig(t testing.TB) Config {
	c := DefaultConfig()
	c.Path = filepath.Join(t.TempDir(), "db")
	return c
}

func harness() storetest.Harness {
	return storetest.Harness{
		Name: Name,
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			c := testConfig(t)
			b, err := OpenWith(c)
			require.NoError(t, err)
			return b, func() (store.StorageBackend, error) { return OpenWith(c) }
		},
		Register: Register,
		Config: func(t testing.TB) store.ConfigMap {
			return store.ConfigMap{"path": testConfig(t).Path}
		},
	}
}

func TestConformance(t *testing.T) { storetest.Run(t, harness()) }

func BenchmarkRocksDB(b *testing.B) { storetest.Bench(b, harness()) }

func open(t testing.TB, c Config) store.StorageBackend {
	t.Helper()
	b, err := OpenWith(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

var ctx = context.Background()

func TestOpenDecodesConfigStrictly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "db")
	b, err := Open(ctx, store.ConfigMap{
		"path":                  dir,
		"max_open_files":        -1,
		"block_cache_mb":        8,
		"write_buffer_mb":       2,
		"total_write_buffer_mb": 16,
		"max_wal_mb":            8,
		"compression":           "zstd",
		"sync_writes":           true,
		"memtable_bloom":        false,
	})
	require.NoError(t, err)
	p := store.MustPartition("t")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	require.NoError(t, b.Close())
	require.FileExists(t, filepath.Join(dir, "CURRENT"), "path, parents included, is created")

	_, err = Open(ctx, store.ConfigMap{"path": dir, "block_cache_md": 8})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.ErrorContains(t, err, "block_cache_md", "a misspelled key is named")

	_, err = Open(ctx, store.ConfigMap{"path": dir, "sync_writes": "yes"})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.ErrorContains(t, err, "sync_writes", "a mistyped value names its key")
}

func TestOpenDefaultsFromEmptySection(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r := store.NewRegistry()
	Register(r)
	b, err := r.Open(ctx, Name, nil)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	require.FileExists(t, filepath.Join(dir, DefaultConfig().Path, "CURRENT"), "the default path is relative to the working directory")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Open(cctx, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	cases := map[string]func(*Config){
		"path":                  func(c *Config) { c.Path = " " },
		"max_open_files":        func(c *Config) { c.MaxOpenFiles = 5 },
		"block_cache_mb":        func(c *Config) { c.BlockCacheMB = 0 },
		"write_buffer_mb":       func(c *Config) { c.WriteBufferMB = 4096 },
		"total_write_buffer_mb": func(c *Config) { c.TotalWriteBufferMB = 2; c.WriteBufferMB = 4 },
		"max_wal_mb":            func(c *Config) { c.MaxWALMB = -1 },
		"compression":           func(c *Config) { c.Compression = "LZ4" },
	}
	for key, mutate := range cases {
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		require.ErrorIs(t, err, store.ErrInvalidArgument, key)
		require.ErrorContains(t, err, "storage.rocksdb."+key, "the error names the key")
		_, err = OpenWith(c)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "OpenWith validates %s", key)
	}
	c := DefaultConfig()
	c.MaxOpenFiles, c.TotalWriteBufferMB = -1, 0
	require.NoError(t, c.Validate(), "-1 open files and no global write buffer limit are allowed")
}

func TestOpenTwiceFails(t *testing.T) {
	c := testConfig(t)
	open(t, c)
	_, err := OpenWith(c)
	require.Error(t, err, "RocksDB's lock file keeps a second open out")
	require.ErrorContains(t, err, c.Path)
}

func TestOpenCorruptDatabase(t *testing.T) {
	c := testConfig(t)
	require.NoError(t, os.MkdirAll(c.Path, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(c.Path, "CURRENT"), []byte("MANIFEST-999999\n"), 0o600))
	_, err := OpenWith(c)
	require.Error(t, err, "a CURRENT that names a missing MANIFEST is an error, not a fresh database")
}

// TestDefaultPartitionName checks that a partition may be called "default"
// and be dropped like any other, although RocksDB's "default" column family
// cannot be.
func TestDefaultPartitionName(t *testing.T) {
	c := testConfig(t)
	b := open(t, c)
	p := store.MustPartition("default")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	require.NoError(t, b.DropPartition(ctx, p))
	ok, err := b.PartitionExists(ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, b.CreatePartition(ctx, p))
	_, err = b.Get(ctx, p, []byte("k"))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, b.Put(ctx, p, []byte("k2"), []byte("v2")))
	require.NoError(t, b.Close())

	b = open(t, c)
	ps, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Partition{p}, ps)
	v, err := b.Get(ctx, p, []byte("k2"))
	require.NoError(t, err)
	require.Equal(t, "v2", string(v))
}

// TestForeignColumnFamilies opens a database that has column families this
// package did not create: they are opened (RocksDB requires it), left alone
// and not listed as partitions.
func TestForeignColumnFamilies(t *testing.T) {
	c := testConfig(t)
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	db, err := grocksdb.OpenDb(o, c.Path)
	require.NoError(t, err)
	for _, name := range []string{"foreign", "p/bad name", "p/ok"} {
		h, err := db.CreateColumnFamily(o, name)
		require.NoError(t, err)
		h.Destroy()
	}
	db.Close()

	b := open(t, c)
	ps, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Partition{store.MustPartition("ok")}, ps)
	require.NoError(t, b.Close())

	names, err := grocksdb.ListColumnFamilies(o, c.Path)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"default", sharedColumnFamily, "foreign", "p/bad name", "p/ok"}, names, "foreign column families are kept")
}

func TestLegacyNamesMapToColumnFamilies(t *testing.T) {
	for _, name := range []string{"default", "a", "a:b", "p", "x.y-z_1"} {
		p := store.MustPartition(name)
		back, ok := legacyPartitionOf(legacyColumnFamily(p))
		require.True(t, ok, name)
		require.Equal(t, p, back)
	}
	for _, cf := range []string{"default", "p", "p/", "q/a", "p/a b"} {
		_, ok := legacyPartitionOf(cf)
		require.False(t, ok, "column family %q holds no partition", cf)
	}
}

// TestKeyPrefixes checks the prefixes of partition ids: the uvarint of the
// id, none a prefix of another (so partitions never share a key), each with
// a span that holds exactly the keys that start with it, and the metadata
// prefix 0x00 outside every span.
func TestKeyPrefixes(t *testing.T) {
	ids := []uint64{1, 2, 127, 128, 129, 255, 256, 16383, 16384, 1 << 21, 1<<35 + 7, maxID}
	for _, id := range ids {
		p := prefixOf(id)
		require.Equal(t, binary.AppendUvarint(nil, id), p.bytes(), "id %d", id)
		require.LessOrEqual(t, p.n, 8, "id %d", id)
		lower, upper := p.span()
		require.Equal(t, p.bytes(), lower)
		require.Equal(t, store.PrefixSuccessor(lower), upper, "id %d: the span ends at the prefix's successor", id)
		require.Negative(t, bytes.Compare(nextKey, lower), "metadata sorts before id %d", id)
		require.Negative(t, bytes.Compare(partEntry("zzz"), lower), "the registry sorts before id %d", id)
		for _, other := range ids {
			if other != id {
				require.False(t, bytes.HasPrefix(prefixOf(other).bytes(), p.bytes()), "%d's prefix starts with %d's", other, id)
			}
		}
	}
}

// TestIteratorOutlivesDrop drops (and re-creates) a partition under open
// iterators in both directions and with bounds; each keeps reading its
// snapshot, the column-family handle survives until the last one closes,
// and the backend then closes cleanly (a handle destroyed too early, or
// never, would crash or abort the process).
func TestIteratorOutlivesDrop(t *testing.T) {
	b := open(t, testConfig(t))
	p := store.MustPartition("t")
	require.NoError(t, b.CreatePartition(ctx, p))
	for i := 0; i < 100; i++ {
		require.NoError(t, b.Put(ctx, p, []byte(fmt.Sprintf("k%03d", i)), []byte(fmt.Sprintf("v%d", i))))
	}
	opts := []store.ScanOptions{{}, {Reverse: true}, {Prefix: []byte("k05")}, {Start: []byte("k090"), Reverse: true, Limit: 5}}
	its := make([]store.Iterator, len(opts))
	for i, o := range opts {
		var err error
		its[i], err = b.Scan(ctx, p, o)
		require.NoError(t, err)
	}
	require.NoError(t, b.DropPartition(ctx, p))
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k050"), []byte("new")))
	want := []int{100, 100, 10, 5}
	for i, it := range its {
		n := 0
		for it.Next() {
			if string(it.Key()) == "k050" {
				require.Equal(t, "v50", string(it.Value()), "scan %d reads the dropped partition's data", i)
			}
			n++
		}
		require.NoError(t, it.Err())
		require.Equal(t, want[i], n, "scan %d", i)
		require.NoError(t, it.Close())
		require.NoError(t, it.Close(), "closing twice is safe")
	}
	v, err := b.Get(ctx, p, []byte("k050"))
	require.NoError(t, err)
	require.Equal(t, "new", string(v))
	require.NoError(t, b.Close())
}

// TestLeakedIteratorOnDroppedPartition leaves an iterator open on a dropped
// partition; Close reports it, destroys its handle and closes the database.
func TestLeakedIteratorOnDroppedPartition(t *testing.T) {
	c := testConfig(t)
	b := open(t, c)
	p := store.MustPartition("t")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	it, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.NoError(t, b.DropPartition(ctx, p))
	require.ErrorIs(t, b.Close(), store.ErrLeakedIterators)
	require.False(t, it.Next())
	require.ErrorIs(t, it.Close(), store.ErrClosed)
	b = open(t, c) // the lock was released
	ps, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Empty(t, ps)
}

// TestReopenManyPartitions checks that partitions created and dropped at
// run time, with data in memtables and in flushed files, are found again.
func TestReopenManyPartitions(t *testing.T) {
	c := testConfig(t)
	c.WriteBufferMB, c.TotalWriteBufferMB = 1, 4 // force flushes
	b := open(t, c)
	val := make([]byte, 1000)
	want := map[string]int{}
	for i := 0; i < 40; i++ {
		p := store.MustPartition(fmt.Sprintf("part%02d", i))
		require.NoError(t, b.CreatePartition(ctx, p))
		n := 10 + i*50
		ops := make([]store.Operation, 0, n)
		for k := 0; k < n; k++ {
			ops = append(ops, store.PutOp(p, []byte(fmt.Sprintf("%06d", k)), val))
		}
		require.NoError(t, b.Batch(ctx, ops))
		if i%3 == 0 {
			require.NoError(t, b.DropPartition(ctx, p))
			continue
		}
		want[p.Name()] = n
	}
	require.NoError(t, b.Close())
	b = open(t, c)
	ps, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Len(t, ps, len(want))
	for _, p := range ps {
		it, err := b.Scan(ctx, p, store.ScanOptions{})
		require.NoError(t, err)
		n := 0
		for it.Next() {
			require.Equal(t, fmt.Sprintf("%06d", n), string(it.Key()))
			require.Len(t, it.Value(), len(val))
			n++
		}
		require.NoError(t, it.Close())
		assert.Equal(t, want[p.Name()], n, "keys of %s", p)
	}
}

func TestCapabilities(t *testing.T) {
	b := open(t, testConfig(t))
	require.Equal(t, store.Capabilities{SnapshotScans: true, Durable: true}, b.Capabilities())
}

// TestBindingLayout checks what the C read paths assume of grocksdb: that
// DB and ColumnFamilyHandle keep their C object in a first field c (which
// checkBinding verifies at every open), that the check refuses other
// layouts, and that the C objects found there are the ones grocksdb uses:
// values written through grocksdb are read back through them and the
// other way round.
func TestBindingLayout(t *testing.T) {
	require.NoError(t, checkBinding())
	type good struct {
		c    *int
		name string
	}
	type renamed struct{ p *int }
	type notFirst struct {
		n int
		c *int
	}
	type notPointer struct{ c int }
	require.NoError(t, checkFirstFieldC(reflect.TypeFor[good]()))
	for _, typ := range []reflect.Type{reflect.TypeFor[renamed](), reflect.TypeFor[notFirst](), reflect.TypeFor[notPointer](), reflect.TypeFor[struct{}](), reflect.TypeFor[int]()} {
		require.Error(t, checkFirstFieldC(typ), "%v", typ)
	}

	e := openTestEngine(t)
	p := store.MustPartition("layout")
	require.NoError(t, e.CreatePartition(context.Background(), p))
	pt, ok := e.parts.Get(p.Name())
	require.True(t, ok)
	h := pt.h
	key := func(k string) []byte { return append(pt.prefix.bytes(), k...) }
	require.NoError(t, e.db.PutCF(e.write, h, key("k"), []byte("through grocksdb")))
	v, err := getC(dbC(e.db), e.read, familyC(h), pt.prefix, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "through grocksdb", string(v))
	_, err = getC(dbC(e.db), e.read, familyC(h), pt.prefix, []byte("missing"))
	require.ErrorIs(t, err, errNotFound)

	// And the other way: written and deleted through the C objects, read
	// through grocksdb; a key too long for the C helpers' stack buffer too.
	long := bytes.Repeat([]byte("x"), 1000)
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	for _, k := range [][]byte{[]byte("k2"), long} {
		require.NoError(t, putC(dbC(e.db), writeC(e.write), familyC(h), pt.prefix, k, []byte("through C")))
		s, err := e.db.GetCF(ro, h, key(string(k)))
		require.NoError(t, err)
		require.Equal(t, "through C", string(s.Data()))
		s.Free()
		require.NoError(t, deleteC(dbC(e.db), writeC(e.write), familyC(h), pt.prefix, k))
		s, err = e.db.GetCF(ro, h, key(string(k)))
		require.NoError(t, err)
		require.False(t, s.Exists())
	}
}

// TestIteratorOwnsItsBounds checks that an engine iterator copies its
// bounds (RocksDB keeps pointers to them for the iterator's life): the
// caller's slices may change or be collected after Scan returns.
func TestIteratorOwnsItsBounds(t *testing.T) {
	e := openTestEngine(t)
	ctx := context.Background()
	p := store.MustPartition("bounds")
	require.NoError(t, e.CreatePartition(ctx, p))
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		require.NoError(t, e.Put(ctx, p, []byte(k), []byte(k)))
	}
	for _, reverse := range []bool{false, true} {
		lower, upper := []byte("b"), []byte("d")
		it, err := e.Scan(ctx, p, store.Range{Lower: lower, Upper: upper, Reverse: reverse})
		require.NoError(t, err)
		lower[0], upper[0] = 'a', 'z' // would widen the scan to every key
		var got []string
		for it.Next() {
			got = append(got, string(it.Key()))
		}
		require.NoError(t, it.Close())
		want := []string{"b", "c"}
		if reverse {
			want = []string{"c", "b"}
		}
		require.Equal(t, want, got, "reverse=%v", reverse)
	}
}

// openTestEngine opens an engine (without store.New) in a temporary
// directory and closes it when the test ends.
func openTestEngine(t *testing.T) *engine {
	t.Helper()
	c := DefaultConfig()
	c.Path = t.TempDir()
	e, err := openEngine(c)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e
}

// newestOptions returns the contents of the newest OPTIONS file of the
// database at path, and how many there are.
func newestOptions(t *testing.T, path string) (string, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(path, "OPTIONS-*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	newest := files[0]
	for _, f := range files {
		if len(f) > len(newest) || (len(f) == len(newest) && f > newest) {
			newest = f
		}
	}
	data, err := os.ReadFile(newest)
	require.NoError(t, err)
	return string(data), len(files)
}

// TestMemtableBloom reads the OPTIONS file RocksDB writes: by default the
// shared column family (which holds every partition) and a legacy
// partition's column family (with memtables of at most 4 MiB) have a
// whole-key memtable Bloom filter (and small arena blocks), and with
// memtable_bloom = false neither has.
func TestMemtableBloom(t *testing.T) {
	require.True(t, DefaultConfig().MemtableBloom, "on by default")
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			c := testConfig(t)
			c.MemtableBloom = on
			makeLegacy(t, c.Path, map[string]map[string]string{"old": nil})
			open(t, c)
			data, _ := newestOptions(t, c.Path)
			buffers := map[string]int{sharedColumnFamily: c.WriteBufferMB << 20, "p/old": legacyWriteBufferMB << 20}
			families := 0
			for _, sec := range strings.Split(data, "[CFOptions ")[1:] {
				name := strings.Trim(sec[:strings.IndexByte(sec, ']')], `"`)
				buffer, ok := buffers[name]
				if !ok {
					continue
				}
				families++
				want := []string{"memtable_whole_key_filtering=false", "memtable_prefix_bloom_size_ratio=0.000000",
					fmt.Sprintf("arena_block_size=%d", min(buffer/8, 1<<20))}
				if on {
					want = []string{"memtable_whole_key_filtering=true", "memtable_prefix_bloom_size_ratio=0.010000", "arena_block_size=65536"}
				}
				want = append(want, fmt.Sprintf("write_buffer_size=%d", buffer))
				for _, opt := range want {
					assert.True(t, strings.Contains(sec, "\n  "+opt+"\n"), "%s lacks %s", name, opt)
				}
			}
			assert.Equal(t, 2, families, "the shared and the legacy column family are in the OPTIONS file")
		})
	}
}

// TestCreatesTouchNoColumnFamily checks that creating and dropping
// partitions creates and drops no column family, so RocksDB writes no
// OPTIONS file (the O(n) cost of a column family change).
func TestCreatesTouchNoColumnFamily(t *testing.T) {
	c := testConfig(t)
	b := open(t, c)
	_, before := newestOptions(t, c.Path)
	for i := 0; i < 50; i++ {
		p := store.MustPartition(fmt.Sprintf("t%02d", i))
		require.NoError(t, b.CreatePartition(ctx, p))
		require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
		if i%2 == 0 {
			require.NoError(t, b.DropPartition(ctx, p))
		}
	}
	_, after := newestOptions(t, c.Path)
	require.Equal(t, before, after, "no OPTIONS file was written")
	require.NoError(t, b.Close())
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	names, err := grocksdb.ListColumnFamilies(o, c.Path)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{metaColumnFamily, sharedColumnFamily}, names)
}
