package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// requireCondition asserts that err is the failure of the check at index
// of the batch, on key of p, with the key found present (exists) or not.
func requireCondition(t testing.TB, err error, index int, kind store.OpKind, p store.Partition, key string, exists bool) {
	t.Helper()
	require.ErrorIs(t, err, store.ErrConditionFailed)
	var ce *store.ConditionError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, index, ce.Index, "the first check that fails, in batch order")
	assert.Equal(t, kind, ce.Kind)
	assert.Equal(t, p, ce.Partition)
	assert.Equal(t, key, string(ce.Key))
	assert.Equal(t, exists, ce.Exists, "whether the key existed before the batch")
	assert.ErrorContains(t, err, strconv.Quote(p.Name()), "the error names the partition")
	assert.ErrorContains(t, err, strconv.Quote(key), "the error names the key")
}

// testConditionalChecks checks each kind of check holding and failing: a
// batch whose checks hold is applied, one with a check that does not hold
// applies nothing and names the first such check. Checks see the state
// before the batch, wherever they stand in it.
func testConditionalChecks(t *testing.T, e *env) {
	p := e.part(t, "checks")
	e.put(t, p, "k", "v1")
	e.put(t, p, "empty", "")

	// Check-absent on a missing key holds: put-if-absent.
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.CheckAbsentOp(p, []byte("new")), store.PutOp(p, []byte("new"), []byte("n1")),
	}))
	e.mustGet(t, p, "new", "n1")

	// Check-absent on a present key fails, and nothing is written.
	err := e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(p, []byte("other"), []byte("x")),
		store.CheckAbsentOp(p, []byte("new")), store.PutOp(p, []byte("new"), []byte("n2")),
	})
	requireCondition(t, err, 1, store.OpCheckAbsent, p, "new", true)
	e.mustGet(t, p, "new", "n1")
	e.mustMiss(t, p, "other")

	// Check-absent fails on a key with an empty value: it exists.
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckAbsentOp(p, []byte("empty")), store.DeleteOp(p, []byte("k"))})
	requireCondition(t, err, 0, store.OpCheckAbsent, p, "empty", true)
	e.mustGet(t, p, "k", "v1")

	// Check-value with the value held holds: compare-and-swap.
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.CheckValueOp(p, []byte("k"), []byte("v1")), store.PutOp(p, []byte("k"), []byte("v2")),
	}))
	e.mustGet(t, p, "k", "v2")

	// Check-value with another value fails: the key exists.
	err = e.b.Batch(e.ctx, []store.Operation{
		store.CheckValueOp(p, []byte("k"), []byte("v1")), store.PutOp(p, []byte("k"), []byte("v3")),
	})
	requireCondition(t, err, 0, store.OpCheckValue, p, "k", true)
	e.mustGet(t, p, "k", "v2")

	// A prefix or an extension of the value held is another value.
	for _, other := range []string{"v", "v2\x00", "V2", ""} {
		err = e.b.Batch(e.ctx, []store.Operation{store.CheckValueOp(p, []byte("k"), []byte(other)), store.DeleteOp(p, []byte("k"))})
		requireCondition(t, err, 0, store.OpCheckValue, p, "k", true)
	}
	e.mustGet(t, p, "k", "v2")

	// Check-value on a missing key fails, even for an empty value; an
	// empty value matches a key that holds one.
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckValueOp(p, []byte("missing"), []byte("")), store.PutOp(p, []byte("missing"), []byte("m"))})
	requireCondition(t, err, 0, store.OpCheckValue, p, "missing", false)
	e.mustMiss(t, p, "missing")
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{store.CheckValueOp(p, []byte("empty"), nil), store.PutOp(p, []byte("empty"), []byte("e"))}))
	e.mustGet(t, p, "empty", "e")

	// Checks see the state before the batch: a check after a write of its
	// key in the same batch still sees the old value.
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(p, []byte("k"), []byte("v4")), store.CheckValueOp(p, []byte("k"), []byte("v2")),
	}))
	e.mustGet(t, p, "k", "v4")
	err = e.b.Batch(e.ctx, []store.Operation{
		store.DeleteOp(p, []byte("k")), store.CheckAbsentOp(p, []byte("k")),
	})
	requireCondition(t, err, 1, store.OpCheckAbsent, p, "k", true)
	e.mustGet(t, p, "k", "v4")
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(p, []byte("later"), []byte("l")), store.CheckAbsentOp(p, []byte("later")),
	}))
	e.mustGet(t, p, "later", "l")

	// Several failing checks: the first in batch order is reported.
	err = e.b.Batch(e.ctx, []store.Operation{
		store.CheckValueOp(p, []byte("k"), []byte("v4")),
		store.CheckValueOp(p, []byte("nothing"), []byte("x")),
		store.CheckAbsentOp(p, []byte("k")),
		store.PutOp(p, []byte("k"), []byte("v5")),
	})
	requireCondition(t, err, 1, store.OpCheckValue, p, "nothing", false)
	e.mustGet(t, p, "k", "v4")

	// A batch of checks alone writes nothing, holding or not.
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{store.CheckValueOp(p, []byte("k"), []byte("v4")), store.CheckAbsentOp(p, []byte("zz"))}))
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckAbsentOp(p, []byte("k"))})
	requireCondition(t, err, 0, store.OpCheckAbsent, p, "k", true)

	// Binary keys and values, the longest key.
	bin := []byte{0x00, 0xFF, 'a', 0x00}
	long := make([]byte, store.MaxKeySize)
	for i := range long {
		long[i] = byte(i)
	}
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.CheckAbsentOp(p, bin), store.CheckAbsentOp(p, long), store.PutOp(p, bin, bin), store.PutOp(p, long, []byte{0xFF}),
	}))
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{store.CheckValueOp(p, bin, bin), store.CheckValueOp(p, long, []byte{0xFF})}))
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckValueOp(p, long, []byte{0xFE})})
	requireCondition(t, err, 0, store.OpCheckValue, p, string(long), true)

	// Invalid checks are refused before anything is evaluated.
	for _, op := range []store.Operation{
		store.CheckAbsentOp(p, nil),
		store.CheckValueOp(p, make([]byte, store.MaxKeySize+1), nil),
		store.CheckAbsentOp(store.Partition{}, []byte("k")),
	} {
		err := e.b.Batch(e.ctx, []store.Operation{store.PutOp(p, []byte("k"), []byte("bad")), op})
		require.ErrorIs(t, err, store.ErrInvalidArgument, "%v", op.Kind)
		require.NotErrorIs(t, err, store.ErrConditionFailed)
	}
	e.mustGet(t, p, "k", "v4")

	// Checks count towards the batch limits.
	if n := e.b.Capabilities().MaxBatchOps; n > 0 {
		ops := []store.Operation{store.PutOp(p, []byte("limit"), []byte("x"))}
		for i := 0; i < n; i++ {
			ops = append(ops, store.CheckAbsentOp(p, []byte(fmt.Sprintf("nope%d", i))))
		}
		err := e.b.Batch(e.ctx, ops)
		require.ErrorIs(t, err, store.ErrInvalidArgument)
		require.ErrorContains(t, err, "MaxBatchOps")
		e.mustMiss(t, p, "limit")
	}
}

// testConditionalAcrossPartitions checks that a check in one partition
// guards the writes of the batch in another: a failing check rejects the
// whole batch, a holding one lets it through.
func testConditionalAcrossPartitions(t *testing.T, e *env) {
	a, b := e.part(t, "cond-a"), e.part(t, "cond-b")
	e.put(t, a, "k", "a1")
	e.put(t, b, "guard", "g1")

	err := e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(a, []byte("k"), []byte("a2")),
		store.DeleteOp(a, []byte("k2")),
		store.CheckValueOp(b, []byte("guard"), []byte("g0")),
		store.PutOp(b, []byte("guard"), []byte("g2")),
	})
	requireCondition(t, err, 2, store.OpCheckValue, b, "guard", true)
	e.mustGet(t, a, "k", "a1")
	e.mustGet(t, b, "guard", "g1")

	// The same key name in the other partition does not satisfy a check.
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckAbsentOp(b, []byte("x")), store.CheckValueOp(b, []byte("k"), []byte("a1")), store.PutOp(a, []byte("k"), []byte("a3"))})
	requireCondition(t, err, 1, store.OpCheckValue, b, "k", false)
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckAbsentOp(a, []byte("k")), store.PutOp(b, []byte("k"), []byte("b"))})
	requireCondition(t, err, 0, store.OpCheckAbsent, a, "k", true)
	e.mustMiss(t, b, "k")

	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(a, []byte("k"), []byte("a2")),
		store.CheckValueOp(b, []byte("guard"), []byte("g1")),
		store.CheckAbsentOp(a, []byte("k2")),
		store.PutOp(b, []byte("guard"), []byte("g2")),
	}))
	e.mustGet(t, a, "k", "a2")
	e.mustGet(t, b, "guard", "g2")
}

// testConditionalMissingPartition checks that a check on a partition that
// does not exist fails the batch with ErrPartitionNotFound, not as a
// condition, and that a missing partition anywhere wins over a failing
// check.
func testConditionalMissingPartition(t *testing.T, e *env) {
	p := e.part(t, "present")
	e.put(t, p, "k", "v")
	gone, err := store.NewPartition("never-created")
	require.NoError(t, err)
	for _, check := range []store.Operation{store.CheckAbsentOp(gone, []byte("k")), store.CheckValueOp(gone, []byte("k"), []byte("v"))} {
		err := e.b.Batch(e.ctx, []store.Operation{store.PutOp(p, []byte("w"), []byte("x")), check})
		require.ErrorIs(t, err, store.ErrPartitionNotFound, "%v on a missing partition", check.Kind)
		require.NotErrorIs(t, err, store.ErrConditionFailed)
		require.ErrorContains(t, err, "never-created")
		e.mustMiss(t, p, "w")
	}
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckAbsentOp(p, []byte("k")), store.PutOp(gone, []byte("w"), []byte("x"))})
	require.ErrorIs(t, err, store.ErrPartitionNotFound, "a missing partition comes before a failing check")

	// A dropped partition is missing too.
	d := e.part(t, "dropped")
	e.put(t, d, "k", "v")
	require.NoError(t, e.b.DropPartition(e.ctx, d))
	err = e.b.Batch(e.ctx, []store.Operation{store.CheckValueOp(d, []byte("k"), []byte("v")), store.PutOp(p, []byte("w"), []byte("x"))})
	require.ErrorIs(t, err, store.ErrPartitionNotFound)
	e.mustMiss(t, p, "w")
}

// testConditionalRangeDeletes checks checks together with range deletes:
// a check sees the state before the batch whatever a range delete of the
// batch removes, and a failing check leaves the range untouched.
func testConditionalRangeDeletes(t *testing.T, e *env) {
	p := e.part(t, "ranges")
	for _, k := range []string{"a", "b", "c", "d"} {
		e.put(t, p, k, "v"+k)
	}
	all := func() []kv { return collect(t, e.b, p, store.ScanOptions{}) }
	before := all()

	// A failing check after a range delete: nothing deleted.
	err := e.b.Batch(e.ctx, []store.Operation{
		store.DeleteRangeOp(p, []byte("a"), []byte("d")),
		store.CheckAbsentOp(p, []byte("b")),
	})
	requireCondition(t, err, 1, store.OpCheckAbsent, p, "b", true)
	require.Equal(t, before, all())

	// A check on a key the range delete removes sees it as it was.
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.DeleteRangeOp(p, []byte("a"), []byte("c")),
		store.CheckValueOp(p, []byte("b"), []byte("vb")),
		store.PutOp(p, []byte("x"), []byte("vx")),
	}))
	require.Equal(t, []kv{{"c", "vc"}, {"d", "vd"}, {"x", "vx"}}, all())

	// A key put and range-deleted within the batch was absent before it.
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(p, []byte("m"), []byte("vm")),
		store.DeleteRangeOp(p, []byte("d"), []byte("y")),
		store.CheckAbsentOp(p, []byte("m")),
		store.CheckValueOp(p, []byte("d"), []byte("vd")),
	}))
	require.Equal(t, []kv{{"c", "vc"}}, all())

	// A range delete guarded by a check of a key outside it.
	err = e.b.Batch(e.ctx, []store.Operation{
		store.CheckValueOp(p, []byte("c"), []byte("old")),
		store.DeleteRangeOp(p, []byte("a"), []byte("z")),
	})
	requireCondition(t, err, 0, store.OpCheckValue, p, "c", true)
	require.Equal(t, []kv{{"c", "vc"}}, all())
}

// contenders returns the backends the contention behaviours spread their
// goroutines over: e.b, and for a backend several processes may share
// (Capabilities.MultiProcess) a second one opened on the same storage, so
// that the checks are shown atomic across clients, not only within one.
func (e *env) contenders(t *testing.T) []store.StorageBackend {
	out := []store.StorageBackend{e.b}
	if e.b.Capabilities().MultiProcess && e.reopen != nil {
		other, err := e.reopen()
		require.NoError(t, err, "a MultiProcess backend opens the same storage twice")
		t.Cleanup(func() { _ = other.Close() })
		out = append(out, other)
	}
	return out
}

// testConditionalCounter is linearizability under contention: 8 goroutines
// each make 200 compare-and-swap increments of one counter (read, a batch
// of CheckValueOp and PutOp, again on ErrConditionFailed). The counter
// ends at exactly 1,600: no increment lost, none applied twice.
func testConditionalCounter(t *testing.T, e *env) {
	const goroutines, increments = 8, 200
	p := e.part(t, "counter")
	key := []byte("n")
	e.put(t, p, "n", "0")
	backends := e.contenders(t)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		retries  int
		firstErr error
	)
	for g := 0; g < goroutines; g++ {
		b := backends[g%len(backends)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; i++ {
				for {
					old, err := b.Get(e.ctx, p, key)
					if err == nil {
						var n int
						n, err = strconv.Atoi(string(old))
						if err == nil {
							err = b.Batch(e.ctx, []store.Operation{
								store.CheckValueOp(p, key, old),
								store.PutOp(p, key, []byte(strconv.Itoa(n+1))),
							})
						}
					}
					if errors.Is(err, store.ErrConditionFailed) {
						mu.Lock()
						retries++
						mu.Unlock()
						continue
					}
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, firstErr)
	e.mustGet(t, p, "n", strconv.Itoa(goroutines*increments))
	t.Logf("%d increments by %d goroutines on %d client(s), %d retries", goroutines*increments, goroutines, len(backends), retries)
}

// testConditionalPutIfAbsent: 16 goroutines put-if-absent the same 1,000
// keys, each its own value; every key is won exactly once, and holds the
// value of the one put that won it.
func testConditionalPutIfAbsent(t *testing.T, e *env) {
	const goroutines, keys = 16, 1000
	p := e.part(t, "unique")
	backends := e.contenders(t)
	won := make([][]int, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		b := backends[g%len(backends)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			value := []byte(strconv.Itoa(g))
			// Each goroutine starts at another key, so that every key is
			// raced by goroutines at different points of their runs.
			for j := 0; j < keys; j++ {
				k := (j + g*61) % keys
				key := []byte(fmt.Sprintf("key%04d", k))
				err := b.Batch(e.ctx, []store.Operation{store.CheckAbsentOp(p, key), store.PutOp(p, key, value)})
				switch {
				case err == nil:
					won[g] = append(won[g], k)
				case errors.Is(err, store.ErrConditionFailed):
				default:
					errs[g] = fmt.Errorf("goroutine %d, key %d: %w", g, k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	winner := make([]int, keys)
	for k := range winner {
		winner[k] = -1
	}
	for g, ks := range won {
		for _, k := range ks {
			require.Equal(t, -1, winner[k], "key%04d won by goroutines %d and %d", k, winner[k], g)
			winner[k] = g
		}
	}
	got := collect(t, e.b, p, store.ScanOptions{})
	require.Len(t, got, keys)
	for k, g := range winner {
		require.NotEqual(t, -1, g, "key%04d won by no goroutine", k)
		require.Equal(t, kv{fmt.Sprintf("key%04d", k), strconv.Itoa(g)}, got[k], "the stored value is the winner's")
	}
}

// testSharedOpen checks Capabilities.MultiProcess where a reopen is
// possible: a backend several processes may share opens its storage a
// second time while the first is open, and each sees the other's writes at
// once; an embedded one refuses the second open with an error that says
// the storage is in use, and the first goes on working.
func testSharedOpen(t *testing.T, e *env) {
	if e.reopen == nil {
		t.Skip("storetest: the backend is not durable: nothing to open twice")
	}
	p := e.part(t, "shared")
	e.put(t, p, "k", "v")
	other, err := e.reopen()
	if !e.b.Capabilities().MultiProcess {
		if err == nil {
			_ = other.Close()
		}
		require.Error(t, err, "an embedded backend refuses a second open of its storage")
		require.ErrorContains(t, err, "in use", "the error says the storage is in use")
		e.mustGet(t, p, "k", "v")
		return
	}
	require.NoError(t, err)
	defer other.Close()
	got, err := other.Get(e.ctx, p, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v", string(got))
	require.NoError(t, other.Put(e.ctx, p, []byte("k2"), []byte("v2")))
	e.mustGet(t, p, "k2", "v2")
}
