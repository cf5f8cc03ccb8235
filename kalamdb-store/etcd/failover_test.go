package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
)

// rawClient returns a plain etcd client of the cluster c, for what the
// backend does not do (compaction, finding the leader).
func rawClient(t testing.TB, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// leader returns the index of the cluster's leader.
func leader(t testing.TB, c *etcdtest.Cluster) int {
	t.Helper()
	cli := rawClient(t, c)
	for i, m := range c.Members {
		if !m.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, m.ClientURL)
		cancel()
		require.NoError(t, err)
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no member is the leader")
	return -1
}

// TestServesOnAQuorum: a workload of put-if-absent batches runs while the
// cluster's leader is killed (SIGKILL) in its middle; the backend goes on serving
// on the two members left. A batch that fails meanwhile fails with
// store.ErrUnavailable only, and is tried again: a try that then finds its
// key present learns that the failed one was applied. Every key ends up
// written exactly once, with its value.
func TestServesOnAQuorum(t *testing.T) {
	c := etcdtest.StartT(t, etcdtest.Options{Members: 3})
	cfg := testConfig(c)
	b, err := OpenWith(context.Background(), cfg)
	require.NoError(t, err)
	defer b.Close()
	ctx := context.Background()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))

	const keys, stopAt = 300, 100
	unavailable, retried := 0, 0
	for i := 0; i < keys; i++ {
		if i == stopAt {
			require.NoError(t, c.Members[leader(t, c)].Kill(), "killing the leader")
		}
		key, value := []byte(fmt.Sprintf("k%04d", i)), []byte(fmt.Sprintf("v%d", i))
		for try := 0; ; try++ {
			require.Less(t, try, 20, "key %d: the backend does not serve on the quorum left", i)
			err := b.Batch(ctx, []store.Operation{store.CheckAbsentOp(p, key), store.PutOp(p, key, value)})
			if err == nil {
				break
			}
			if errors.Is(err, store.ErrConditionFailed) && try > 0 {
				retried++ // the failed try was applied after all
				break
			}
			require.ErrorIs(t, err, store.ErrUnavailable, "key %d: the only error an outage may cause", i)
			unavailable++
		}
	}
	got := collectAll(t, b, p)
	require.Len(t, got, keys)
	for i := 0; i < keys; i++ {
		require.Equal(t, fmt.Sprintf("v%d", i), got[fmt.Sprintf("k%04d", i)])
	}
	t.Logf("%d batches through a leader's kill: %d failed with ErrUnavailable, %d of those applied all the same", keys, unavailable, retried)
}

func collectAll(t testing.TB, b store.StorageBackend, p store.Partition) map[string]string {
	t.Helper()
	it, err := b.Scan(context.Background(), p, store.ScanOptions{})
	require.NoError(t, err)
	defer it.Close()
	out := map[string]string{}
	for it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	require.NoError(t, it.Err())
	return out
}

// TestQuorumLost: with two of three members stopped, every operation
// fails with store.ErrUnavailable, bounded by request_timeout, rather than
// hang; once a member is back, the backend serves again, and the writes
// that failed are either applied whole or not at all.
func TestQuorumLost(t *testing.T) {
	c := etcdtest.StartT(t, etcdtest.Options{Members: 3})
	cfg := testConfig(c)
	cfg.RequestTimeout = Duration(time.Second)
	b, err := OpenWith(context.Background(), cfg)
	require.NoError(t, err)
	defer b.Close()
	ctx := context.Background() // no deadline: request_timeout alone bounds each call
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))

	require.NoError(t, c.Members[0].Stop())
	require.NoError(t, c.Members[1].Stop())
	calls := map[string]func() error{
		"get": func() error { _, err := b.Get(ctx, p, []byte("k")); return err },
		"put": func() error { return b.Put(ctx, p, []byte("k"), []byte("v2")) },
		"batch": func() error {
			return b.Batch(ctx, []store.Operation{store.CheckValueOp(p, []byte("k"), []byte("v")), store.PutOp(p, []byte("k"), []byte("v3"))})
		},
		"scan": func() error {
			it, err := b.Scan(ctx, p, store.ScanOptions{})
			if err == nil {
				_ = it.Close()
			}
			return err
		},
		"create": func() error { return b.CreatePartition(ctx, store.MustPartition("q")) },
		"exists": func() error { _, err := b.PartitionExists(ctx, p); return err },
	}
	for name, call := range calls {
		err := call()
		require.ErrorIs(t, err, store.ErrUnavailable, name)
		require.ErrorContains(t, err, "request_timeout", "%s: the error says what bounded it", name)
	}

	// The caller's own deadline, shorter than request_timeout, is the
	// caller's: the error wraps context.DeadlineExceeded, not an outage.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = b.Put(short, p, []byte("k"), []byte("v4"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, store.ErrUnavailable)

	require.NoError(t, c.Members[1].Restart())
	var got []byte
	for try := 0; ; try++ {
		require.Less(t, try, 30, "the backend serves again once a quorum is back")
		if got, err = b.Get(ctx, p, []byte("k")); err == nil {
			break
		}
		require.ErrorIs(t, err, store.ErrUnavailable)
	}
	// The writes above failed for want of a quorum, but the member left
	// may have logged them: once the quorum is back they may be applied.
	// An outage loses the reply, not necessarily the request
	// (store.ErrUnavailable): the key holds one of the values it may.
	require.Contains(t, []string{"v", "v2", "v3", "v4"}, string(got))
}

// TestUnreachableAtOpen: a cluster that does not answer is
// store.ErrUnavailable at open, within dial_timeout.
func TestUnreachableAtOpen(t *testing.T) {
	port, err := etcdtest.FreePort()
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Endpoints = []string{fmt.Sprintf("http://127.0.0.1:%d", port)}
	cfg.DialTimeout, cfg.RequestTimeout = Duration(300*time.Millisecond), Duration(300*time.Millisecond)
	_, err = OpenWith(context.Background(), cfg)
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.ErrorContains(t, err, cfg.Endpoints[0])
}

// TestScanAcrossCompaction: a scan reads every page at the revision of its
// first; when the cluster compacts that revision away under it, the
// iterator ends with an error that says so, never with a later state.
func TestScanAcrossCompaction(t *testing.T) {
	c := etcdtest.Shared(t)
	cfg := testConfig(c)
	cfg.ScanChunk = 2
	b, err := OpenWith(context.Background(), cfg)
	require.NoError(t, err)
	defer b.Close()
	ctx := context.Background()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	for i := 0; i < 6; i++ {
		require.NoError(t, b.Put(ctx, p, []byte{byte('a' + i)}, []byte("old")))
	}

	// Without compaction the pages read the state as of Scan.
	it, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.True(t, it.Next())
	require.NoError(t, b.Put(ctx, p, []byte("e"), []byte("new")))
	require.NoError(t, b.Delete(ctx, p, []byte("f")))
	require.NoError(t, b.DropPartition(ctx, p))
	var seen []string
	for ok := true; ok; ok = it.Next() {
		seen = append(seen, string(it.Key())+"="+string(it.Value()))
	}
	require.NoError(t, it.Close())
	require.Equal(t, []string{"a=old", "b=old", "c=old", "d=old", "e=old", "f=old"}, seen)

	require.NoError(t, b.CreatePartition(ctx, p))
	for i := 0; i < 6; i++ {
		require.NoError(t, b.Put(ctx, p, []byte{byte('a' + i)}, []byte("old")))
	}
	it, err = b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	defer it.Close()
	require.True(t, it.Next())
	require.True(t, it.Next(), "the first page")
	require.NoError(t, b.Put(ctx, p, []byte("e"), []byte("new")))
	cli := rawClient(t, c)
	st, err := cli.Get(ctx, "any")
	require.NoError(t, err)
	_, err = cli.Compact(ctx, st.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	require.False(t, it.Next(), "the next page's revision is gone")
	require.ErrorIs(t, it.Err(), rpctypes.ErrCompacted)
	require.ErrorContains(t, it.Err(), "was compacted while the scan was open")
	require.True(t, strings.Contains(it.Err().Error(), `"p"`), "the error names the partition")
}
