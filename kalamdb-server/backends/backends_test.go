package backends

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
)

func TestRegistryHoldsEveryListedBackend(t *testing.T) {
	set := Default()
	reg := set.Registry()
	var names []string
	for _, b := range set.List() {
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
	assert.Contains(t, names, "etcd")
}

func TestCheckDecodesAndValidatesWithoutOpening(t *testing.T) {
	set := Default()
	for _, b := range set.List() {
		t.Run(b.Name, func(t *testing.T) {
			assert.NoError(t, set.Check(b.Name, store.ConfigMap(nil)), "an empty section takes the defaults")
			err := set.Check(b.Name, store.ConfigMap{"no_such_key": 1})
			assert.ErrorIs(t, err, store.ErrInvalidArgument)
			assert.ErrorContains(t, err, "no_such_key")
		})
	}
	assert.ErrorContains(t, set.Check("rocksdb", store.ConfigMap{"block_cache_mb": 0}), "block_cache_mb")
	assert.NoError(t, set.Check("etcd", store.ConfigMap{"endpoints": []any{"http://10.0.0.5:2379", "http://10.0.0.6:2379"}, "prefix": "prod"}),
		"[storage] backend = \"etcd\" with its section")
	assert.ErrorContains(t, set.Check("etcd", store.ConfigMap{"endpoints": []any{"10.0.0.5:2379"}}), "endpoints")
	assert.ErrorIs(t, set.Check("nosuch", nil), store.ErrInvalidArgument)
}

// A set refuses a backend without the functions it needs and a name taken
// twice, naming them; a third-party backend joins the built-in ones.
func TestNewSet(t *testing.T) {
	extra := Backend{Name: "mykv", Aliases: []string{"my-kv"}, Durable: true, Summary: "a third party's",
		Register: func(r *store.Registry) {
			r.Register("mykv", func(context.Context, store.Config) (store.StorageBackend, error) { return memory.New(), nil })
		},
		Decode: DecodeWith(memory.DefaultConfig)}
	set, err := NewSet(append(Builtin(), extra)...)
	require.NoError(t, err)
	b, err := set.Registry().Open(context.Background(), "my-kv", nil)
	require.NoError(t, err, "the alias resolves through the set's registry")
	require.NoError(t, b.Close())
	assert.Contains(t, set.Names(), "mykv")

	_, err = NewSet(append(Builtin(), Backend{Name: "memory", Register: extra.Register, Decode: extra.Decode})...)
	assert.ErrorContains(t, err, `two storage backends are called "memory"`)
	_, err = NewSet(append(Builtin(), Backend{Name: "x", Aliases: []string{"in-memory"}, Register: extra.Register, Decode: extra.Decode})...)
	assert.ErrorContains(t, err, `name "in-memory" is taken by both "memory" and "x"`)
	_, err = NewSet(Backend{Name: "x", Register: extra.Register})
	assert.ErrorContains(t, err, `storage backend "x" needs both Register and Decode`)
	_, err = NewSet(Backend{Name: "x", Register: func(*store.Registry) {}, Decode: extra.Decode})
	assert.ErrorContains(t, err, `storage backend "x" did not register under its name`)
}

func TestLookupByAlias(t *testing.T) {
	b, ok := Default().Lookup("in-memory")
	require.True(t, ok)
	assert.Equal(t, "memory", b.Name)
	assert.False(t, b.Durable)
	_, ok = Default().Lookup("nosuch")
	assert.False(t, ok)
}
