package rocksdb

import (
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/linxGnu/grocksdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// makeLegacy writes, straight through grocksdb, a database in the layout of
// earlier versions: each partition in a column family "p/<name>" of its
// own, its keys as they are, the default column family empty.
func makeLegacy(t *testing.T, path string, parts map[string]map[string]string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(path, 0o750))
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	db, err := grocksdb.OpenDb(o, path)
	require.NoError(t, err)
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for name, kvs := range parts {
		h, err := db.CreateColumnFamily(o, legacyColumnFamily(store.MustPartition(name)))
		require.NoError(t, err)
		for k, v := range kvs {
			require.NoError(t, db.PutCF(wo, h, []byte(k), []byte(v)))
		}
		h.Destroy()
	}
	db.Close()
}

// columnFamilies lists the column families of the closed database at path.
func columnFamilies(t *testing.T, path string) []string {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	names, err := grocksdb.ListColumnFamilies(o, path)
	require.NoError(t, err)
	sort.Strings(names)
	return names
}

// openAll opens every column family of the database at path through
// grocksdb, for tests that change it by hand; closeAll closes it.
func openAll(t *testing.T, path string) (*grocksdb.DB, map[string]*grocksdb.ColumnFamilyHandle) {
	t.Helper()
	names := columnFamilies(t, path)
	o := grocksdb.NewDefaultOptions()
	opts := make([]*grocksdb.Options, len(names))
	for i := range opts {
		opts[i] = o
	}
	db, handles, err := grocksdb.OpenDbColumnFamilies(o, path, names, opts)
	require.NoError(t, err)
	hs := map[string]*grocksdb.ColumnFamilyHandle{}
	for i, name := range names {
		hs[name] = handles[i]
	}
	return db, hs
}

func closeAll(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle) {
	for _, h := range hs {
		h.Destroy()
	}
	db.Close()
}

func scanAll(t *testing.T, b store.StorageBackend, p store.Partition, o store.ScanOptions) []string {
	t.Helper()
	it, err := b.Scan(ctx, p, o)
	require.NoError(t, err)
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	require.NoError(t, it.Close())
	return out
}

// TestLegacyLayout opens a database written in the layout of earlier
// versions (one column family per partition): every partition and key is
// there, legacy partitions are read, written, batched together with new
// ones and dropped; a partition created again under a dropped legacy name
// is a new, empty one in the shared column family; everything survives a
// reopen, and the dropped legacy column family is gone.
func TestLegacyLayout(t *testing.T) {
	c := testConfig(t)
	makeLegacy(t, c.Path, map[string]map[string]string{
		"a":       {"k1": "a1", "k2": "a2", "k3": "a3"},
		"default": {"k": "d"},
		"empty":   nil,
	})
	b := open(t, c)
	a, def, empty, fresh := store.MustPartition("a"), store.MustPartition("default"), store.MustPartition("empty"), store.MustPartition("fresh")
	ps, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Partition{a, def, empty}, ps)
	require.Equal(t, []string{"k1=a1", "k2=a2", "k3=a3"}, scanAll(t, b, a, store.ScanOptions{}))
	require.Equal(t, []string{"k3=a3", "k2=a2"}, scanAll(t, b, a, store.ScanOptions{Start: []byte("k3"), Reverse: true, Limit: 2}))
	v, err := b.Get(ctx, def, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "d", string(v))

	// Writes, and a batch across a legacy and a new partition.
	require.NoError(t, b.CreatePartition(ctx, fresh))
	require.NoError(t, b.Put(ctx, a, []byte("k4"), []byte("a4")))
	require.NoError(t, b.Batch(ctx, []store.Operation{
		store.DeleteOp(a, []byte("k1")),
		store.PutOp(fresh, []byte("f"), []byte("1")),
		store.PutOp(empty, []byte("e"), []byte("1")),
		store.DeleteRangeOp(def, []byte("a"), []byte("z")),
	}))
	require.Equal(t, []string{"k2=a2", "k3=a3", "k4=a4"}, scanAll(t, b, a, store.ScanOptions{}))
	require.Empty(t, scanAll(t, b, def, store.ScanOptions{}))

	// A legacy partition dropped under an open iterator, then created again.
	it, err := b.Scan(ctx, a, store.ScanOptions{})
	require.NoError(t, err)
	require.NoError(t, b.DropPartition(ctx, a))
	require.NoError(t, b.CreatePartition(ctx, a))
	require.Empty(t, scanAll(t, b, a, store.ScanOptions{}), "a partition created again under a dropped legacy name is empty")
	require.NoError(t, b.Put(ctx, a, []byte("new"), []byte("n")))
	var old []string
	for it.Next() {
		old = append(old, string(it.Key()))
	}
	require.NoError(t, it.Close())
	require.Equal(t, []string{"k2", "k3", "k4"}, old, "the iterator reads the dropped column family's snapshot")
	require.NoError(t, b.Close())

	require.Equal(t, []string{"default", sharedColumnFamily, "p/default", "p/empty"}, columnFamilies(t, c.Path),
		"the dropped legacy column family is gone")
	b = open(t, c)
	ps, err = b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Partition{a, def, empty, fresh}, ps)
	require.Equal(t, []string{"new=n"}, scanAll(t, b, a, store.ScanOptions{}))
	require.Equal(t, []string{"e=1"}, scanAll(t, b, empty, store.ScanOptions{}))
	require.Equal(t, []string{"f=1"}, scanAll(t, b, fresh, store.ScanOptions{}))
}

// TestBothLayoutsRefused: a name both in the registry and as a legacy
// column family is never written by this package; open refuses it rather
// than pick one.
func TestBothLayoutsRefused(t *testing.T) {
	c := testConfig(t)
	b := open(t, c)
	require.NoError(t, b.CreatePartition(ctx, store.MustPartition("x")))
	require.NoError(t, b.Close())
	db, hs := openAll(t, c.Path)
	h, err := db.CreateColumnFamily(grocksdb.NewDefaultOptions(), "p/x")
	require.NoError(t, err)
	h.Destroy()
	closeAll(db, hs)

	_, err = OpenWith(c)
	require.ErrorContains(t, err, `partition "x" is both`)
}

// TestIDsNeverReused: a partition dropped and created again, before and
// after a reopen, gets a new id each time, and never sees the old keys.
func TestIDsNeverReused(t *testing.T) {
	c := testConfig(t)
	e, err := openEngine(c)
	require.NoError(t, err)
	b := store.New(e)
	p := store.MustPartition("t")
	seen := map[uint64]bool{}
	for round := 0; round < 3; round++ {
		require.NoError(t, b.CreatePartition(ctx, p))
		pt, ok := e.parts.Get(p.Name())
		require.True(t, ok)
		require.False(t, seen[pt.id], "round %d: id %d was given before", round, pt.id)
		seen[pt.id] = true
		_, err := b.Get(ctx, p, []byte("k"))
		require.ErrorIs(t, err, store.ErrNotFound, "round %d: no key of an earlier partition comes back", round)
		require.NoError(t, b.Put(ctx, p, []byte("k"), []byte(fmt.Sprint(round))))
		require.NoError(t, b.DropPartition(ctx, p))
		if round == 1 {
			require.NoError(t, b.Close())
			e, err = openEngine(c)
			require.NoError(t, err)
			b = store.New(e)
		}
	}
	require.NoError(t, b.Close())
}

// TestInterruptedDrop checks what a drop leaves when it is cut short. The
// drop is one atomic write (registry entry and range deletion), so a crash
// leaves the partition whole or gone; this test builds by hand the state a
// partial drop would leave, the entry gone but the keys still there, and
// the state of a lost id counter, and checks that a partition created again
// under the same name sees none of the old keys: the id is new.
func TestInterruptedDrop(t *testing.T) {
	c := testConfig(t)
	b := open(t, c)
	p := store.MustPartition("t")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.CreatePartition(ctx, store.MustPartition("u")))
	require.NoError(t, b.Put(ctx, p, []byte("old"), []byte("v")))
	require.NoError(t, b.Close())

	// Delete the registry entry of t, and the id counter, leaving t's keys.
	db, hs := openAll(t, c.Path)
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	require.NoError(t, db.DeleteCF(wo, hs[metaColumnFamily], partEntry("t")))
	require.NoError(t, db.DeleteCF(wo, hs[metaColumnFamily], nextKey))
	closeAll(db, hs)

	b = open(t, c)
	ok, err := b.PartitionExists(ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, b.CreatePartition(ctx, p))
	require.Empty(t, scanAll(t, b, p, store.ScanOptions{}), "the old keys do not come back")
	_, err = b.Get(ctx, p, []byte("old"))
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestOpenRefusesOtherData: a database whose default column family holds
// data but no format record was not written by KalamDB, and one with
// another layout version is refused; both errors say why.
func TestOpenRefusesOtherData(t *testing.T) {
	for _, tc := range []struct {
		key, value, want string
	}{
		{"user key", "v", "no KalamDB format record"},
		{string(formatKey), "kalamdb-rocksdb/9", `holds layout "kalamdb-rocksdb/9"`},
	} {
		c := testConfig(t)
		require.NoError(t, os.MkdirAll(c.Path, 0o750))
		o := grocksdb.NewDefaultOptions()
		o.SetCreateIfMissing(true)
		db, err := grocksdb.OpenDb(o, c.Path)
		require.NoError(t, err)
		wo := grocksdb.NewDefaultWriteOptions()
		require.NoError(t, db.Put(wo, []byte(tc.key), []byte(tc.value)))
		wo.Destroy()
		db.Close()
		o.Destroy()

		_, err = OpenWith(c)
		require.ErrorContains(t, err, tc.want)
		require.ErrorContains(t, err, c.Path)
		require.Equal(t, []string{"default"}, columnFamilies(t, c.Path), "a refused database is left as it was")
	}
}

// TestRegistryOnDisk checks the records a create writes: the format
// record, the registry entry (the id as a uvarint) and the counter.
func TestRegistryOnDisk(t *testing.T) {
	c := testConfig(t)
	b := open(t, c)
	for _, name := range []string{"a", "b"} {
		require.NoError(t, b.CreatePartition(ctx, store.MustPartition(name)))
	}
	require.NoError(t, b.DropPartition(ctx, store.MustPartition("a")))
	require.NoError(t, b.Close())

	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	db, err := grocksdb.OpenDbForReadOnly(o, c.Path, false)
	require.NoError(t, err)
	defer db.Close()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	get := func(k []byte) []byte {
		v, err := db.GetBytes(ro, k)
		require.NoError(t, err)
		return v
	}
	assert.Equal(t, formatVersion, string(get(formatKey)))
	assert.Equal(t, []byte{2}, get(partEntry("b")), "b got id 2")
	assert.Nil(t, get(partEntry("a")), "a's entry is gone")
	assert.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 3}, get(nextKey))
}

// TestCorruptRegistry: open refuses a registry it cannot trust, with an
// error that says what is wrong, rather than guess: an entry whose id does
// not decode or is 0, two partitions with one id, an invalid name, a
// counter of the wrong size, entries without the shared column family.
func TestCorruptRegistry(t *testing.T) {
	cases := []struct {
		name string
		edit func(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle, wo *grocksdb.WriteOptions) error
		want string
	}{
		{"id 0", func(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle, wo *grocksdb.WriteOptions) error {
			return db.PutCF(wo, hs[metaColumnFamily], partEntry("a"), []byte{0})
		}, `corrupt registry entry of partition "a"`},
		{"truncated id", func(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle, wo *grocksdb.WriteOptions) error {
			return db.PutCF(wo, hs[metaColumnFamily], partEntry("a"), []byte{0x80})
		}, `corrupt registry entry of partition "a"`},
		{"one id twice", func(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle, wo *grocksdb.WriteOptions) error {
			return db.PutCF(wo, hs[metaColumnFamily], partEntry("c"), []byte{1})
		}, `partitions "a" and "c" have the same id 1`},
		{"invalid name", func(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle, wo *grocksdb.WriteOptions) error {
			return db.PutCF(wo, hs[metaColumnFamily], partEntry("bad name"), []byte{9})
		}, "corrupt registry entry"},
		{"counter", func(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle, wo *grocksdb.WriteOptions) error {
			return db.PutCF(wo, hs[metaColumnFamily], nextKey, []byte{1, 2})
		}, "corrupt id counter"},
		{"no shared column family", func(db *grocksdb.DB, hs map[string]*grocksdb.ColumnFamilyHandle, _ *grocksdb.WriteOptions) error {
			return db.DropColumnFamily(hs[sharedColumnFamily])
		}, `the column family "kalamdb/partitions" that holds them is missing`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			b := open(t, c)
			require.NoError(t, b.CreatePartition(ctx, store.MustPartition("a")))
			require.NoError(t, b.CreatePartition(ctx, store.MustPartition("b")))
			require.NoError(t, b.Close())
			db, hs := openAll(t, c.Path)
			wo := grocksdb.NewDefaultWriteOptions()
			err := tc.edit(db, hs, wo)
			wo.Destroy()
			closeAll(db, hs)
			require.NoError(t, err)

			_, err = OpenWith(c)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, c.Path)
		})
	}
}
