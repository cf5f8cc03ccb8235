package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestUnavailable: the errors that say the cluster cannot answer now are
// told from those that say it refused the request.
func TestUnavailable(t *testing.T) {
	for _, err := range []error{
		rpctypes.ErrNoLeader, rpctypes.ErrTimeout, rpctypes.ErrLeaderChanged, context.DeadlineExceeded,
		fmt.Errorf("wrapped: %w", rpctypes.ErrTimeoutDueToLeaderFail),
		errors.New("rpc error: code = Unavailable desc = connection error: desc = transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"),
		errors.New("rpc error: code = Unavailable desc = error reading from server: EOF"),
	} {
		assert.True(t, unavailable(err), "%v", err)
	}
	for _, err := range []error{
		rpctypes.ErrAuthFailed, rpctypes.ErrTooManyOps, rpctypes.ErrRequestTooLarge, rpctypes.ErrCompacted,
		errors.New("rpc error: code = InvalidArgument desc = etcdserver: duplicate key given in txn request"),
		errors.New("something else"),
	} {
		assert.False(t, unavailable(err), "%v", err)
	}
	assert.Equal(t, "Unavailable", rpcCode(rpctypes.ErrNoLeader))
	assert.Equal(t, "", rpcCode(errors.New("plain")))
}
