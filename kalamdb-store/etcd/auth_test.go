package etcd

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
)

// TestAuthentication: on a cluster with authentication enabled, the
// backend works as the user of username and password; a wrong password is
// refused with etcd's word for it, not as an outage, and never printed.
func TestAuthentication(t *testing.T) {
	c := etcdtest.StartT(t, etcdtest.Options{Members: 1})
	cli := rawClient(t, c)
	ctx := context.Background()
	_, err := cli.RoleAdd(ctx, "root")
	require.NoError(t, err)
	_, err = cli.UserAdd(ctx, "root", "root-secret")
	require.NoError(t, err)
	_, err = cli.UserGrantRole(ctx, "root", "root")
	require.NoError(t, err)
	_, err = cli.UserAdd(ctx, "kalamdb", "s3cret-pw")
	require.NoError(t, err)
	_, err = cli.RoleAdd(ctx, "kalamdb")
	require.NoError(t, err)
	cfg := testConfig(c)
	_, err = cli.RoleGrantPermission(ctx, "kalamdb", cfg.Prefix+"/", cfg.Prefix+"0", 2 /* read and write */)
	require.NoError(t, err)
	_, err = cli.UserGrantRole(ctx, "kalamdb", "kalamdb")
	require.NoError(t, err)
	_, err = cli.AuthEnable(ctx)
	require.NoError(t, err)

	cfg.Username, cfg.Password = "kalamdb", "s3cret-pw"
	b, err := OpenWith(ctx, cfg)
	require.NoError(t, err)
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Batch(ctx, []store.Operation{store.CheckAbsentOp(p, []byte("k")), store.PutOp(p, []byte("k"), []byte("v"))}))
	got, err := b.Get(ctx, p, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v", string(got))

	cfg.Password = "wrong-pw"
	_, err = OpenWith(ctx, cfg)
	require.ErrorIs(t, err, rpctypes.ErrAuthFailed)
	require.NotErrorIs(t, err, store.ErrUnavailable)
	require.NotContains(t, err.Error(), "wrong-pw")
}
