package bbolt

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func TestMmapSize(t *testing.T) {
	for _, c := range []struct{ in, want int }{
		{0, 32 << 10},
		{1, 32 << 10},
		{32 << 10, 32 << 10},
		{32<<10 + 1, 64 << 10},
		{(1 << 20) - 4096, 1 << 20},
		{1 << 30, 1 << 30},
		{1<<30 + 1, 2 << 30},
		{5<<30 - 1, 5 << 30},
		{5 << 30, 5 << 30},
	} {
		assert.Equal(t, c.want, mmapSize(c.in), "mmapSize(%d)", c.in)
	}
}

func TestRemapGuardValues(t *testing.T) {
	const alloc = 16 << 20
	// Below the allocation step a remap is refused whenever the next
	// allocation would need the mapping to double.
	assert.Equal(t, 64<<10-1, remapGuard(40<<10, 0, alloc))
	assert.Equal(t, 64<<10-1, remapGuard(64<<10, 0, alloc))
	// The initial mapping counts.
	assert.Equal(t, 1<<30+alloc-1, remapGuard(40<<10, 1<<30, alloc))
	// Past the step the limit is exact: minsz >= mapping fails, below passes.
	limit := remapGuard(100<<20, 0, alloc)
	mapping := mmapSize(100 << 20)
	assert.Equal(t, 128<<20, mapping)
	assert.Greater(t, nextAlloc(mapping, alloc), limit, "an allocation that remaps fails")
	assert.LessOrEqual(t, nextAlloc(mapping-4096, alloc), limit, "the page below the end does not")
	assert.Zero(t, remapGuard(maxGuarded+1, 0, alloc), "no guard past what bbolt can map")
}

// TestDetach: an iterator detached in the middle of its range, with or
// without a limit, returns the same keys as one left alone.
func TestDetach(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Path, cfg.SyncWrites = t.TempDir(), false
	b, e := openTest(t, cfg)
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	var ops []store.Operation
	for i := 0; i < 50; i++ {
		ops = append(ops, store.PutOp(p, []byte(fmt.Sprintf("k%02d", i)), []byte(fmt.Sprintf("v%d", i))))
	}
	require.NoError(t, b.Batch(ctx, ops))

	for _, o := range []store.ScanOptions{{}, {Reverse: true}, {Limit: 7}, {Limit: 3, Reverse: true}, {Prefix: []byte("k1")}} {
		for _, at := range []int{0, 1, 2, 5, 10} {
			want := drainAll(t, b, e, p, o, -1)
			got := drainAll(t, b, e, p, o, at)
			require.Equal(t, want, got, "options %+v, detached after %d keys", o, at)
		}
	}
	e.itMu.Lock()
	assert.Empty(t, e.iters, "closed iterators are unregistered")
	e.itMu.Unlock()
}

// drainAll scans p with o; after `at` keys (unless at < 0) it detaches every
// open iterator and writes, then reads the rest.
func drainAll(t *testing.T, b store.StorageBackend, e *engine, p store.Partition, o store.ScanOptions, at int) []string {
	t.Helper()
	it, err := b.Scan(context.Background(), p, o)
	require.NoError(t, err)
	var out []string
	for n := 0; ; n++ {
		if n == at {
			e.detachAll()
			require.NoError(t, b.Put(context.Background(), p, []byte("k10"), []byte("changed")))
			require.NoError(t, b.Delete(context.Background(), p, []byte("k11")))
		}
		if !it.Next() {
			break
		}
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	require.NoError(t, it.Close())
	if at >= 0 {
		// Restore what the write changed.
		require.NoError(t, b.Put(context.Background(), p, []byte("k10"), []byte("v10")))
		require.NoError(t, b.Put(context.Background(), p, []byte("k11"), []byte("v11")))
	}
	return out
}

// openTest opens a backend and also returns its engine.
func openTest(t *testing.T, cfg Config) (store.StorageBackend, *engine) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	e, err := openEngine(cfg)
	require.NoError(t, err)
	b := store.New(e)
	t.Cleanup(func() { _ = b.Close() })
	return b, e
}
