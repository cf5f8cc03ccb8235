package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// testBatchLimits checks what a backend says of the batches it applies at
// once. Without limits, a large batch (5,000 operations, 8 MiB) applies
// whole. With limits, a batch at the limits applies, one over either limit
// is refused whole with ErrInvalidArgument naming it, so is a Put over
// MaxBatchBytes, and the batches of Capabilities.Split all apply.
func testBatchLimits(t *testing.T, e *env) {
	caps := e.b.Capabilities()
	p := e.part(t, "limits")
	value := func(n int) []byte { return []byte(strings.Repeat("v", n)) }
	puts := func(n, size int, prefix string) []store.Operation {
		ops := make([]store.Operation, n)
		for i := range ops {
			ops[i] = store.PutOp(p, []byte(fmt.Sprintf("%s%06d", prefix, i)), value(size))
		}
		return ops
	}
	count := func(prefix string) int {
		return len(collect(t, e.b, p, store.ScanOptions{Prefix: []byte(prefix)}))
	}
	require.GreaterOrEqual(t, caps.MaxBatchOps, 0, "MaxBatchOps is not negative")
	if caps.MaxBatchOps > 0 {
		require.GreaterOrEqual(t, caps.MaxBatchOps, store.MinBatchOps, "a positive MaxBatchOps is at least store.MinBatchOps")
	}
	require.GreaterOrEqual(t, caps.MaxBatchBytes, 0, "MaxBatchBytes is not negative")

	if caps.MaxBatchOps == 0 && caps.MaxBatchBytes == 0 {
		big := puts(5000, 8<<20/5000, "big/")
		require.NoError(t, caps.CheckBatch(big))
		require.NoError(t, e.b.Batch(e.ctx, big), "a backend without limits applies a large batch")
		require.Equal(t, 5000, count("big/"))
		require.Len(t, caps.Split(big), 1, "nothing to split without limits")
		return
	}

	if n := caps.MaxBatchOps; n > 0 {
		size := 1
		if caps.MaxBatchBytes > 0 {
			size = max(1, min(64, caps.MaxBatchBytes/(n+1)-16))
		}
		at := puts(n, size, "at/")
		require.NoError(t, caps.CheckBatch(at))
		require.NoError(t, e.b.Batch(e.ctx, at), "a batch of MaxBatchOps operations applies")
		require.Equal(t, n, count("at/"))
		over := append(puts(n, size, "over/"), store.DeleteOp(p, []byte("at/000000")))
		err := e.b.Batch(e.ctx, over)
		require.ErrorIs(t, err, store.ErrInvalidArgument)
		require.ErrorContains(t, err, "MaxBatchOps")
		require.ErrorContains(t, err, fmt.Sprint(n))
		require.Equal(t, 0, count("over/"), "a batch over the limit applied nothing")
		e.mustGet(t, p, "at/000000", string(value(size)))
		require.Equal(t, caps.CheckBatch(over), err, "CheckBatch tells in advance")
	}
	if n := caps.MaxBatchBytes; n > 0 {
		key := []byte("bytes/one")
		require.NoError(t, e.b.Put(e.ctx, p, key, value(n-len(key))), "a put of MaxBatchBytes applies")
		err := e.b.Put(e.ctx, p, []byte("bytes/two"), value(n-len(key)+1))
		require.ErrorIs(t, err, store.ErrInvalidArgument)
		require.ErrorContains(t, err, "MaxBatchBytes")
		e.mustMiss(t, p, "bytes/two")
		half := n / 2
		over := []store.Operation{store.PutOp(p, []byte("bytes/a"), value(half)), store.PutOp(p, []byte("bytes/b"), value(half))}
		err = e.b.Batch(e.ctx, over)
		require.ErrorIs(t, err, store.ErrInvalidArgument)
		require.ErrorContains(t, err, "MaxBatchBytes")
		e.mustMiss(t, p, "bytes/a")
	}

	// Split cuts any batch into batches that fit, and all of them apply.
	ops := puts(3*max(caps.MaxBatchOps, 1)+5, 32, "split/")
	if caps.MaxBatchBytes > 0 {
		ops = append(ops, puts(5, caps.MaxBatchBytes/3, "splitbig/")...)
	}
	batches := caps.Split(ops)
	require.Greater(t, len(batches), 1)
	total := 0
	for _, b := range batches {
		require.NoError(t, caps.CheckBatch(b))
		require.NoError(t, e.b.Batch(e.ctx, b))
		total += len(b)
	}
	require.Equal(t, len(ops), total, "Split keeps every operation, in order")
	require.Equal(t, 3*max(caps.MaxBatchOps, 1)+5, count("split/"))
}
