package etcd

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
)

// TestWorstBatchesFit: the batches that cost etcd the most for their size
// still fit the servers' default limits when they are at the backend's
// (Capabilities.MaxBatchOps, MaxBatchBytes), with the longest prefix:
// a range delete followed by puts of keys of the longest size inside it
// (each cuts the range: two more keys), and checks of keys of the longest
// size, each in a partition of its own with a name of the longest size
// (two compares each, and two reads in the failure branch).
func TestWorstBatchesFit(t *testing.T) {
	cfg := testConfig(etcdtest.Shared(t))
	cfg.Prefix = etcdtest.FreshPrefix() + strings.Repeat("x", MaxPrefixLen)
	cfg.Prefix = cfg.Prefix[:MaxPrefixLen]
	b, err := OpenWith(context.Background(), cfg)
	require.NoError(t, err)
	defer b.Close()
	ctx := context.Background()
	caps := b.Capabilities()
	n, room := caps.MaxBatchOps, caps.MaxBatchBytes
	require.Equal(t, 64, n)

	key := func(c byte) []byte { return append([]byte{c}, bytes.Repeat([]byte{'k'}, store.MaxKeySize-1)...) }
	fill := func(ops []store.Operation, spare int) {
		each := spare / len(ops)
		for i := range ops {
			ops[i].Value = bytes.Repeat([]byte{'v'}, each)
		}
		ops[len(ops)-1].Value = append(ops[len(ops)-1].Value, bytes.Repeat([]byte{'v'}, spare-each*len(ops))...)
	}

	// A range delete, and puts inside it.
	p := store.MustPartition(strings.Repeat("p", store.MaxPartitionNameLen))
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("\x01old"), []byte("x")))
	puts := make([]store.Operation, n-1)
	for i := range puts {
		puts[i] = store.PutOp(p, key(byte(2+i)), nil)
	}
	fill(puts, room-2-len(puts)*store.MaxKeySize)
	ops := append([]store.Operation{store.DeleteRangeOp(p, []byte{0x01}, []byte{0xff})}, puts...)
	require.Equal(t, room, store.BatchBytes(ops))
	require.NoError(t, caps.CheckBatch(ops))
	require.NoError(t, b.Batch(ctx, ops), "a batch at the limits, every put cutting the range")
	_, err = b.Get(ctx, p, []byte("\x01old"))
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := b.Get(ctx, p, puts[n-2].Key)
	require.NoError(t, err)
	require.Equal(t, puts[n-2].Value, got)

	// Checks, each in its own partition.
	checks := make([]store.Operation, n)
	for i := range checks {
		name := fmt.Sprintf("%02d", i) + strings.Repeat("q", store.MaxPartitionNameLen-2)
		q := store.MustPartition(name)
		require.NoError(t, b.CreatePartition(ctx, q))
		checks[i] = store.CheckValueOp(q, key('c'), nil)
	}
	fill(checks, room-n*store.MaxKeySize)
	require.Equal(t, room, store.BatchBytes(checks))
	err = b.Batch(ctx, checks)
	require.ErrorIs(t, err, store.ErrConditionFailed, "a batch of checks at the limits, all failing")
	for _, c := range checks {
		require.NoError(t, b.Put(ctx, c.Partition, c.Key, c.Value))
	}
	require.NoError(t, b.Batch(ctx, checks), "the same checks, all holding")
}
