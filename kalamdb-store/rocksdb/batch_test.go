package rocksdb

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/linxGnu/grocksdb"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// TestBatchRepMatchesGrocksdb encodes random batches (puts, deletes and
// range deletes over partitions of the shared column family and legacy
// ones, empty values, keys and values whose lengths take one to three
// varint bytes) with encodeBatch and builds the same batches with
// grocksdb's WriteBatch, and requires the same bytes.
func TestBatchRepMatchesGrocksdb(t *testing.T) {
	c := testConfig(t)
	makeLegacy(t, c.Path, map[string]map[string]string{"l1": nil, "l2": nil})
	e, err := openEngine(c)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	ctx := context.Background()
	ps := []store.Partition{store.MustPartition("l1"), store.MustPartition("l2")}
	for _, name := range []string{"a", "b", "c"} {
		p := store.MustPartition(name)
		require.NoError(t, e.CreatePartition(ctx, p))
		ps = append(ps, p)
	}
	parts := e.parts.Snapshot()
	for _, p := range ps[:2] {
		require.NotZero(t, parts[p.Name()].cf, "a legacy partition's column family is not the default one")
		require.Zero(t, parts[p.Name()].prefix.n, "a legacy partition's keys have no prefix")
	}
	shared := familyC(e.shared).id()
	require.NotZero(t, shared, "the shared column family is not the default one")
	for _, p := range ps[2:] {
		require.Equal(t, shared, parts[p.Name()].cf, "a partition lives in the shared column family")
		require.NotZero(t, parts[p.Name()].prefix.n, "a partition's keys have a prefix")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	field := func() []byte {
		n := []int{0, 1, 127, 128, 300, 16383, 16384, 70000}[rng.IntN(8)]
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	for round := 0; round < 200; round++ {
		ops := make([]store.Operation, 1+rng.IntN(20))
		wb := grocksdb.NewWriteBatch()
		for i := range ops {
			p := ps[rng.IntN(len(ps))]
			key := field()
			if len(key) == 0 {
				key = []byte{0}
			}
			pt := parts[p.Name()]
			h := pt.h
			stored := func(k []byte) []byte { return append(pt.prefix.bytes(), k...) }
			switch rng.IntN(4) {
			case 0:
				ops[i] = store.DeleteOp(p, key)
				wb.DeleteCF(h, stored(key))
			case 1:
				end := append(bytes.Clone(key), field()...)
				ops[i] = store.DeleteRangeOp(p, key, end)
				wb.DeleteRangeCF(h, stored(key), stored(end))
			default:
				v := field()
				ops[i] = store.PutOp(p, key, v)
				wb.PutCF(h, stored(key), v)
			}
		}
		got, err := encodeBatch(nil, &e.parts, ops)
		require.NoError(t, err)
		want := bytes.Clone(wb.Data()) // Data is the batch's own memory
		wb.Destroy()
		require.True(t, bytes.Equal(want, got), "round %d: %d operations encode differently", round, len(ops))
	}
}

// TestBatchRepMissingPartition checks that encodeBatch names the first
// operation whose partition is missing, and refuses an unknown kind.
func TestBatchRepMissingPartition(t *testing.T) {
	var parts store.PartitionMap[part]
	parts.Set("a", part{cf: 7})
	a, b := store.MustPartition("a"), store.MustPartition("b")
	_, err := encodeBatch(nil, &parts, []store.Operation{store.PutOp(a, []byte("k"), nil), store.DeleteOp(b, []byte("k"))})
	require.ErrorIs(t, err, store.ErrPartitionNotFound)
	require.ErrorContains(t, err, "batch operation 1")

	_, err = encodeBatch(nil, &parts, []store.Operation{{Kind: store.OpKind(99), Partition: a, Key: []byte("k")}})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
}
