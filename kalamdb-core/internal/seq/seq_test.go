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
