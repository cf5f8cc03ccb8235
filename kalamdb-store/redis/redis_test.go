package redis

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
)

// open returns a backend on addr with a fresh key prefix and the given scan
// chunk (default when 0); it is closed when the test ends.
func open(t testing.TB, addr string, scanChunk int) (store.StorageBackend, Config) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = addr
	cfg.KeyPrefix = freshPrefix()
	if scanChunk > 0 {
		cfg.ScanChunk = scanChunk
	}
	b, err := OpenWith(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b, cfg
}

// rawClient is a plain go-redis client on addr, closed when the test ends.
func rawClient(t testing.TB, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustPart(t testing.TB, b store.StorageBackend, name string) store.Partition {
	t.Helper()
	p := store.MustPartition(name)
	require.NoError(t, b.CreatePartition(context.Background(), p))
	return p
}

func scanAll(t testing.TB, b store.StorageBackend, p store.Partition, opts store.ScanOptions) []string {
	t.Helper()
	it, err := b.Scan(context.Background(), p, opts)
	require.NoError(t, err)
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	require.NoError(t, it.Close())
	return out
}

// TestKeyPrefixes: different prefixes are separate databases on one server;
// the same prefix is one database shared by every backend that opens it,
// as two KalamDB processes would.
func TestKeyPrefixes(t *testing.T) {
	ctx := context.Background()
	a, cfg := open(t, shared.Addr, 0)
	other, _ := open(t, shared.Addr, 0)
	p := mustPart(t, a, "users")
	require.NoError(t, a.Put(ctx, p, []byte("k"), []byte("from a")))

	ok, err := other.PartitionExists(ctx, p)
	require.NoError(t, err)
	require.False(t, ok, "another prefix does not see the partition")
	parts, err := other.ListPartitions(ctx)
	require.NoError(t, err)
	require.Empty(t, parts)

	same, err := OpenWith(ctx, cfg)
	require.NoError(t, err)
	defer same.Close()
	v, err := same.Get(ctx, p, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "from a", string(v), "the same prefix shares the data")
	require.NoError(t, same.Batch(ctx, []store.Operation{
		store.PutOp(p, []byte("k2"), []byte("from same")),
		store.DeleteOp(p, []byte("k")),
	}))
	require.Equal(t, []string{"k2=from same"}, scanAll(t, a, p, store.ScanOptions{}))

	require.NoError(t, other.CreatePartition(ctx, p))
	require.Empty(t, scanAll(t, other, p, store.ScanOptions{}), "a partition of the same name under another prefix is empty")
}

// TestDataLayout pins the documented Redis keys, which operators see and
// which another version of this package must keep reading.
func TestDataLayout(t *testing.T) {
	ctx := context.Background()
	b, cfg := open(t, shared.Addr, 0)
	p := mustPart(t, b, "orders.v1")
	require.NoError(t, b.Put(ctx, p, []byte("\x00key\xff"), []byte("val")))
	raw := rawClient(t, shared.Addr)
	pre := cfg.KeyPrefix

	gen, err := raw.HGet(ctx, pre+"/partitions", "orders.v1").Result()
	require.NoError(t, err)
	require.Equal(t, "1", gen)
	require.Equal(t, "1", raw.Get(ctx, pre+"/generation").Val())
	require.Equal(t, []string{"\x00key\xff"}, raw.ZRangeByLex(ctx, "{"+pre+"/orders.v1}/keys", &goredis.ZRangeBy{Min: "-", Max: "+"}).Val())
	require.Equal(t, "val", raw.HGet(ctx, "{"+pre+"/orders.v1}/values", "\x00key\xff").Val())

	require.NoError(t, b.DropPartition(ctx, p))
	n, err := raw.Exists(ctx, pre+"/partitions", "{"+pre+"/orders.v1}/keys", "{"+pre+"/orders.v1}/values").Result()
	require.NoError(t, err)
	require.Zero(t, n, "a drop removes the partition's keys (the registry hash is empty, so Redis removes it too)")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.Equal(t, "2", raw.HGet(ctx, pre+"/partitions", "orders.v1").Val(), "a new creation is a new generation")
}

// TestForeignKeysWriteNothing: when something else wrote under the prefix,
// writes fail with an error naming the Redis key, and write nothing.
func TestForeignKeysWriteNothing(t *testing.T) {
	ctx := context.Background()
	b, cfg := open(t, shared.Addr, 0)
	good := mustPart(t, b, "good")
	bad := mustPart(t, b, "bad")
	require.NoError(t, b.Put(ctx, good, []byte("k"), []byte("v0")))
	raw := rawClient(t, shared.Addr)
	badKeys := "{" + cfg.KeyPrefix + "/bad}/keys"
	require.NoError(t, raw.Set(ctx, badKeys, "not a sorted set", 0).Err())

	err := b.Put(ctx, bad, []byte("k"), []byte("v"))
	require.Error(t, err)
	require.Contains(t, err.Error(), badKeys)
	require.Contains(t, err.Error(), "WRONGTYPE")
	require.Equal(t, int64(0), raw.Exists(ctx, "{"+cfg.KeyPrefix+"/bad}/values").Val(), "put wrote nothing")

	err = b.Batch(ctx, []store.Operation{
		store.PutOp(good, []byte("k"), []byte("v1")),
		store.PutOp(good, []byte("k2"), []byte("v1")),
		store.PutOp(bad, []byte("k"), []byte("v1")),
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), badKeys)
	require.Equal(t, []string{"k=v0"}, scanAll(t, b, good, store.ScanOptions{}), "the batch wrote nothing")

	require.Error(t, b.Delete(ctx, bad, []byte("k")))

	// The same with a values hash of another type.
	other := mustPart(t, b, "other")
	otherValues := "{" + cfg.KeyPrefix + "/other}/values"
	require.NoError(t, raw.RPush(ctx, otherValues, "a list").Err())
	for name, err := range map[string]error{
		"put":    b.Put(ctx, other, []byte("k"), []byte("v")),
		"delete": b.Delete(ctx, other, []byte("k")),
		"batch":  b.Batch(ctx, []store.Operation{store.PutOp(good, []byte("k3"), []byte("v")), store.PutOp(other, []byte("k"), []byte("v"))}),
	} {
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "WRONGTYPE", name)
	}
	require.Equal(t, int64(0), raw.Exists(ctx, "{"+cfg.KeyPrefix+"/other}/keys").Val(), "nothing was written to the sorted set")
	require.Equal(t, []string{"k=v0"}, scanAll(t, b, good, store.ScanOptions{}), "nor to the other partition of the batch")

	// Creating a partition starts it empty, whatever was left under its keys.
	require.NoError(t, b.DropPartition(ctx, bad))
	require.NoError(t, raw.Set(ctx, badKeys, "junk", 0).Err())
	require.NoError(t, b.CreatePartition(ctx, bad))
	require.NoError(t, b.Put(ctx, bad, []byte("k"), []byte("v")))
	require.Equal(t, []string{"k=v"}, scanAll(t, b, bad, store.ScanOptions{}))
}

// TestBatchAtomicForReaders: a reader that looks at the server in one
// atomic step (a MULTI/EXEC) never sees half a batch, across partitions and
// across the sorted set and hash of each. Scans are not such readers (they
// take two round trips), so the reader here is a raw transaction.
func TestBatchAtomicForReaders(t *testing.T) {
	ctx := context.Background()
	b, cfg := open(t, shared.Addr, 0)
	p := mustPart(t, b, "tokens")
	q := mustPart(t, b, "ledger")
	pz, ph := "{"+cfg.KeyPrefix+"/tokens}/keys", "{"+cfg.KeyPrefix+"/tokens}/values"
	qz := "{" + cfg.KeyPrefix + "/ledger}/keys"
	const slots, moves = 8, 400
	require.NoError(t, b.Put(ctx, p, []byte("slot0"), []byte("token")))
	done := make(chan struct{})
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 0; i < moves; i++ {
			from, to := fmt.Sprintf("slot%d", i%slots), fmt.Sprintf("slot%d", (i+1)%slots)
			if err := b.Batch(ctx, []store.Operation{
				store.DeleteOp(p, []byte(from)),
				store.PutOp(q, []byte(fmt.Sprintf("%04d", i)), []byte(to)),
				store.PutOp(p, []byte(to), []byte("token")),
			}); err != nil {
				errs <- err
				return
			}
		}
	}()
	raw := rawClient(t, shared.Addr)
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for looks := 0; ; looks++ {
				select {
				case <-done:
					if looks > 0 {
						return
					}
				default:
				}
				var keys *goredis.StringSliceCmd
				var vals *goredis.MapStringStringCmd
				var ledger *goredis.IntCmd
				_, err := raw.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
					keys = pipe.ZRange(ctx, pz, 0, -1)
					vals = pipe.HGetAll(ctx, ph)
					ledger = pipe.ZCard(ctx, qz)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				want := fmt.Sprintf("slot%d", ledger.Val()%slots)
				if len(keys.Val()) != 1 || keys.Val()[0] != want || len(vals.Val()) != 1 || vals.Val()[want] != "token" {
					errs <- fmt.Errorf("after %d moves: keys %q, values %q; want only %s", ledger.Val(), keys.Val(), vals.Val(), want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, scanAll(t, b, q, store.ScanOptions{}), moves)
}

// TestLargeBatch applies a batch far larger than one scan chunk across
// partitions, and rejects a large batch with a missing partition at its end
// without applying any of it.
func TestLargeBatch(t *testing.T) {
	ctx := context.Background()
	b, _ := open(t, shared.Addr, 0)
	parts := []store.Partition{mustPart(t, b, "a"), mustPart(t, b, "b"), mustPart(t, b, "c")}
	const n = 30000
	ops := make([]store.Operation, 0, n+1)
	for i := 0; i < n; i++ {
		ops = append(ops, store.PutOp(parts[i%3], []byte(fmt.Sprintf("k%06d", i)), []byte(strings.Repeat("v", i%50))))
	}
	missing := store.MustPartition("missing")
	err := b.Batch(ctx, append(ops, store.DeleteOp(missing, []byte("k"))))
	require.ErrorIs(t, err, store.ErrPartitionNotFound)
	require.Contains(t, err.Error(), fmt.Sprintf("batch operation %d", n))
	require.Contains(t, err.Error(), `"missing"`)
	for _, p := range parts {
		require.Empty(t, scanAll(t, b, p, store.ScanOptions{Limit: 1}), "nothing applied")
	}

	require.NoError(t, b.Batch(ctx, ops))
	for i, p := range parts {
		got := scanAll(t, b, p, store.ScanOptions{})
		require.Len(t, got, n/3)
		require.Equal(t, fmt.Sprintf("k%06d=%s", i, strings.Repeat("v", i%50)), got[0])
	}
}

// roundTrips counts the commands and pipelines a client sends: one each per
// round trip to the server.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestScanReadsInChunks checks that a scan pages through the partition, one
// bounded chunk per round trip, instead of reading it whole.
func TestScanReadsInChunks(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Addr, cfg.KeyPrefix, cfg.ScanChunk = shared.Addr, freshPrefix(), 10
	e, err := openEngine(ctx, cfg)
	require.NoError(t, err)
	defer e.Close()
	p := store.MustPartition("p")
	require.NoError(t, e.CreatePartition(ctx, p))
	var ops []store.Operation
	for i := 0; i < 1000; i++ {
		ops = append(ops, store.PutOp(p, []byte(fmt.Sprintf("%04d", i)), []byte("v")))
	}
	require.NoError(t, e.Batch(ctx, ops))
	var trips roundTrips
	e.client.AddHook(&trips)

	for _, rev := range []bool{false, true} {
		before := trips.n.Load()
		sit, err := e.Scan(ctx, p, store.Range{Reverse: rev})
		require.NoError(t, err)
		it := sit.(*iterator)
		n := 0
		for it.Next() {
			require.LessOrEqual(t, len(it.ks), cfg.ScanChunk, "at most one chunk of values in memory")
			require.LessOrEqual(t, len(it.next), cfg.ScanChunk, "and one chunk of keys")
			want := n
			if rev {
				want = 999 - n
			}
			require.Equal(t, fmt.Sprintf("%04d", want), string(it.Key()))
			n++
		}
		require.NoError(t, it.Close())
		require.Equal(t, 1000, n)
		require.Equal(t, int64(1000/cfg.ScanChunk+1), trips.n.Load()-before,
			"one round trip per chunk, plus the first, which only lists keys (reverse=%v)", rev)
	}

	// A limit sizes the reads: 15 keys are listed as 10 + 5, and nothing
	// more is listed after them.
	before := trips.n.Load()
	it, err := e.Scan(ctx, p, store.Range{Lower: []byte("0100"), Limit: 15})
	require.NoError(t, err)
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Close())
	require.Equal(t, 15, n)
	require.Equal(t, int64(3), trips.n.Load()-before)
}

// TestScanAcrossDrop: an iterator that reads another chunk after its
// partition was dropped, or dropped and created again, stops with
// ErrPartitionNotFound instead of mixing two generations of the partition.
func TestScanAcrossDrop(t *testing.T) {
	ctx := context.Background()
	for _, recreate := range []bool{false, true} {
		b, _ := open(t, shared.Addr, 2)
		p := mustPart(t, b, "p")
		for i := 0; i < 10; i++ {
			require.NoError(t, b.Put(ctx, p, []byte{byte('a' + i)}, []byte("v")))
		}
		it, err := b.Scan(ctx, p, store.ScanOptions{})
		require.NoError(t, err)
		require.True(t, it.Next())
		require.True(t, it.Next(), "the first chunk holds two keys")
		require.NoError(t, b.DropPartition(ctx, p))
		if recreate {
			require.NoError(t, b.CreatePartition(ctx, p))
			require.NoError(t, b.Put(ctx, p, []byte("c"), []byte("new")))
		}
		require.False(t, it.Next())
		require.ErrorIs(t, it.Err(), store.ErrPartitionNotFound)
		require.Contains(t, it.Err().Error(), "dropped during the scan")
		require.ErrorIs(t, it.Close(), store.ErrPartitionNotFound)
	}
}

// TestTimeouts: a server that does not answer makes operations fail with
// the context's error, or with a timeout after read_timeout, instead of
// hanging.
func TestTimeouts(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Addr = srv.Addr
	cfg.ReadTimeout = Duration(200 * time.Millisecond)
	b, err := OpenWith(ctx, cfg)
	require.NoError(t, err)
	defer b.Close()
	p := mustPart(t, b, "p")
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))

	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true, ReadTimeout: time.Minute})
	defer raw.Close()
	// CLIENT PAUSE holds every client's commands (its own too) until it
	// expires; it has taken effect when it returns.
	require.NoError(t, raw.Do(ctx, "CLIENT", "PAUSE", "3000", "ALL").Err())

	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = b.Get(dctx, p, []byte("k"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, store.ErrUnavailable, "the caller's deadline is not an outage")
	require.ErrorIs(t, b.Put(dctx, p, []byte("k"), []byte("v")), context.DeadlineExceeded)

	_, err = b.Get(ctx, p, []byte("k"))
	require.Error(t, err, "read_timeout bounds a call without a deadline")
	require.Contains(t, err.Error(), "get at "+srv.Addr)
	require.ErrorIs(t, err, store.ErrUnavailable, "a server that does not answer in time is unavailable")
	require.Contains(t, err.Error(), "timeout")

	// PING returns when the pause is over.
	require.NoError(t, raw.Ping(ctx).Err())
	v, err := b.Get(ctx, p, []byte("k"))
	require.NoError(t, err, "the backend recovers when the server answers again")
	require.Equal(t, "v", string(v))
}

// TestStoppedServerIsUnavailable: with the server stopped, every kind of
// call fails with an error wrapping store.ErrUnavailable, distinct from a
// fault; with the server back on its address, the same backend works again.
// The client's own diagnostics reach slog, not standard error.
func TestStoppedServerIsUnavailable(t *testing.T) {
	var logs syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	ctx := context.Background()
	dir := t.TempDir()
	srv, err := redistest.Start(redistest.Options{Dir: dir, Persistent: true})
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Addr = srv.Addr
	cfg.DialTimeout = Duration(200 * time.Millisecond)
	b, err := OpenWith(ctx, cfg)
	require.NoError(t, err)
	defer b.Close()
	p := mustPart(t, b, "p")
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	require.NoError(t, srv.Stop())

	_, err = b.Get(ctx, p, []byte("k"))
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.Contains(t, err.Error(), "get at "+srv.Addr)
	require.ErrorIs(t, b.Put(ctx, p, []byte("k"), []byte("w")), store.ErrUnavailable)
	require.ErrorIs(t, b.Batch(ctx, []store.Operation{store.PutOp(p, []byte("k"), []byte("w"))}), store.ErrUnavailable)
	_, err = b.Scan(ctx, p, store.ScanOptions{})
	if err == nil {
		t.Fatal("a scan of a stopped server succeeded")
	}
	require.ErrorIs(t, err, store.ErrUnavailable)
	_, err = b.ListPartitions(ctx)
	require.ErrorIs(t, err, store.ErrUnavailable)

	port, err := strconv.Atoi(srv.Addr[strings.LastIndexByte(srv.Addr, ':')+1:])
	require.NoError(t, err)
	redistest.StartT(t, redistest.Options{Dir: dir, Persistent: true, Port: port})
	v, err := b.Get(ctx, p, []byte("k"))
	require.NoError(t, err, "the backend works again once the server is back")
	require.Equal(t, "v", string(v))

	(clientLog{}).Printf(ctx, "redis: pool: %s", "a diagnostic")
	require.Contains(t, logs.String(), `level=DEBUG msg="pool: a diagnostic" backend=redis source="redis client"`)
}

// TestSurvivesServerRestart: with an append-only file, data and partitions
// survive a restart of the server, not only a reopen of the client.
func TestSurvivesServerRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := redistest.Start(redistest.Options{Dir: dir, Persistent: true})
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Addr = srv.Addr
	b, err := OpenWith(ctx, cfg)
	require.NoError(t, err)
	a := mustPart(t, b, "a")
	gone := mustPart(t, b, "gone")
	require.NoError(t, b.Batch(ctx, []store.Operation{
		store.PutOp(a, []byte("k1"), []byte("v1")),
		store.PutOp(a, []byte("\x00\xff"), []byte("bin")),
		store.PutOp(gone, []byte("k"), []byte("v")),
	}))
	require.NoError(t, b.DropPartition(ctx, gone))
	require.NoError(t, b.Close())
	require.NoError(t, srv.Stop())

	srv = redistest.StartT(t, redistest.Options{Dir: dir, Persistent: true})
	cfg.Addr = srv.Addr
	b, err = OpenWith(ctx, cfg)
	require.NoError(t, err)
	defer b.Close()
	parts, err := b.ListPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Partition{a}, parts)
	require.Equal(t, []string{"\x00\xff=bin", "k1=v1"}, scanAll(t, b, a, store.ScanOptions{}))
	// Generations continue after the restart, so a re-created partition is
	// still told apart from the dropped one.
	require.NoError(t, b.CreatePartition(ctx, gone))
	raw := rawClient(t, srv.Addr)
	require.Equal(t, "3", raw.HGet(ctx, cfg.KeyPrefix+"/partitions", "gone").Val())
}

// TestOutOfMemoryWritesNothing: a server at its maxmemory (with the
// noeviction policy the package documentation asks for) refuses writes, and
// a refused batch or put leaves nothing behind.
func TestOutOfMemoryWritesNothing(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{Extra: []string{"--maxmemory", "4mb", "--maxmemory-policy", "noeviction"}})
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Addr = srv.Addr
	b, err := OpenWith(ctx, cfg)
	require.NoError(t, err)
	defer b.Close()
	p := mustPart(t, b, "p")
	q := mustPart(t, b, "q")
	value := []byte(strings.Repeat("x", 64<<10))
	written := 0
	for ; written < 1000; written++ {
		if err := b.Put(ctx, p, []byte(fmt.Sprintf("fill%04d", written)), value); err != nil {
			require.Contains(t, err.Error(), "OOM")
			break
		}
	}
	require.Less(t, written, 1000, "the server reached maxmemory")

	err = b.Batch(ctx, []store.Operation{
		store.PutOp(q, []byte("a"), []byte("small")),
		store.DeleteOp(p, []byte("fill0000")),
		store.PutOp(p, []byte("b"), value),
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "OOM")
	// Reads keep working at maxmemory.
	require.Empty(t, scanAll(t, b, q, store.ScanOptions{}), "the refused batch wrote nothing")
	got := scanAll(t, b, p, store.ScanOptions{Limit: 1})
	require.Equal(t, "fill0000="+string(value), got[0], "nor deleted anything")
	raw := rawClient(t, srv.Addr)
	z, h := "{"+cfg.KeyPrefix+"/p}/keys", "{"+cfg.KeyPrefix+"/p}/values"
	require.Equal(t, int64(written), raw.ZCard(ctx, z).Val(), "only the acknowledged puts are in the sorted set")
	require.Equal(t, int64(written), raw.HLen(ctx, h).Val(), "and in the hash")

	// Deletes still work at maxmemory, and free room for writes.
	for i := 0; i < written; i++ {
		require.NoError(t, b.Delete(ctx, p, []byte(fmt.Sprintf("fill%04d", i))))
	}
	require.NoError(t, b.Put(ctx, q, []byte("a"), []byte("small")))
}

// syncBuffer is a bytes.Buffer that a logger and a test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
