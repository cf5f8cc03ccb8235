package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tablestest"
)

// The table layers of several servers in one process, on one shared
// backend and one segment directory, under many more requests than the
// processes of TestSeveralServers can send: 3 servers, 2 clients each,
// 1,500 requests per client on 4 rows, while flushes and compactions run
// through each server in turn. The history must be linearizable.
func TestSeveralServersInOneProcessAreLinearizable(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		b := tablestest.MultiProcess(memory.New())
		t.Cleanup(func() { _ = b.Close() })
		inProcessLinearizable(t, b)
	})
	t.Run("redis", func(t *testing.T) {
		s := redistest.StartT(t, redistest.Options{})
		cfg := redis.DefaultConfig()
		cfg.Addr = s.Addr
		b, err := redis.OpenWith(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		inProcessLinearizable(t, b)
	})
}

func inProcessLinearizable(t *testing.T, b store.StorageBackend) {
	const servers, perServer, perClient = 3, 2, 1500
	ctx := context.Background()
	dir := t.TempDir()
	ms := make([]*flush.Manager, servers)
	sts := make([]*tables.SharedTableStore, servers)
	for i := range ms {
		m, err := flush.Open(ctx, b, flush.Options{FS: segment.DirFS(dir), CompactSegments: flush.NeverCompact})
		require.NoError(t, err)
		t.Cleanup(m.Stop)
		ms[i] = m
		if i == 0 {
			_, err = m.DB().Catalog().CreateNamespace(ctx, "lin")
			require.NoError(t, err)
			_, err = m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: "lin", Name: "reg", Type: catalog.SharedTable, PrimaryKey: "k",
				Columns: []catalog.Column{{Name: "k", Type: row.TypeInt64}, {Name: "v", Type: row.TypeString}}})
			require.NoError(t, err)
		}
		sts[i], err = m.DB().Shared(ctx, "lin", "reg")
		require.NoError(t, err)
	}
	var (
		mu  sync.Mutex
		ops []porcupine.Operation
		wg  sync.WaitGroup
	)
	done := make(chan struct{})
	churnErr := make(chan error, 1)
	go func() {
		var err error
		defer func() { churnErr <- err }()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			m := ms[i%servers]
			if i%3 == 2 {
				_, err = m.MajorCompact(ctx, "lin", "reg")
			} else {
				_, err = m.Flush(ctx, "lin", "reg")
			}
			if errors.Is(err, lease.ErrHeld) {
				err = nil
			}
			if err != nil {
				return
			}
		}
	}()
	clients := servers * perServer
	errs := make([]error, clients)
	start := time.Now()
	for cl := range clients {
		st := sts[cl%servers]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 11))
			for i := range perClient {
				k := rng.IntN(registers)
				val := fmt.Sprintf("c%d-%d", cl, i)
				in := rowInput{key: k, val: val}
				call := time.Since(start).Nanoseconds()
				var out rowOutput
				var err error
				switch rng.IntN(4) {
				case 0:
					in.op = "get"
					var r row.Row
					if r, err = st.Get(ctx, row.Int64(int64(k))); err == nil {
						out.ok, out.value = true, r.Values[1].Str()
					}
				case 1:
					in.op = "insert"
					_, err = st.Insert(ctx, []row.Value{row.Int64(int64(k)), row.String(val)})
					out.ok = err == nil
				case 2:
					in.op = "update"
					_, err = st.Update(ctx, row.Int64(int64(k)), map[string]row.Value{"v": row.String(val)})
					out.ok = err == nil
				default:
					in.op = "delete"
					err = st.Delete(ctx, row.Int64(int64(k)))
					out.ok = err == nil
				}
				ret := time.Since(start).Nanoseconds()
				if err != nil && !errors.Is(err, core.ErrRowNotFound) && !errors.Is(err, core.ErrDuplicateKey) {
					errs[cl] = fmt.Errorf("client %d, request %d (%s %d): %w", cl, i, in.op, k, err)
					return
				}
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)
	require.NoError(t, <-churnErr)
	require.NoError(t, errors.Join(errs...))
	res, info := porcupine.CheckOperationsVerbose(rowModel, ops, 60*time.Second)
	if res != porcupine.Ok {
		f, err := os.CreateTemp("", "kalamdb-history-*.html")
		require.NoError(t, err)
		require.NoError(t, f.Close())
		_ = porcupine.VisualizePath(rowModel, info, f.Name())
		t.Fatalf("porcupine: the history of %d requests is %s (see %s)", len(ops), res, f.Name())
	}
	t.Logf("porcupine: %d requests through %d servers in %s, linearizable", len(ops), servers, time.Since(start).Round(time.Millisecond))
}
