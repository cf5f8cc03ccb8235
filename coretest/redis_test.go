package coretest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// TestSeveralServersOnRedis runs the part of the table-store suite where
// two table layers stand for two servers on a real Redis server, a
// backend several processes share: every backend of a test is a fresh key
// prefix on one redis-server started for the test.
func TestSeveralServersOnRedis(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	var n atomic.Int64
	tablestest.RunSeveralServers(t, tablestest.Harness{
		Name: "redis",
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			cfg := redis.DefaultConfig()
			cfg.Addr = srv.Addr
			cfg.KeyPrefix = "t" + strconv.FormatInt(n.Add(1), 10) + ":"
			b, err := redis.OpenWith(context.Background(), cfg)
			require.NoError(t, err)
			require.True(t, b.Capabilities().MultiProcess)
			return b, func() (store.StorageBackend, error) { return redis.OpenWith(context.Background(), cfg) }
		},
	})
}
