package redis

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

// harness opens backends on the server at addr with a fresh key prefix
// each, scanChunk keys per scan round trip (the default when 0). Reopen
// closes nothing itself: it connects a new client to the same server and
// prefix, where the data lives.
func harness(name string, addr func() string, scanChunk int) storetest.Harness {
	return storetest.Harness{
		Name: name,
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			cfg := DefaultConfig()
			cfg.Addr = addr()
			cfg.KeyPrefix = freshPrefix()
			if scanChunk > 0 {
				cfg.ScanChunk = scanChunk
			}
			b, err := OpenWith(context.Background(), cfg)
			require.NoError(t, err)
			return b, func() (store.StorageBackend, error) {
				return OpenWith(context.Background(), cfg)
			}
		},
		Register: Register,
		Config: func(testing.TB) store.ConfigMap {
			return store.ConfigMap{"addr": addr(), "key_prefix": freshPrefix()}
		},
	}
}

func sharedAddr() string { return shared.Addr }

func TestConformance(t *testing.T) {
	storetest.Run(t, harness("redis", sharedAddr, 0))
}

// TestConformanceSmallChunks runs the suite with two keys per scan round
// trip, so that every scan of more than two keys crosses chunk boundaries
// while the suite writes under it.
func TestConformanceSmallChunks(t *testing.T) {
	storetest.Run(t, harness("redis-chunk2", sharedAddr, 2))
}

// TestConformanceOneKeyChunks is the extreme: one key per round trip.
func TestConformanceOneKeyChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: TestConformanceSmallChunks covers chunk boundaries")
	}
	storetest.Run(t, harness("redis-chunk1", sharedAddr, 1))
}

// TestConformancePersistentServer runs the suite against a server of its
// own that writes an append-only file, as a production server would.
func TestConformancePersistentServer(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{Persistent: true})
	storetest.Run(t, harness("redis-aof", func() string { return srv.Addr }, 0))
}
