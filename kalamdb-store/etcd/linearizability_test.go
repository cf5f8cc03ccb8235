package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
)

// The linearizability check records what clients saw of concurrent
// operations on a few keys — gets, puts, compare-and-swaps and
// put-if-absents, all through the backend — and asks porcupine whether some
// order of them, each taking effect at one instant between its call and its
// return, explains every answer. An operation that failed with
// store.ErrUnavailable may or may not have been applied: it is recorded as
// returning never, with an unknown outcome, so the checker may place it
// anywhere after its call, or nowhere that anyone observed.

// kvInput is one operation of the history.
type kvInput struct {
	op       string // "get", "put", "cas", "pia" (put-if-absent)
	key      string
	old, val string // cas: from old to val; put, pia: val
}

// kvOutput is what it returned.
type kvOutput struct {
	value   string // get: the value, "" when missing
	found   bool   // get: the key existed
	ok      bool   // cas, pia: the check held and the write was applied
	unknown bool   // failed with ErrUnavailable: applied or not
}

// kvModel is a map of keys to values, one register per key (the history is
// partitioned by key; a missing key holds "" and absent).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(register), input.(kvInput), output.(kvOutput)
		switch in.op {
		case "get":
			return out.found == s.set && out.value == s.value, s
		case "put":
			return true, register{set: true, value: in.val}
		case "cas":
			holds := s.set && s.value == in.old
			if out.unknown {
				if holds {
					return true, register{set: true, value: in.val}
				}
				return true, s
			}
			if out.ok != holds {
				return false, s
			}
			if holds {
				return true, register{set: true, value: in.val}
			}
			return true, s
		case "pia":
			holds := !s.set
			if out.unknown {
				if holds {
					return true, register{set: true, value: in.val}
				}
				return true, s
			}
			if out.ok != holds {
				return false, s
			}
			if holds {
				return true, register{set: true, value: in.val}
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch in.op {
		case "get":
			return fmt.Sprintf("get(%s) -> %q found=%v", in.key, out.value, out.found)
		case "put":
			return fmt.Sprintf("put(%s, %s) unknown=%v", in.key, in.val, out.unknown)
		case "cas":
			return fmt.Sprintf("cas(%s, %s -> %s) -> ok=%v unknown=%v", in.key, in.old, in.val, out.ok, out.unknown)
		}
		return fmt.Sprintf("pia(%s, %s) -> ok=%v unknown=%v", in.key, in.val, out.ok, out.unknown)
	},
}

type register struct {
	set   bool
	value string
}

// recorder collects the history of every client.
type recorder struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

func (r *recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// TestLinearizableUnderCrash runs 6 clients (6 backends, each its own
// connections) of 200 operations each on 3 keys of a three-member
// cluster. A third of the way through, one member is killed (SIGKILL); at
// two thirds it is restarted on its data. porcupine must find the
// history linearizable.
func TestLinearizableUnderCrash(t *testing.T) {
	const clients, perClient, keys = 6, 200, 3
	c := etcdtest.StartT(t, etcdtest.Options{Members: 3})
	cfg := testConfig(c)
	cfg.RequestTimeout = Duration(2 * time.Second)
	ctx := context.Background()
	p := store.MustPartition("registers")
	backends := make([]store.StorageBackend, clients)
	for i := range backends {
		b, err := OpenWith(ctx, cfg)
		require.NoError(t, err)
		defer b.Close()
		backends[i] = b
	}
	require.NoError(t, backends[0].CreatePartition(ctx, p))

	// Client 0 paces the fault: it asks for the kill and the restart at
	// fixed points of its run, and a controller carries them out while the
	// clients go on.
	kill, restart := make(chan struct{}), make(chan struct{})
	faults := make(chan error, 1)
	victim := c.Members[leader(t, c)]
	go func() {
		<-kill
		err := victim.Kill()
		if err == nil {
			<-restart
			err = victim.Restart()
		}
		faults <- err
	}()

	rec := &recorder{}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := backends[cl]
			last := make([]string, keys) // the last value this client read or wrote, per key
			for i := 0; i < perClient; i++ {
				if cl == 0 && i == perClient/3 {
					close(kill)
				}
				if cl == 0 && i == 2*perClient/3 {
					close(restart)
				}
				k := (i*7 + cl) % keys
				key := "k" + strconv.Itoa(k)
				val := fmt.Sprintf("c%d-%d", cl, i)
				var in kvInput
				switch i % 4 {
				case 0:
					in = kvInput{op: "get", key: key}
				case 1:
					in = kvInput{op: "put", key: key, val: val}
				case 2:
					in = kvInput{op: "cas", key: key, old: last[k], val: val}
				default:
					in = kvInput{op: "pia", key: key, val: val}
				}
				call := time.Since(start).Nanoseconds()
				var out kvOutput
				var err error
				switch in.op {
				case "get":
					var v []byte
					v, err = b.Get(ctx, p, []byte(key))
					if errors.Is(err, store.ErrNotFound) {
						err = nil
					} else if err == nil {
						out.found, out.value = true, string(v)
						last[k] = out.value
					}
				case "put":
					err = b.Put(ctx, p, []byte(key), []byte(val))
					if err == nil {
						last[k] = val
					}
				case "cas", "pia":
					check := store.CheckValueOp(p, []byte(key), []byte(in.old))
					if in.op == "pia" {
						check = store.CheckAbsentOp(p, []byte(key))
					}
					err = b.Batch(ctx, []store.Operation{check, store.PutOp(p, []byte(key), []byte(val))})
					switch {
					case err == nil:
						out.ok = true
						last[k] = val
					case errors.Is(err, store.ErrConditionFailed):
						err = nil
					}
				}
				ret := time.Since(start).Nanoseconds()
				if err != nil {
					if !errors.Is(err, store.ErrUnavailable) {
						errs[cl] = fmt.Errorf("client %d, operation %d (%s): %w", cl, i, in.op, err)
						return
					}
					if in.op == "get" {
						continue // a failed read has no effect
					}
					out.unknown, ret = true, math.MaxInt64
				}
				rec.add(porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.NoError(t, <-faults)

	unknown := 0
	for _, op := range rec.ops {
		if op.Output.(kvOutput).unknown {
			unknown++
		}
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, rec.ops, 30*time.Second)
	if res != porcupine.Ok {
		path := t.TempDir() + "/history.html"
		_ = porcupine.VisualizePath(kvModel, info, path)
		t.Fatalf("porcupine: the history of %d operations is %s (see %s)", len(rec.ops), res, path)
	}
	t.Logf("porcupine: %d operations of %d clients, %d of unknown outcome, linearizable (%s, a member killed and restarted)",
		len(rec.ops), clients, unknown, time.Since(start).Round(time.Millisecond))
}

// TestCheckerCatchesStaleRead is the negative control of the model: a read
// that returns a value overwritten before it was called is not
// linearizable, and neither is a compare-and-swap that succeeds against a
// value the key no longer holds.
func TestCheckerCatchesStaleRead(t *testing.T) {
	op := func(cl int, in kvInput, out kvOutput, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: in, Output: out, Call: call, Return: ret}
	}
	good := []porcupine.Operation{
		op(0, kvInput{op: "put", key: "k", val: "a"}, kvOutput{}, 0, 10),
		op(1, kvInput{op: "get", key: "k"}, kvOutput{found: true, value: "a"}, 5, 15),
		op(0, kvInput{op: "cas", key: "k", old: "a", val: "b"}, kvOutput{ok: true}, 20, 30),
		op(1, kvInput{op: "pia", key: "k", val: "c"}, kvOutput{unknown: true}, 25, math.MaxInt64),
	}
	require.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(kvModel, good, 10*time.Second))
	stale := append(good[:3:3], op(1, kvInput{op: "get", key: "k"}, kvOutput{found: true, value: "a"}, 40, 50))
	require.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(kvModel, stale, 10*time.Second))
	lostUpdate := append(good[:3:3], op(1, kvInput{op: "cas", key: "k", old: "a", val: "d"}, kvOutput{ok: true}, 40, 50))
	require.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(kvModel, lostUpdate, 10*time.Second))
}
