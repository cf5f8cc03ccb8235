package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
)

// evictionBlocker wraps the storage backend: once armed, a scan of stream
// table app.ev (what an eviction run starts with) signals on entered and
// blocks until its context is done, then sends the context's error on
// left. It notes whether another table was scanned while that scan was
// blocked.
type evictionBlocker struct {
	store.StorageBackend
	armed   atomic.Bool
	entered chan struct{}
	left    chan error
	ended   atomic.Bool
	overlap atomic.Bool
}

func (b *evictionBlocker) Scan(ctx context.Context, p store.Partition, opts store.ScanOptions) (store.Iterator, error) {
	if _, ns, table, ok := layout.ParseTablePartition(p); ok && b.armed.Load() {
		if ns == "app" && table == "ev" {
			b.entered <- struct{}{}
			<-ctx.Done()
			b.ended.Store(true)
			b.left <- ctx.Err()
			return nil, ctx.Err()
		}
		if !b.ended.Load() {
			b.overlap.Store(true)
		}
	}
	return b.StorageBackend.Scan(ctx, p, opts)
}

// Stream eviction runs on a context that shutdown cancels: a run blocked
// inside the storage backend holds the shutdown up no longer than it takes
// to cancel it, has ended when Shutdown returns, and is stopped before the
// final flush reads any table.
func TestShutdownCancelsABlockedStreamEviction(t *testing.T) {
	blk := &evictionBlocker{entered: make(chan struct{}, 1), left: make(chan error, 1)}
	clk := clock.NewFake(coldStart)
	cfg := rocksConfig(t, t.TempDir(), t.TempDir())
	s, err := open(context.Background(), cfg, slog.New(slog.DiscardHandler), backends.Default(), hooks{
		backend: func(b store.StorageBackend) store.StorageBackend { blk.StorageBackend = b; return blk },
		clock:   clk,
	})
	require.NoError(t, err)
	s.flush.Stop() // no scheduler round: the final flush is the only other reader
	h := s.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces", `{"name":"app"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"ev","type":"stream","columns":[{"name":"n","type":"int64"}]}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables", `{"name":"m","type":"shared","columns":[{"name":"id","type":"int64"}],"primary_key":"id"}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":1}]}`).Code)

	blk.armed.Store(true)
	clk.Advance(time.Duration(cfg.Stream.EvictionIntervalSeconds) * time.Second)
	<-blk.entered
	require.NoError(t, s.Shutdown(context.Background()))
	select {
	case err := <-blk.left:
		assert.ErrorIs(t, err, context.Canceled)
	default:
		t.Fatal("Shutdown returned while an eviction was still blocked in the backend")
	}
	assert.False(t, blk.overlap.Load(), "the final flush read a table while the eviction still ran")
}
