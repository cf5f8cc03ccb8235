package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
)

// gatedEngine is a no-op engine that takes the gate, whose Get waits for
// a signal, and whose DropPartition drains the gate and records what the
// Get was doing then.
type gatedEngine struct {
	nopEngine
	gate        store.Gate
	gated       int
	inGet       chan struct{} // Get has started
	draining    chan struct{} // DropPartition is about to drain
	release     chan struct{} // lets Get return
	getReturned bool
	sawReturned chan bool // what DropPartition saw after draining
}

func (g *gatedEngine) UseGate(gate store.Gate) { g.gate = gate; g.gated++ }

func (g *gatedEngine) Get(context.Context, store.Partition, []byte) ([]byte, error) {
	g.inGet <- struct{}{}
	<-g.release
	g.getReturned = true
	return nil, nil
}

func (g *gatedEngine) DropPartition(context.Context, store.Partition) error {
	g.draining <- struct{}{}
	g.gate.Drain()
	// Without the wait, this read races the Get's write (the race
	// detector reports it) and most likely sees false.
	g.sawReturned <- g.getReturned
	return nil
}

// TestGateDrainWaitsForDataCalls checks the Gate contract: New hands it to
// a Gated engine once, and Drain, called from DropPartition, returns only
// after the data calls in flight have returned.
func TestGateDrainWaitsForDataCalls(t *testing.T) {
	e := &gatedEngine{inGet: make(chan struct{}), draining: make(chan struct{}), release: make(chan struct{}), sawReturned: make(chan bool, 1)}
	b := store.New(e)
	require.Equal(t, 1, e.gated)
	ctx := context.Background()
	p := store.MustPartition("p")

	got := make(chan error, 1)
	go func() {
		_, err := b.Get(ctx, p, []byte("k"))
		got <- err
	}()
	<-e.inGet // the Get is in flight
	dropped := make(chan error, 1)
	go func() { dropped <- b.DropPartition(ctx, p) }()
	<-e.draining // DropPartition did not wait for the Get to enter
	close(e.release)
	require.NoError(t, <-got)
	require.True(t, <-e.sawReturned, "Drain returned before the Get did")
	require.NoError(t, <-dropped)
	require.NoError(t, b.Close())
}

// TestScanLongBounds checks scans whose bounds do not fit the room the
// wrapper keeps for them inline.
func TestScanLongBounds(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	prefix := bytes.Repeat([]byte("x"), 100)
	var keys [][]byte
	for _, suffix := range []string{"a", "b", "c", "d"} {
		k := append(append([]byte(nil), prefix...), suffix...)
		keys = append(keys, k)
		require.NoError(t, b.Put(ctx, p, k, []byte(suffix)))
	}
	require.NoError(t, b.Put(ctx, p, []byte("y"), []byte("outside")))
	for _, reverse := range []bool{false, true} {
		it, err := b.Scan(ctx, p, store.ScanOptions{Prefix: prefix, Start: keys[1], ExclusiveStart: true, Reverse: reverse})
		require.NoError(t, err)
		var got []string
		for it.Next() {
			got = append(got, string(it.Value()))
		}
		require.NoError(t, it.Close())
		if reverse {
			require.Equal(t, []string{"a"}, got)
		} else {
			require.Equal(t, []string{"c", "d"}, got)
		}
	}
}

// TestPartitionMapDrop checks Drop's protocol: nothing without a gate,
// false for a missing partition, the partition put back when destroy
// fails, removed (and destroyed with its state) when it succeeds.
func TestPartitionMapDrop(t *testing.T) {
	var parts store.PartitionMap[int]
	parts.Set("a", 1)

	found, err := parts.Drop(store.Gate{}, "a", func(int) error { t.Fatal("destroy without a gate"); return nil })
	require.Error(t, err)
	require.False(t, found)
	_, ok := parts.Get("a")
	require.True(t, ok, "a drop without a gate changed the map")

	e := &gatedEngine{}
	b := store.New(e)
	defer b.Close()

	found, err = parts.Drop(e.gate, "missing", func(int) error { t.Fatal("destroy of a missing partition"); return nil })
	require.NoError(t, err)
	require.False(t, found)

	refused := errors.New("refused")
	found, err = parts.Drop(e.gate, "a", func(v int) error {
		_, ok := parts.Get("a")
		require.False(t, ok, "destroy runs after the partition is out of the map")
		return refused
	})
	require.ErrorIs(t, err, refused)
	require.True(t, found)
	v, ok := parts.Get("a")
	require.True(t, ok, "a failed drop puts the partition back")
	require.Equal(t, 1, v)

	var destroyed []int
	found, err = parts.Drop(e.gate, "a", func(v int) error { destroyed = append(destroyed, v); return nil })
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, []int{1}, destroyed)
	list, err := parts.Partitions()
	require.NoError(t, err)
	require.Empty(t, list)
}

// BenchmarkPartitionMap measures a data call's lookup (get) and a create's
// change (set, then delete again) of a PartitionMap holding n partitions:
// a create must cost the same at any n.
func BenchmarkPartitionMap(b *testing.B) {
	for _, n := range []int{10, 10000} {
		var parts store.PartitionMap[[7]uint64] // about the size of an engine's entry
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("table-%06d", i)
			parts.Set(names[i], [7]uint64{uint64(i)})
		}
		b.Run(fmt.Sprintf("get/n=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, ok := parts.Get(names[(i*7919)%n]); !ok {
					b.Fatal("missing")
				}
			}
		})
		b.Run(fmt.Sprintf("set/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				parts.Set("new", [7]uint64{1})
				parts.Delete("new")
			}
		})
	}
}
