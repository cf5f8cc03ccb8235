package badger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// open opens the database in dir with a memtable of mb MiB, wrapped by
// store.New, and returns the engine too, for a look at what is stored.
func open(t *testing.T, dir string, mb int) (store.StorageBackend, *engine) {
	t.Helper()
	c := DefaultConfig()
	c.Path, c.MemTableMB, c.SyncWrites = dir, mb, false
	e, err := openEngine(c)
	require.NoError(t, err)
	b := store.New(e)
	t.Cleanup(func() { _ = b.Close() })
	return b, e
}

// fill writes n keys "<prefix><i>" with values of size bytes into p, in
// batches within the backend's limits.
func fill(t *testing.T, b store.StorageBackend, p store.Partition, prefix string, n, size int) {
	t.Helper()
	ops := make([]store.Operation, n)
	for i := range ops {
		ops[i] = store.PutOp(p, fmt.Appendf(nil, "%s%08d", prefix, i), bytes.Repeat([]byte{'v'}, size))
	}
	for _, batch := range b.Capabilities().Split(ops) {
		require.NoError(t, b.Batch(context.Background(), batch))
	}
}

// count returns how many keys of p the backend returns.
func count(t *testing.T, b store.StorageBackend, p store.Partition) int {
	t.Helper()
	it, err := b.Scan(context.Background(), p, store.ScanOptions{})
	require.NoError(t, err)
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Close())
	return n
}

// stored returns how many keys Badger holds under prefix, whatever the
// registry says.
func stored(t *testing.T, e *engine, prefix []byte) int {
	t.Helper()
	n := 0
	require.NoError(t, e.db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	}))
	return n
}

// The batch limits are Badger's: a batch at both limits at once, in the
// form Badger counts largest (every value kept in the LSM tree, so counted
// whole), is one transaction that Badger takes.
func TestBatchAtTheLimitsFitsOneTransaction(t *testing.T) {
	for _, mb := range []int{MinMemTableMB, DefaultConfig().MemTableMB} {
		t.Run(fmt.Sprintf("memtable_mb=%d", mb), func(t *testing.T) {
			b, _ := open(t, t.TempDir(), mb)
			caps := b.Capabilities()
			p := store.MustPartition("p")
			require.NoError(t, b.CreatePartition(context.Background(), p))
			n, total := caps.MaxBatchOps, caps.MaxBatchBytes
			ops := make([]store.Operation, n)
			for i := range ops {
				key := fmt.Appendf(nil, "k%07d", i)
				size := total/n - len(key)
				if i < total%n {
					size++
				}
				ops[i] = store.PutOp(p, key, bytes.Repeat([]byte{'v'}, size))
			}
			require.Equal(t, total, store.BatchBytes(ops))
			require.NoError(t, caps.CheckBatch(ops))
			require.NoError(t, b.Batch(context.Background(), ops), "a batch at both limits applies")
			assert.Equal(t, n, count(t, b, p))
		})
	}
}

// A range delete that covers more keys than a Badger transaction holds is
// refused whole, with ErrInvalidArgument; the other operations of its batch
// are not applied either. One that fits applies.
func TestRangeDeleteOverATransactionIsRefusedWhole(t *testing.T) {
	ctx := context.Background()
	b, _ := open(t, t.TempDir(), MinMemTableMB)
	p, q := store.MustPartition("p"), store.MustPartition("q")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.CreatePartition(ctx, q))
	n := b.Capabilities().MaxBatchOps + 10
	fill(t, b, p, "k", n, 1)

	err := b.Batch(ctx, []store.Operation{
		store.PutOp(q, []byte("before"), []byte("v")),
		store.DeleteRangeOp(p, []byte("k"), []byte("l")),
	})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "more than one Badger transaction holds")
	assert.Equal(t, n, count(t, b, p), "nothing of the range was deleted")
	_, err = b.Get(ctx, q, []byte("before"))
	require.ErrorIs(t, err, store.ErrNotFound, "nothing of the batch was applied")

	require.NoError(t, b.Batch(ctx, []store.Operation{store.DeleteRangeOp(p, []byte("k"), fmt.Appendf(nil, "k%08d", n/2))}))
	assert.Equal(t, n-n/2, count(t, b, p))
}

// A purge stopped after its first chunk leaves the partition dropped: a
// partition created again under its name is empty. The next open finishes
// the purge: the old generation's keys and its pending-purge record are
// gone, and the new partition keeps its keys.
func TestDropResumesAnInterruptedPurge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, e := open(t, dir, MinMemTableMB)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	old, _ := e.parts.Get("p")
	// Keys of 1 KiB: a chunk holds about 1,900 of them.
	fill(t, b, p, string(bytes.Repeat([]byte{'k'}, 1000)), 5000, 10)

	stop := errors.New("stopped after one chunk")
	afterPurgeChunk = func(uint64) error { return stop }
	err := b.DropPartition(ctx, p)
	afterPurgeChunk = nil
	require.ErrorIs(t, err, stop)
	assert.ErrorContains(t, err, `partition "p" is dropped`)
	left := stored(t, e, genKey(old))
	require.Greater(t, left, 0, "the purge stopped half-way")
	require.Less(t, left, 5000, "the first chunk was deleted")
	require.Equal(t, 1, stored(t, e, append(bytes.Clone(purgePrefix), genKey(old)...)), "the pending-purge record is kept")

	exists, err := b.PartitionExists(ctx, p)
	require.NoError(t, err)
	require.False(t, exists)
	require.NoError(t, b.CreatePartition(ctx, p))
	fresh, _ := e.parts.Get("p")
	require.Greater(t, fresh, old, "a new generation")
	require.Equal(t, 0, count(t, b, p), "the partition created again is empty")
	require.NoError(t, b.Put(ctx, p, []byte("new"), []byte("v")))
	require.NoError(t, b.Close())

	b, e = open(t, dir, MinMemTableMB)
	assert.Equal(t, 0, stored(t, e, genKey(old)), "the open finished the purge")
	assert.Equal(t, 0, stored(t, e, purgePrefix), "and removed its record")
	parts, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	assert.Equal(t, []store.Partition{p}, parts)
	assert.Equal(t, 1, count(t, b, p))
}

// Generations are never handed out twice, across reopens too.
func TestGenerationsAreNeverReused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, e := open(t, dir, MinMemTableMB)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	first, _ := e.parts.Get("p")
	require.NoError(t, b.DropPartition(ctx, p))
	require.NoError(t, b.Close())

	b, e = open(t, dir, MinMemTableMB)
	require.NoError(t, b.CreatePartition(ctx, p))
	second, _ := e.parts.Get("p")
	assert.Greater(t, second, first)
}

// A range delete runs alone among writes: a put that returned before a
// reader saw the range delete's batch missing is removed by it. The writer
// puts new keys into the range and, after each, reads the round marker
// that the deleting batch writes; the deleter checks, after each round,
// which keys are left. A key whose put returned while the marker still said
// round j-1 must be gone after round j.
func TestRangeDeleteIsolatedFromConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	b, _ := open(t, t.TempDir(), DefaultConfig().MemTableMB)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("m"), []byte("0")))

	const puts = 2000
	seen := map[string]int{} // key → the round the marker said after its put
	var werr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := range puts {
			key := fmt.Sprintf("r/%08d", i)
			if werr = b.Put(ctx, p, []byte(key), []byte("v")); werr != nil {
				return
			}
			m, err := b.Get(ctx, p, []byte("m"))
			if werr = err; err != nil {
				return
			}
			seen[key], _ = strconv.Atoi(string(m))
		}
	}()
	writing := func() bool {
		select {
		case <-written:
			return false
		default:
			return true
		}
	}
	left := [][]string{nil} // the keys present right after each round
	for j := 1; writing(); j++ {
		require.NoError(t, b.Batch(ctx, []store.Operation{
			store.DeleteRangeOp(p, []byte("r/"), []byte("r0")),
			store.PutOp(p, []byte("m"), []byte(strconv.Itoa(j))),
		}))
		it, err := b.Scan(ctx, p, store.ScanOptions{Prefix: []byte("r/")})
		require.NoError(t, err)
		var keys []string
		for it.Next() {
			keys = append(keys, string(it.Key()))
		}
		require.NoError(t, it.Close())
		left = append(left, keys)
	}
	require.NoError(t, werr)
	require.Greater(t, len(left), 10, "rounds ran while the writer wrote")
	for j, keys := range left {
		for _, k := range keys {
			if m, ok := seen[k]; ok {
				require.GreaterOrEqual(t, m, j, "key %s was put before round %d committed, and survived it", k, j)
			}
		}
	}
}

// A database that KalamDB did not write, or wrote in another layout, is
// refused rather than read.
func TestForeignDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLoggingLevel(bdb.WARNING))
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *bdb.Txn) error { return txn.Set([]byte("someone else's"), []byte("v")) }))
	require.NoError(t, db.Close())
	c := DefaultConfig()
	c.Path = dir
	_, err = OpenWith(c)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "holds keys that KalamDB did not write")

	dir = t.TempDir()
	db, err = bdb.Open(bdb.DefaultOptions(dir).WithLoggingLevel(bdb.WARNING))
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *bdb.Txn) error { return txn.Set(formatKey, []byte("kalamdb-badger/9")) }))
	require.NoError(t, db.Close())
	c.Path = dir
	_, err = OpenWith(c)
	assert.ErrorContains(t, err, `holds layout "kalamdb-badger/9"; this version reads "kalamdb-badger/1"`)
}

// Validate names the key at fault.
func TestValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Path = " " }, "storage.badger.path: is empty"},
		{func(c *Config) { c.MemTableMB = MinMemTableMB - 1 }, "storage.badger.memtable_mb: is 15; use 16 to 1024"},
		{func(c *Config) { c.MemTableMB = MaxMemTableMB + 1 }, "storage.badger.memtable_mb: is 1025"},
	} {
		c := DefaultConfig()
		tc.change(&c)
		err := c.Validate()
		require.ErrorIs(t, err, store.ErrInvalidArgument)
		assert.ErrorContains(t, err, tc.want)
		_, err = OpenWith(c)
		assert.ErrorContains(t, err, tc.want, "OpenWith validates")
	}
}
