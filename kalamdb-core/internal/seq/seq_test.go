package seq_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/seq"
)

var part = store.MustPartition("seq")

func backend(t *testing.T) store.StorageBackend {
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.CreatePartition(context.Background(), part))
	return b
}

func TestIncreasingAndSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	a, err := seq.Open(ctx, b, part, []byte("k"), 10)
	require.NoError(t, err)
	assert.Equal(t, int64(0), a.Last())
	first, err := a.Next(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), first)
	first, err = a.Next(ctx, 25) // larger than a block
	require.NoError(t, err)
	assert.Equal(t, int64(2), first)
	assert.Equal(t, int64(26), a.Last())

	// A restart continues above everything handed out.
	b2, err := seq.Open(ctx, b, part, []byte("k"), 10)
	require.NoError(t, err)
	first, err = b2.Next(ctx, 1)
	require.NoError(t, err)
	assert.Greater(t, first, int64(26))

	_, err = a.Next(ctx, 0)
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
}

func TestReservationErrors(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	require.NoError(t, b.Put(ctx, part, []byte("bad"), []byte{1, 2}))
	_, err := seq.Open(ctx, b, part, []byte("bad"), 0)
	assert.ErrorIs(t, err, core.ErrCorrupt)
	require.NoError(t, b.Put(ctx, part, []byte("zero"), make([]byte, 8)))
	_, err = seq.Open(ctx, b, part, []byte("zero"), 0)
	assert.ErrorIs(t, err, core.ErrCorrupt)

	// A failed reservation hands nothing out.
	a, err := seq.Open(ctx, b, part, []byte("k"), 0)
	require.NoError(t, err)
	require.NoError(t, b.DropPartition(ctx, part))
	_, err = a.Next(ctx, 1)
	assert.ErrorIs(t, err, store.ErrPartitionNotFound)
	assert.Equal(t, int64(1), a.Last(), "the failed value is skipped, never handed out again")
	_, err = seq.Open(ctx, b, part, []byte("k"), 0)
	assert.ErrorIs(t, err, store.ErrPartitionNotFound)
}

func TestUniqueUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	a, err := seq.Open(ctx, backend(t), part, []byte("k"), 7)
	require.NoError(t, err)
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := 1 + i%3
				first, err := a.Next(ctx, n)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				for v := first; v < first+int64(n); v++ {
					assert.False(t, seen[v], "value %d handed out twice", v)
					seen[v] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	want := 0
	for i := range 200 {
		want += 1 + i%3
	}
	assert.Len(t, seen, 8*want)
	assert.Equal(t, int64(8*want), a.Last(), "no value skipped without a restart")
}

// Allocators of one table in several processes (here: several Allocators
// on one backend) never hand out the same value, whatever the
// interleaving of their reservations.
func TestSeveralAllocatorsShareNoValue(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for p := range 4 {
		a, err := seq.Open(ctx, b, part, []byte("k"), 5)
		require.NoError(t, err)
		for range 2 {
			wg.Go(func() {
				for i := range 300 {
					n := 1 + i%4
					first, err := a.Next(ctx, n)
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					for v := first; v < first+int64(n); v++ {
						if other, dup := seen[v]; dup {
							t.Errorf("value %d handed out by allocator %d and %d", v, other, p)
						}
						seen[v] = p
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	want := 0
	for i := range 300 {
		want += 1 + i%4
	}
	assert.Len(t, seen, 4*2*want)
	// A later allocator starts above every value handed out.
	a, err := seq.Open(ctx, b, part, []byte("k"), 5)
	require.NoError(t, err)
	first, err := a.Next(ctx, 1)
	require.NoError(t, err)
	for v := range seen {
		require.Less(t, v, first)
	}
}

// NextAbove hands out values above the floor, also when another
// allocator's block is higher than this one's.
func TestNextAbove(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	a1, err := seq.Open(ctx, b, part, []byte("k"), 10)
	require.NoError(t, err)
	a2, err := seq.Open(ctx, b, part, []byte("k"), 10)
	require.NoError(t, err)
	v1, err := a1.Next(ctx, 1) // a1 holds [1, 11)
	require.NoError(t, err)
	v2, err := a2.Next(ctx, 1) // a2 loses the reservation of [1, 11) and takes [11, 21)
	require.NoError(t, err)
	require.Equal(t, int64(1), v1)
	require.Equal(t, int64(11), v2)
	v, err := a1.NextAbove(ctx, 1, v2) // a1 replaces a version a2 wrote
	require.NoError(t, err)
	assert.Greater(t, v, v2)
	v, err = a1.NextAbove(ctx, 2, 0)
	require.NoError(t, err)
	assert.Greater(t, v, v2, "values keep growing after a jump")
	_, err = a1.NextAbove(ctx, 0, 5)
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
}

// Commit reserves exactly the values its batch writes, in the batch: values
// of allocators sharing a key follow the order their batches commit, one
// whose view of the limit is stale tries again above it, and a batch that
// fails otherwise reserves nothing.
func TestCommitReservesInCommitOrder(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	x, err := seq.Open(ctx, b, part, []byte("k"), 10)
	require.NoError(t, err)
	y, err := seq.Open(ctx, b, part, []byte("k"), 10)
	require.NoError(t, err)
	put := func(first int64) ([]store.Operation, error) {
		return []store.Operation{store.PutOp(part, []byte{byte(first)}, []byte("v"))}, nil
	}
	var got []int64
	for i := range 6 {
		a := []*seq.Allocator{x, y}[i%2] // each sees the other's commit late
		first, err := a.Commit(ctx, 2, put)
		require.NoError(t, err)
		got = append(got, first)
	}
	assert.Equal(t, []int64{1, 3, 5, 7, 9, 11}, got, "consecutive, in commit order, no gap")

	failing := func(int64) ([]store.Operation, error) {
		return []store.Operation{store.CheckAbsentOp(part, []byte{1})}, nil // present: the batch fails
	}
	_, err = x.Commit(ctx, 5, failing)
	require.ErrorIs(t, err, store.ErrConditionFailed)
	first, err := y.Commit(ctx, 1, put)
	require.NoError(t, err)
	assert.Equal(t, int64(13), first, "the failed batch reserved nothing")
}
