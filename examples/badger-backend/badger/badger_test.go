package badger_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"

	"example.com/kalamdb-badger/badger"
)

func harness() storetest.Harness {
	return storetest.Harness{
		Name: badger.Name,
		New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
			cfg := badger.DefaultConfig()
			cfg.Path = t.TempDir()
			b, err := badger.OpenWith(cfg)
			require.NoError(t, err)
			reopen := func() (store.StorageBackend, error) { return badger.OpenWith(cfg) }
			return b, reopen
		},
		Register: badger.Register,
		Config: func(t testing.TB) store.ConfigMap {
			return store.ConfigMap{"path": t.TempDir()}
		},
	}
}

func TestConformance(t *testing.T) { storetest.Run(t, harness()) }
