package faultstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/faultstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// With no rule the wrapper is a conforming backend.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Name: "faultstore(memory)",
		New: func(testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			return faultstore.Wrap(memory.New()), nil
		},
	})
}

func TestFailNthWrite(t *testing.T) {
	ctx := context.Background()
	b := faultstore.Wrap(memory.New())
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	b.SetRule(faultstore.FailNth(2, faultstore.Writes))
	require.NoError(t, b.Put(ctx, p, []byte("a"), []byte("1")))
	_, err := b.Get(ctx, p, []byte("a")) // reads are not counted
	require.NoError(t, err)
	err = b.Put(ctx, p, []byte("b"), []byte("2"))
	require.ErrorIs(t, err, faultstore.ErrInjected)
	require.ErrorContains(t, err, "put #2")
	require.NoError(t, b.Put(ctx, p, []byte("c"), []byte("3")), "FailNth fails once")
	_, err = b.Inner().Get(ctx, p, []byte("b"))
	require.ErrorIs(t, err, store.ErrNotFound, "a failed operation is not applied")
	require.Equal(t, 2, b.Count(faultstore.OpPut))
}

func TestCrashAt(t *testing.T) {
	ctx := context.Background()
	b := faultstore.Wrap(memory.New())
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	b.SetRule(faultstore.CrashAt(2, nil))
	require.NoError(t, b.Put(ctx, p, []byte("a"), []byte("1")))
	require.ErrorIs(t, b.Batch(ctx, []store.Operation{store.PutOp(p, []byte("b"), nil)}), faultstore.ErrCrashed)
	_, err := b.Get(ctx, p, []byte("a"))
	require.ErrorIs(t, err, faultstore.ErrCrashed, "everything after the crash fails")
	require.True(t, b.Crashed())
	b.Reset()
	v, err := b.Get(ctx, p, []byte("a"))
	require.NoError(t, err)
	require.Equal(t, "1", string(v))
	_, err = b.Get(ctx, p, []byte("b"))
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestIteratorFault(t *testing.T) {
	ctx := context.Background()
	b := faultstore.Wrap(memory.New())
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, b.Put(ctx, p, []byte(k), nil))
	}
	b.SetRule(faultstore.FailNth(2, func(op faultstore.Op) bool { return op == faultstore.OpNext }))
	it, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.True(t, it.Next())
	require.False(t, it.Next(), "the second step fails")
	require.Nil(t, it.Key())
	require.ErrorIs(t, it.Err(), faultstore.ErrInjected, "an iterator fault is reported, not a silent end")
	require.ErrorIs(t, it.Close(), faultstore.ErrInjected)
}

func TestLoseReplyNth(t *testing.T) {
	ctx := context.Background()
	b := faultstore.Wrap(memory.New())
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	b.SetRule(faultstore.LoseReplyNth(2, nil))
	require.NoError(t, b.Put(ctx, p, []byte("a"), []byte("1")))
	_, err := b.Get(ctx, p, []byte("a")) // reads are not counted
	require.NoError(t, err)
	err = b.Batch(ctx, []store.Operation{store.PutOp(p, []byte("b"), []byte("2")), store.DeleteOp(p, []byte("a"))})
	require.ErrorIs(t, err, faultstore.ErrReplyLost)
	require.ErrorContains(t, err, "batch #2")
	v, err := b.Inner().Get(ctx, p, []byte("b"))
	require.NoError(t, err, "a write whose reply is lost is applied")
	require.Equal(t, "2", string(v))
	_, err = b.Inner().Get(ctx, p, []byte("a"))
	require.ErrorIs(t, err, store.ErrNotFound, "all of it")
	require.Equal(t, 1, b.Count(faultstore.OpBatch))
	require.NoError(t, b.Delete(ctx, p, []byte("b")), "LoseReplyNth loses one reply")
}
