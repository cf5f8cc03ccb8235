package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func testMissingKey(t *testing.T, e *env) {
	p := e.part(t, "data")
	e.mustMiss(t, p, "nope")
	e.put(t, p, "k", "v")
	e.mustMiss(t, p, "k\x00")
	e.mustMiss(t, p, "K")
	v, err := e.b.Get(e.ctx, p, []byte("nope"))
	require.Nil(t, v, "a missing key returns no value")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.False(t, errors.Is(err, store.ErrPartitionNotFound), "a missing key is not a missing partition")
}

func testPutGetOverwrite(t *testing.T, e *env) {
	p := e.part(t, "data")
	e.put(t, p, "k", "v1")
	e.mustGet(t, p, "k", "v1")
	e.put(t, p, "k", "v2-longer")
	e.mustGet(t, p, "k", "v2-longer")
	e.put(t, p, "k", "3")
	e.mustGet(t, p, "k", "3")
	require.Equal(t, []kv{{"k", "3"}}, collect(t, e.b, p, store.ScanOptions{}), "an overwrite leaves one key")
}

func testEmptyValue(t *testing.T, e *env) {
	p := e.part(t, "data")
	require.NoError(t, e.b.Put(e.ctx, p, []byte("empty"), []byte{}))
	require.NoError(t, e.b.Put(e.ctx, p, []byte("nil"), nil))
	for _, k := range []string{"empty", "nil"} {
		v, err := e.b.Get(e.ctx, p, []byte(k))
		require.NoError(t, err, "an empty value is a value")
		require.NotNil(t, v, "an empty value reads back as a non-nil empty slice")
		require.Len(t, v, 0)
	}
	require.Equal(t, []kv{{"empty", ""}, {"nil", ""}}, collect(t, e.b, p, store.ScanOptions{}))
}

func testLargeKeysAndValues(t *testing.T, e *env) {
	p := e.part(t, "data")
	bigKey := bytes.Repeat([]byte{'k'}, store.MaxKeySize)
	size := 1 << 20
	if mb := e.b.Capabilities().MaxBatchBytes; mb > 0 && len(bigKey)+size > mb {
		size = mb - len(bigKey) // the largest put the backend takes (BatchLimits checks the refusal past it)
	}
	bigVal := make([]byte, size)
	for i := range bigVal {
		bigVal[i] = byte(i * 7)
	}
	require.NoError(t, e.b.Put(e.ctx, p, bigKey, bigVal))
	got, err := e.b.Get(e.ctx, p, bigKey)
	require.NoError(t, err)
	require.True(t, bytes.Equal(bigVal, got), "a value of 1 MiB (or the largest the batch limits allow) round-trips")
	tooBig := append(bigKey, 'x')
	err = e.b.Put(e.ctx, p, tooBig, []byte("v"))
	require.ErrorIs(t, err, store.ErrInvalidArgument, "a key over MaxKeySize is refused")
	e.mustMiss(t, p, "k")
}

func testBinaryKeys(t *testing.T, e *env) {
	p := e.part(t, "data")
	data := map[string]string{}
	for i := 0; i < 256; i++ {
		k := string([]byte{byte(i)})
		data[k] = fmt.Sprint(i)
		data[k+"\x00"] = "z" + fmt.Sprint(i)
		data["\xff"+k] = "f" + fmt.Sprint(i)
	}
	for k, v := range data {
		e.put(t, p, k, v)
	}
	for k, v := range data {
		e.mustGet(t, p, k, v)
	}
	require.Equal(t, reference(data, store.ScanOptions{}), collect(t, e.b, p, store.ScanOptions{}),
		"keys come back in bytewise order, 0x00 and 0xFF included")
}

func testDeleteIdempotent(t *testing.T, e *env) {
	p := e.part(t, "data")
	require.NoError(t, e.b.Delete(e.ctx, p, []byte("never")), "deleting a missing key succeeds")
	e.put(t, p, "k", "v")
	e.put(t, p, "k2", "v2")
	require.NoError(t, e.b.Delete(e.ctx, p, []byte("k")))
	e.mustMiss(t, p, "k")
	require.NoError(t, e.b.Delete(e.ctx, p, []byte("k")), "deleting twice succeeds")
	e.mustGet(t, p, "k2", "v2")
	require.Equal(t, []kv{{"k2", "v2"}}, collect(t, e.b, p, store.ScanOptions{}))
	e.put(t, p, "k", "again")
	e.mustGet(t, p, "k", "again")
}

func testPartitionsIsolated(t *testing.T, e *env) {
	// Names that are prefixes of each other catch prefix-mapping mistakes.
	names := []string{"a", "a:b", "ab", "a.b", "b"}
	parts := make([]store.Partition, len(names))
	for i, n := range names {
		parts[i] = e.part(t, n)
	}
	for i, p := range parts {
		e.put(t, p, "same", "v-"+names[i])
		e.put(t, p, "only-"+names[i], "x")
		e.put(t, p, "\x00", "zero-"+names[i])
		e.put(t, p, "\xff", "ff-"+names[i])
	}
	for i, p := range parts {
		e.mustGet(t, p, "same", "v-"+names[i])
		want := []kv{{"\x00", "zero-" + names[i]}, {"only-" + names[i], "x"}, {"same", "v-" + names[i]}, {"\xff", "ff-" + names[i]}}
		require.Equal(t, want, collect(t, e.b, p, store.ScanOptions{}), "partition %s sees only its keys", names[i])
		require.Equal(t, want[2:3], collect(t, e.b, p, store.ScanOptions{Prefix: []byte("s")}))
		for j := range names {
			if j != i {
				e.mustMiss(t, p, "only-"+names[j])
			}
		}
	}
	require.NoError(t, e.b.Delete(e.ctx, parts[0], []byte("same")))
	e.mustMiss(t, parts[0], "same")
	e.mustGet(t, parts[1], "same", "v-a:b")
	require.NoError(t, e.b.DropPartition(e.ctx, parts[0]))
	for i, p := range parts[1:] {
		e.mustGet(t, p, "same", "v-"+names[i+1])
		require.Len(t, collect(t, e.b, p, store.ScanOptions{}), 4, "dropping %q leaves %q whole", names[0], names[i+1])
	}
}

func partitionNames(t testing.TB, b store.StorageBackend) []string {
	t.Helper()
	ps, err := b.ListPartitions(contextBackground())
	require.NoError(t, err)
	names := []string{}
	for _, p := range ps {
		names = append(names, p.Name())
	}
	return names
}

func testPartitionLifecycle(t *testing.T, e *env) {
	p, err := store.NewPartition("events")
	require.NoError(t, err)
	ok, err := e.b.PartitionExists(e.ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, []string{}, partitionNames(t, e.b), "a fresh backend has no partitions")

	require.NoError(t, e.b.CreatePartition(e.ctx, p))
	require.NoError(t, e.b.CreatePartition(e.ctx, p), "create is idempotent")
	ok, err = e.b.PartitionExists(e.ctx, p)
	require.NoError(t, err)
	require.True(t, ok)
	e.put(t, p, "k", "v")
	require.NoError(t, e.b.CreatePartition(e.ctx, p))
	e.mustGet(t, p, "k", "v") // re-creating keeps the data

	for _, n := range []string{"zeta", "alpha", "default", "m:1.x-y_z"} {
		e.part(t, n)
	}
	require.Equal(t, []string{"alpha", "default", "events", "m:1.x-y_z", "zeta"}, partitionNames(t, e.b), "listed sorted by name")

	require.NoError(t, e.b.DropPartition(e.ctx, p))
	ok, err = e.b.PartitionExists(e.ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, []string{"alpha", "default", "m:1.x-y_z", "zeta"}, partitionNames(t, e.b))
	require.ErrorIs(t, e.b.DropPartition(e.ctx, p), store.ErrPartitionNotFound, "dropping a missing partition")

	require.NoError(t, e.b.CreatePartition(e.ctx, p))
	require.Equal(t, []kv{}, collect(t, e.b, p, store.ScanOptions{}), "a re-created partition starts empty")
	e.mustMiss(t, p, "k")
}

func testPartitionNotFound(t *testing.T, e *env) {
	ok := e.part(t, "exists")
	p := store.MustPartition("missing")
	_, err := e.b.Get(e.ctx, p, []byte("k"))
	require.ErrorIs(t, err, store.ErrPartitionNotFound, "get")
	require.ErrorIs(t, e.b.Put(e.ctx, p, []byte("k"), []byte("v")), store.ErrPartitionNotFound, "put")
	require.ErrorIs(t, e.b.Delete(e.ctx, p, []byte("k")), store.ErrPartitionNotFound, "delete")
	_, err = e.b.Scan(e.ctx, p, store.ScanOptions{})
	require.ErrorIs(t, err, store.ErrPartitionNotFound, "scan")
	_, err = e.b.Scan(e.ctx, p, store.ScanOptions{Prefix: []byte("b"), Start: []byte("a")})
	require.ErrorIs(t, err, store.ErrPartitionNotFound, "scan of an empty range")
	err = e.b.Batch(e.ctx, []store.Operation{store.PutOp(ok, []byte("k"), []byte("v")), store.DeleteOp(p, []byte("k"))})
	require.ErrorIs(t, err, store.ErrPartitionNotFound, "batch")
	e.mustMiss(t, ok, "k")
	require.Equal(t, []string{"exists"}, partitionNames(t, e.b), "no operation creates a partition implicitly")
}

func testReopen(t *testing.T, e *env) {
	if !e.b.Capabilities().Durable {
		require.Nil(t, e.reopen, "a backend that is not durable must not offer reopen")
		t.Skip("backend is not durable (Capabilities.Durable is false)")
	}
	a := e.part(t, "a")
	b := e.part(t, "b")
	gone := e.part(t, "gone")
	e.put(t, a, "k1", "v1")
	e.put(t, a, "k2", "v2")
	e.put(t, b, "\x00\xff", "bin")
	e.put(t, gone, "k", "v")
	require.NoError(t, e.b.Delete(e.ctx, a, []byte("k2")))
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(a, []byte("k3"), []byte("v3")),
		store.PutOp(b, []byte("k"), []byte("vb")),
	}))
	require.NoError(t, e.b.DropPartition(e.ctx, gone))
	e.part(t, "empty")
	require.NoError(t, e.b.Close())

	for round := 0; round < 2; round++ {
		nb, err := e.reopen()
		require.NoError(t, err, "reopen %d", round+1)
		e.b = nb
		require.Equal(t, []string{"a", "b", "empty"}, partitionNames(t, e.b), "partitions survive reopen %d", round+1)
		e.mustGet(t, a, "k1", "v1")
		e.mustMiss(t, a, "k2")
		e.mustGet(t, a, "k3", "v3")
		e.mustGet(t, b, "\x00\xff", "bin")
		e.mustGet(t, b, "k", "vb")
		ok, err := e.b.PartitionExists(e.ctx, gone)
		require.NoError(t, err)
		require.False(t, ok, "a dropped partition stays dropped")
		require.Equal(t, []kv{{"k1", "v1"}, {"k3", "v3"}}, collect(t, e.b, a, store.ScanOptions{}))
		require.NoError(t, e.b.Close())
	}
}

func testInvalidArguments(t *testing.T, e *env) {
	p := e.part(t, "data")
	var zero store.Partition
	for _, name := range []string{"", "has space", "slash/no", "nul\x00", "ünïcode", string(bytes.Repeat([]byte{'a'}, store.MaxPartitionNameLen+1))} {
		_, err := store.NewPartition(name)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "partition name %q", name)
	}
	checks := map[string]error{
		"get empty key":        func() error { _, err := e.b.Get(e.ctx, p, nil); return err }(),
		"put empty key":        e.b.Put(e.ctx, p, []byte{}, []byte("v")),
		"delete empty key":     e.b.Delete(e.ctx, p, nil),
		"get zero partition":   func() error { _, err := e.b.Get(e.ctx, zero, []byte("k")); return err }(),
		"put zero partition":   e.b.Put(e.ctx, zero, []byte("k"), []byte("v")),
		"create zero":          e.b.CreatePartition(e.ctx, zero),
		"drop zero":            e.b.DropPartition(e.ctx, zero),
		"exists zero":          func() error { _, err := e.b.PartitionExists(e.ctx, zero); return err }(),
		"scan zero partition":  func() error { _, err := e.b.Scan(e.ctx, zero, store.ScanOptions{}); return err }(),
		"scan negative limit":  func() error { _, err := e.b.Scan(e.ctx, p, store.ScanOptions{Limit: -1}); return err }(),
		"batch empty key":      e.b.Batch(e.ctx, []store.Operation{store.PutOp(p, nil, []byte("v"))}),
		"batch zero partition": e.b.Batch(e.ctx, []store.Operation{store.DeleteOp(zero, []byte("k"))}),
		"batch unknown kind":   e.b.Batch(e.ctx, []store.Operation{{Kind: 9, Partition: p, Key: []byte("k")}}),
		"batch zero kind":      e.b.Batch(e.ctx, []store.Operation{{Partition: p, Key: []byte("k")}}),
	}
	for what, err := range checks {
		assert.ErrorIs(t, err, store.ErrInvalidArgument, what)
		if err != nil {
			assert.NotEmpty(t, err.Error(), what)
		}
	}
	require.Equal(t, []kv{}, collect(t, e.b, p, store.ScanOptions{}), "invalid calls wrote nothing")
	require.Equal(t, []string{"data"}, partitionNames(t, e.b))
}

func testBatchOrdering(t *testing.T, e *env) {
	a := e.part(t, "a")
	b := e.part(t, "b")
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(a, []byte("k"), []byte("1")),
		store.PutOp(a, []byte("k"), []byte("2")), // later put wins
		store.PutOp(a, []byte("gone"), []byte("x")),
		store.DeleteOp(a, []byte("gone")), // put then delete: absent
		store.DeleteOp(a, []byte("back")),
		store.PutOp(a, []byte("back"), []byte("y")), // delete then put: present
		store.PutOp(b, []byte("k"), []byte("other")),
	}))
	e.mustGet(t, a, "k", "2")
	e.mustMiss(t, a, "gone")
	e.mustGet(t, a, "back", "y")
	e.mustGet(t, b, "k", "other")
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.DeleteOp(a, []byte("k")),
		store.PutOp(b, []byte("k2"), []byte("v")),
		store.DeleteOp(b, []byte("k")),
	}))
	require.Equal(t, []kv{{"back", "y"}}, collect(t, e.b, a, store.ScanOptions{}))
	require.Equal(t, []kv{{"k2", "v"}}, collect(t, e.b, b, store.ScanOptions{}))
}

func testBatchAtomicity(t *testing.T, e *env) {
	a := e.part(t, "a")
	b := e.part(t, "b")
	e.put(t, a, "existing", "old")
	missing := store.MustPartition("missing")
	var zero store.Partition
	bad := map[string]struct {
		op  store.Operation
		err error
	}{
		"missing partition": {store.PutOp(missing, []byte("k"), []byte("v")), store.ErrPartitionNotFound},
		"empty key":         {store.PutOp(b, nil, []byte("v")), store.ErrInvalidArgument},
		"zero partition":    {store.PutOp(zero, []byte("k"), []byte("v")), store.ErrInvalidArgument},
		"unknown kind":      {store.Operation{Kind: 77, Partition: b, Key: []byte("k")}, store.ErrInvalidArgument},
	}
	for what, c := range bad {
		for _, pos := range []int{0, 3} { // first and last
			ops := []store.Operation{
				store.PutOp(a, []byte("new1"), []byte("v")),
				store.PutOp(a, []byte("existing"), []byte("new")),
				store.DeleteOp(a, []byte("existing")),
				store.PutOp(b, []byte("new2"), []byte("v")),
			}
			ops = append(ops[:pos], append([]store.Operation{c.op}, ops[pos:]...)...)
			err := e.b.Batch(e.ctx, ops)
			require.ErrorIs(t, err, c.err, "%s at %d", what, pos)
			e.mustGet(t, a, "existing", "old")
			e.mustMiss(t, a, "new1")
			e.mustMiss(t, b, "new2")
		}
	}
	require.Equal(t, []kv{{"existing", "old"}}, collect(t, e.b, a, store.ScanOptions{}), "a rejected batch applied nothing")
	require.Equal(t, []kv{}, collect(t, e.b, b, store.ScanOptions{}))
	ok, err := e.b.PartitionExists(e.ctx, missing)
	require.NoError(t, err)
	require.False(t, ok)
}

func testEmptyBatch(t *testing.T, e *env) {
	p := e.part(t, "data")
	e.put(t, p, "k", "v")
	require.NoError(t, e.b.Batch(e.ctx, nil))
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{}))
	require.Equal(t, []kv{{"k", "v"}}, collect(t, e.b, p, store.ScanOptions{}))
}
