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
		for _, a := range set.AliasesOf(b.Name) {
			canonical, err := reg.Resolve(a)
			require.NoError(t, err)
			assert.Equal(t, b.Name, canonical)
		}
	}
	assert.Equal(t, reg.Names(), names)
	assert.Contains(t, names, "memory")
	assert.Contains(t, names, "rocksdb")
	assert.Contains(t, names, "etcd")
	assert.Equal(t, []string{"in-memory"}, set.AliasesOf("memory"), "the aliases come from the backend's Register")
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
	open := func(context.Context, store.Config) (store.StorageBackend, error) { return memory.New(), nil }
	extra := Backend{Name: "mykv", Durable: true, Summary: "a third party's",
		Register: func(r *store.Registry) {
			r.Register("mykv", open)
			r.Alias("my-kv", "mykv")
		},
		Decode: DecodeWith(memory.DefaultConfig)}
	set, err := NewSet(append(Builtin(), extra)...)
	require.NoError(t, err)
	b, err := set.Registry().Open(context.Background(), "my-kv", nil)
	require.NoError(t, err, "the alias resolves through the set's registry")
	require.NoError(t, b.Close())
	assert.Contains(t, set.Names(), "mykv")

	_, err = NewSet(append(Builtin(), Backend{Name: "memory", Register: func(r *store.Registry) { r.Register("memory", open) }, Decode: extra.Decode})...)
	assert.ErrorContains(t, err, `two storage backends are called "memory"`)
	claims := func(r *store.Registry) { r.Register("x", open); r.Alias("in-memory", "x") }
	_, err = NewSet(append(Builtin(), Backend{Name: "x", Register: claims, Decode: extra.Decode})...)
	assert.ErrorContains(t, err, `name "in-memory" is taken by both "memory" and "x"`)
	_, err = NewSet(Backend{Name: "x", Register: func(r *store.Registry) { r.Register("y", open) }, Decode: extra.Decode})
	assert.ErrorContains(t, err, `storage backend "x" did not register under its name (it registered ["y"])`)
	_, err = NewSet(Backend{Name: "x", Register: func(r *store.Registry) { r.Register("x", open); r.Register("x", open) }, Decode: extra.Decode})
	assert.ErrorContains(t, err, `storage backend "x": registering it failed: kalamdb-store: backend "x" registered twice`)
	_, err = NewSet(Backend{Name: "x", Register: extra.Register})
	assert.ErrorContains(t, err, `storage backend "x" needs both Register and Decode`)
	_, err = NewSet(Backend{Name: "x", Register: func(*store.Registry) {}, Decode: extra.Decode})
	assert.ErrorContains(t, err, `storage backend "x" did not register under its name`)
	assert.Equal(t, []string{"my-kv"}, set.AliasesOf("mykv"))
}

func TestLookupByAlias(t *testing.T) {
	b, ok := Default().Lookup("in-memory")
	require.True(t, ok)
	assert.Equal(t, "memory", b.Name)
	assert.False(t, b.Durable)
	_, ok = Default().Lookup("nosuch")
	assert.False(t, ok)
}
