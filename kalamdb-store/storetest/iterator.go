package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func testIteratorLifecycle(t *testing.T, e *env) {
	p := e.part(t, "data")
	e.put(t, p, "a", "1")
	e.put(t, p, "b", "2")

	it, err := e.b.Scan(e.ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.Nil(t, it.Key(), "Key before the first Next")
	require.Nil(t, it.Value(), "Value before the first Next")
	require.True(t, it.Next())
	require.Equal(t, "a", string(it.Key()))
	require.Equal(t, "1", string(it.Value()))
	require.True(t, it.Next())
	require.Equal(t, "b", string(it.Key()))
	require.False(t, it.Next())
	require.Nil(t, it.Key(), "Key after the end")
	require.False(t, it.Next(), "Next after the end stays false")
	require.NoError(t, it.Err())
	require.NoError(t, it.Close(), "Close after exhaustion")
	require.NoError(t, it.Close(), "Close twice")
	require.False(t, it.Next(), "Next after Close")
	require.Nil(t, it.Key())

	// Closing early, before the end and before any Next.
	it, err = e.b.Scan(e.ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.NoError(t, it.Close())
	require.NoError(t, it.Close())
	require.False(t, it.Next())

	it, err = e.b.Scan(e.ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.True(t, it.Next())
	require.NoError(t, it.Close())
	require.False(t, it.Next())

	// Nothing leaked: Close of the backend reports no leak.
	require.NoError(t, e.b.Close())
}

// testIteratorUnderWrites writes, overwrites and deletes while an iterator is
// open (before its first Next and between Nexts). A snapshot backend must
// show exactly the data as of Scan; any backend must keep order, never repeat
// a key, and return every key that was present and untouched throughout.
func testIteratorUnderWrites(t *testing.T, e *env) {
	snapshot := e.b.Capabilities().SnapshotScans
	for _, rev := range []bool{false, true} {
		p := e.part(t, fmt.Sprintf("w%v", rev))
		before := map[string]string{}
		for i := 0; i < 200; i++ {
			k := fmt.Sprintf("k%03d", i*2)
			before[k] = "old"
			e.put(t, p, k, "old")
		}
		it, err := e.b.Scan(e.ctx, p, store.ScanOptions{Reverse: rev})
		require.NoError(t, err)
		touched := map[string]bool{}
		write := func(i int) {
			switch i % 3 {
			case 0: // new key between existing ones
				k := fmt.Sprintf("k%03d", i*2+1)
				e.put(t, p, k, "new")
				touched[k] = true
			case 1: // overwrite
				k := fmt.Sprintf("k%03d", (i*2)%400)
				e.put(t, p, k, "new")
				touched[k] = true
			case 2: // delete
				k := fmt.Sprintf("k%03d", (i*2+100)%400)
				require.NoError(t, e.b.Delete(e.ctx, p, []byte(k)))
				touched[k] = true
			}
		}
		for i := 0; i < 30; i++ {
			write(i)
		}
		var got []kv
		for i := 30; it.Next(); i++ {
			got = append(got, kv{string(it.Key()), string(it.Value())})
			if i < 150 {
				write(i)
			}
		}
		require.NoError(t, it.Err())
		require.NoError(t, it.Close())

		if snapshot {
			require.Equal(t, reference(before, store.ScanOptions{Reverse: rev}), got,
				"a snapshot iterator sees the partition as of Scan (reverse=%v)", rev)
			continue
		}
		seen := map[string]bool{}
		for i, x := range got {
			require.False(t, seen[x.K], "key %q returned twice", x.K)
			seen[x.K] = true
			if i > 0 {
				if rev {
					require.Greater(t, got[i-1].K, x.K, "descending order")
				} else {
					require.Less(t, got[i-1].K, x.K, "ascending order")
				}
			}
			if !touched[x.K] {
				require.Equal(t, before[x.K], x.V, "untouched key %q keeps its value", x.K)
			}
		}
		for k := range before {
			if !touched[k] {
				require.True(t, seen[k], "key %q was present throughout and must be returned", k)
			}
		}
	}
}

// testIteratorAcrossDrop drops the partition under an open iterator.
func testIteratorAcrossDrop(t *testing.T, e *env) {
	p := e.part(t, "data")
	for i := 0; i < 50; i++ {
		e.put(t, p, fmt.Sprintf("k%02d", i), "v")
	}
	it, err := e.b.Scan(e.ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.True(t, it.Next())
	require.NoError(t, e.b.DropPartition(e.ctx, p))
	require.NoError(t, e.b.CreatePartition(e.ctx, p))
	e.put(t, p, "k00x", "after")
	n := 1
	snapshot := e.b.Capabilities().SnapshotScans
	for it.Next() {
		if snapshot {
			require.NotEqual(t, "k00x", string(it.Key()), "a snapshot iterator never sees a key written after Scan")
		}
		n++
	}
	if snapshot {
		require.NoError(t, it.Err())
		require.Equal(t, 50, n, "a snapshot iterator outlives a drop of its partition")
	}
	_ = it.Close()
	require.Equal(t, []kv{{"k00x", "after"}}, collect(t, e.b, p, store.ScanOptions{}))
}

// testNoAliasing checks that the backend keeps no caller slice and hands out
// no slice of its own state.
func testNoAliasing(t *testing.T, e *env) {
	p := e.part(t, "data")
	k, v := []byte("key1"), []byte("value1")
	require.NoError(t, e.b.Put(e.ctx, p, k, v))
	copy(k, "XXXX")
	copy(v, "YYYYYY")
	e.mustGet(t, p, "key1", "value1")
	e.mustMiss(t, p, "XXXX1")

	got, err := e.b.Get(e.ctx, p, []byte("key1"))
	require.NoError(t, err)
	copy(got, "ZZZZZZ")
	got = append(got[:0], "grown-over-the-old-capacity"...)
	_ = got
	e.mustGet(t, p, "key1", "value1")

	bk, bv := []byte("key2"), []byte("value2")
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{store.PutOp(p, bk, bv)}))
	copy(bk, "QQQQ")
	copy(bv, "RRRRRR")
	e.mustGet(t, p, "key2", "value2")

	prefix, start := []byte("key"), []byte("key1")
	it, err := e.b.Scan(e.ctx, p, store.ScanOptions{Prefix: prefix, Start: start})
	require.NoError(t, err)
	copy(prefix, "zzz")
	copy(start, "zzzz")
	var keys, vals [][]byte
	for it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
		vals = append(vals, append([]byte(nil), it.Value()...))
	}
	require.NoError(t, it.Close())
	require.Equal(t, [][]byte{[]byte("key1"), []byte("key2")}, keys, "scan options are copied at Scan")
	require.Equal(t, [][]byte{[]byte("value1"), []byte("value2")}, vals)
}

func testClosed(t *testing.T, e *env) {
	p := e.part(t, "data")
	e.put(t, p, "k", "v")
	leaked, err := e.b.Scan(e.ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.True(t, leaked.Next())

	err = e.b.Close()
	require.ErrorIs(t, err, store.ErrLeakedIterators, "Close reports the iterator left open")
	require.False(t, leaked.Next(), "a leaked iterator is closed with the backend")
	require.ErrorIs(t, leaked.Err(), store.ErrClosed)
	_ = leaked.Close()
	require.NoError(t, e.b.Close(), "Close twice")

	_, err = e.b.Get(e.ctx, p, []byte("k"))
	require.ErrorIs(t, err, store.ErrClosed, "get")
	require.ErrorIs(t, e.b.Put(e.ctx, p, []byte("k"), []byte("v")), store.ErrClosed, "put")
	require.ErrorIs(t, e.b.Delete(e.ctx, p, []byte("k")), store.ErrClosed, "delete")
	require.ErrorIs(t, e.b.Batch(e.ctx, []store.Operation{store.PutOp(p, []byte("k"), nil)}), store.ErrClosed, "batch")
	require.ErrorIs(t, e.b.Batch(e.ctx, nil), store.ErrClosed, "empty batch")
	_, err = e.b.Scan(e.ctx, p, store.ScanOptions{})
	require.ErrorIs(t, err, store.ErrClosed, "scan")
	_, err = e.b.PartitionExists(e.ctx, p)
	require.ErrorIs(t, err, store.ErrClosed, "exists")
	require.ErrorIs(t, e.b.CreatePartition(e.ctx, p), store.ErrClosed, "create")
	require.ErrorIs(t, e.b.DropPartition(e.ctx, p), store.ErrClosed, "drop")
	_, err = e.b.ListPartitions(e.ctx)
	require.ErrorIs(t, err, store.ErrClosed, "list")
}

func testCancelledContext(t *testing.T, e *env) {
	p := e.part(t, "data")
	for i := 0; i < 10; i++ {
		e.put(t, p, fmt.Sprintf("k%d", i), "v")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.b.Get(ctx, p, []byte("k1"))
	require.ErrorIs(t, err, context.Canceled, "get")
	require.ErrorIs(t, e.b.Put(ctx, p, []byte("new"), []byte("v")), context.Canceled, "put")
	require.ErrorIs(t, e.b.Delete(ctx, p, []byte("k1")), context.Canceled, "delete")
	require.ErrorIs(t, e.b.Batch(ctx, []store.Operation{store.PutOp(p, []byte("new"), nil)}), context.Canceled, "batch")
	_, err = e.b.Scan(ctx, p, store.ScanOptions{})
	require.ErrorIs(t, err, context.Canceled, "scan")
	_, err = e.b.PartitionExists(ctx, p)
	require.ErrorIs(t, err, context.Canceled, "exists")
	require.ErrorIs(t, e.b.CreatePartition(ctx, store.MustPartition("other")), context.Canceled, "create")
	require.ErrorIs(t, e.b.DropPartition(ctx, p), context.Canceled, "drop")
	_, err = e.b.ListPartitions(ctx)
	require.ErrorIs(t, err, context.Canceled, "list")
	e.mustMiss(t, p, "new")
	e.mustGet(t, p, "k1", "v")
	require.Equal(t, []string{"data"}, partitionNames(t, e.b))

	// Cancelled in the middle of a scan: the iterator stops with the
	// context's error, never as a plain end.
	ctx, cancel = context.WithCancel(context.Background())
	it, err := e.b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.True(t, it.Next())
	cancel()
	for it.Next() {
	}
	require.ErrorIs(t, it.Err(), context.Canceled)
	require.ErrorIs(t, it.Close(), context.Canceled)
}
