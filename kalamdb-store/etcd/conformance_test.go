package etcd

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fx, ok := fixture.Built(); ok {
		fx.close()
	}
	if err := etcdtest.StopShared(); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// testConfig returns the configuration of a fresh backend on the cluster
// c: its own prefix.
func testConfig(c *etcdtest.Cluster) Config {
	cfg := DefaultConfig()
	cfg.Endpoints = c.Endpoints()
	cfg.Prefix = etcdtest.FreshPrefix()
	return cfg
}

// harness opens backends on the cluster that cluster returns, each with a
// fresh prefix and edit applied. Reopen connects a new client to the same
// cluster and prefix, where the data lives.
func harness(name string, cluster func(t testing.TB) *etcdtest.Cluster, edit func(*Config)) storetest.Harness {
	return storetest.Harness{
		Name: name,
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			cfg := testConfig(cluster(t))
			if edit != nil {
				edit(&cfg)
			}
			b, err := OpenWith(context.Background(), cfg)
			require.NoError(t, err)
			return b, func() (store.StorageBackend, error) { return OpenWith(context.Background(), cfg) }
		},
		Register: Register,
		Config: func(t testing.TB) store.ConfigMap {
			return store.ConfigMap{"endpoints": cluster(t).Endpoints(), "prefix": etcdtest.FreshPrefix()}
		},
	}
}

// TestConformance runs the suite against a three-member cluster.
func TestConformance(t *testing.T) {
	storetest.Run(t, harness("etcd", etcdtest.Shared, nil))
}

// TestConformanceSmallPages runs the suite with two keys per scan round
// trip, so that every scan of more than two keys reads several pages at
// its revision while the suite writes under it.
func TestConformanceSmallPages(t *testing.T) {
	storetest.Run(t, harness("etcd-chunk2", etcdtest.Shared, func(c *Config) { c.ScanChunk = 2 }))
}
