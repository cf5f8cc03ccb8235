package backends

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func TestRegistryHoldsEveryListedBackend(t *testing.T) {
	reg := Registry()
	var names []string
	for _, b := range List() {
		names = append(names, b.Name)
		for _, a := range b.Aliases {
			canonical, err := reg.Resolve(a)
			require.NoError(t, err)
			assert.Equal(t, b.Name, canonical)
		}
	}
	assert.Equal(t, reg.Names(), names)
	assert.Contains(t, names, "memory")
	assert.Contains(t, names, "rocksdb")
}

func TestCheckDecodesAndValidatesWithoutOpening(t *testing.T) {
	for _, b := range List() {
		t.Run(b.Name, func(t *testing.T) {
			assert.NoError(t, Check(b.Name, store.ConfigMap(nil)), "an empty section takes the defaults")
			err := Check(b.Name, store.ConfigMap{"no_such_key": 1})
			assert.ErrorIs(t, err, store.ErrInvalidArgument)
			assert.ErrorContains(t, err, "no_such_key")
		})
	}
	assert.ErrorContains(t, Check("rocksdb", store.ConfigMap{"block_cache_mb": 0}), "block_cache_mb")
	assert.ErrorIs(t, Check("nosuch", nil), store.ErrInvalidArgument)
}

func TestLookupByAlias(t *testing.T) {
	b, ok := Lookup("in-memory")
	require.True(t, ok)
	assert.Equal(t, "memory", b.Name)
	assert.False(t, b.Durable)
	_, ok = Lookup("nosuch")
	assert.False(t, ok)
}
