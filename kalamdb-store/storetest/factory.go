package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// testFactory opens the backend through a registry, as the server does with
// the name config.toml gives: the registered name is the only one, the
// section Harness.Config gives opens a working backend with the
// capabilities of the one Harness.New made, and a section with an unknown
// key is refused with store.ErrInvalidArgument and an error that names the
// key, never silently ignored.
func testFactory(t *testing.T, e *env) {
	if e.h.Register == nil || e.h.Config == nil {
		t.Skip("storetest: the harness has no Register and Config: not a registered backend")
	}
	r := store.NewRegistry()
	e.h.Register(r)
	names := r.Names()
	require.Len(t, names, 1, "Register adds one backend")
	name := names[0]

	b, err := r.Open(e.ctx, name, e.h.Config(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	assert.Equal(t, e.b.Capabilities(), b.Capabilities(), "the registry opens the same backend as Harness.New")
	p, err := store.NewPartition("factory")
	require.NoError(t, err)
	require.NoError(t, b.CreatePartition(e.ctx, p))
	require.NoError(t, b.Put(e.ctx, p, []byte("k"), []byte("v")))
	got, err := b.Get(e.ctx, p, []byte("k"))
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), got)
	require.NoError(t, b.Close())

	const unknown = "no_such_setting_xyz"
	cfg := e.h.Config(t)
	cfg[unknown] = 1
	refused, err := r.Open(context.Background(), name, cfg)
	if err == nil {
		_ = refused.Close()
	}
	require.ErrorIs(t, err, store.ErrInvalidArgument, "an unknown key in [storage.%s]", name)
	assert.ErrorContains(t, err, unknown, "the error names the unknown key")
}
