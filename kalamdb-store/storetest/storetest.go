// Package storetest is the conformance suite of the storage contract. Every
// backend, ours or a third party's, runs it with one call from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			Name: "mybackend",
//			New: func(t testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
//				dir := t.TempDir()
//				b, err := mybackend.OpenWith(mybackend.Config{Path: dir})
//				require.NoError(t, err)
//				return b, func() (store.StorageBackend, error) {
//					return mybackend.OpenWith(mybackend.Config{Path: dir})
//				}
//			},
//		})
//	}
//
// Run starts one subtest per behaviour of the contract, each on a fresh
// backend from Harness.New, so a failure names the behaviour that broke.
// Bench measures the same operations for comparison between backends.
package storetest

import (
	"bytes"
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Harness tells the suite how to make backends.
type Harness struct {
	// Name identifies the backend in messages.
	Name string
	// New returns a fresh, empty backend. For a durable backend it also
	// returns reopen, which opens the same storage again after the suite has
	// closed the first backend; non-durable backends return a nil reopen.
	// New may register cleanups with t; the suite closes every backend it
	// gets (Close is idempotent).
	New func(t testing.TB) (b store.StorageBackend, reopen func() (store.StorageBackend, error))
	// Register adds the backend's factory to a registry, as the backend
	// package's Register function does, and Config returns the
	// [storage.<name>] section of a fresh backend (a temporary path, a test
	// server's address). With both set, the Factory behaviour opens the
	// backend through a registry and checks that a section with an unknown
	// key is refused with an error naming it. Leave them nil only for a
	// wrapper that is not a registered backend: Factory then skips.
	Register func(r *store.Registry)
	Config   func(t testing.TB) store.ConfigMap
}

type behaviour struct {
	name string
	fn   func(t *testing.T, e *env)
}

// env is what each behaviour gets: a fresh backend and helpers.
type env struct {
	h      Harness
	b      store.StorageBackend
	reopen func() (store.StorageBackend, error)
	ctx    context.Context
}

// Run runs the whole conformance suite against the backends h makes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	require.NotNil(t, h.New, "storetest: Harness.New is nil")
	for _, bh := range behaviours() {
		t.Run(bh.name, func(t *testing.T) {
			bh.fn(t, newEnv(t, h))
		})
	}
}

func newEnv(t *testing.T, h Harness) *env {
	b, reopen := h.New(t)
	require.NotNil(t, b, "storetest: Harness.New returned a nil backend")
	if b.Capabilities().Durable {
		require.NotNil(t, reopen, "storetest: a durable backend must give a reopen function")
	}
	e := &env{h: h, b: b, reopen: reopen, ctx: context.Background()}
	t.Cleanup(func() { _ = e.b.Close() })
	return e
}

func behaviours() []behaviour {
	return []behaviour{
		{"MissingKey", testMissingKey},
		{"PutGetOverwrite", testPutGetOverwrite},
		{"EmptyValue", testEmptyValue},
		{"LargeKeysAndValues", testLargeKeysAndValues},
		{"BinaryKeys", testBinaryKeys},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"PartitionsIsolated", testPartitionsIsolated},
		{"PartitionLifecycle", testPartitionLifecycle},
		{"PartitionNotFound", testPartitionNotFound},
		{"Reopen", testReopen},
		{"InvalidArguments", testInvalidArguments},
		{"BatchOrdering", testBatchOrdering},
		{"BatchAtomicity", testBatchAtomicity},
		{"EmptyBatch", testEmptyBatch},
		{"BatchLimits", testBatchLimits},
		{"ConditionalChecks", testConditionalChecks},
		{"ConditionalAcrossPartitions", testConditionalAcrossPartitions},
		{"ConditionalMissingPartition", testConditionalMissingPartition},
		{"ConditionalRangeDeletes", testConditionalRangeDeletes},
		{"ConditionalCounter", testConditionalCounter},
		{"ConditionalPutIfAbsent", testConditionalPutIfAbsent},
		{"SharedOpen", testSharedOpen},
		{"DeleteRangeMatrix", testDeleteRangeMatrix},
		{"DeleteRangeLongKeys", testDeleteRangeLongKeys},
		{"DeleteRangeInBatch", testDeleteRangeInBatch},
		{"ScanCases", testScanCases},
		{"ScanMatrix", testScanMatrix},
		{"ScanPaging", testScanPaging},
		{"LongKeyScans", testLongKeyScans},
		{"LongKeyDeletes", testLongKeyDeletes},
		{"IteratorLifecycle", testIteratorLifecycle},
		{"IteratorUnderWrites", testIteratorUnderWrites},
		{"IteratorAcrossDrop", testIteratorAcrossDrop},
		{"NoAliasing", testNoAliasing},
		{"Closed", testClosed},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentReadersWriters", testConcurrentReadersWriters},
		{"ConcurrentBatchVisibility", testConcurrentBatchVisibility},
		{"ConcurrentPartitions", testConcurrentPartitions},
		{"WritesRacingDrop", testWritesRacingDrop},
		{"Factory", testFactory},
	}
}

// part creates (and returns) the partition called name.
func (e *env) part(t testing.TB, name string) store.Partition {
	t.Helper()
	p, err := store.NewPartition(name)
	require.NoError(t, err)
	require.NoError(t, e.b.CreatePartition(e.ctx, p))
	return p
}

// fill applies ops, which need not apply atomically, in batches that fit
// the backend's limits (store.Capabilities.Split).
func (e *env) fill(t testing.TB, ops []store.Operation) {
	t.Helper()
	for _, batch := range e.b.Capabilities().Split(ops) {
		require.NoError(t, e.b.Batch(e.ctx, batch))
	}
}

func (e *env) put(t testing.TB, p store.Partition, k, v string) {
	t.Helper()
	require.NoError(t, e.b.Put(e.ctx, p, []byte(k), []byte(v)), "put %q", k)
}

// mustGet asserts that k holds want.
func (e *env) mustGet(t testing.TB, p store.Partition, k, want string) {
	t.Helper()
	got, err := e.b.Get(e.ctx, p, []byte(k))
	require.NoError(t, err, "get %q from %s", k, p)
	require.Equal(t, want, string(got), "value of %q in %s", k, p)
}

// mustMiss asserts that k is absent.
func (e *env) mustMiss(t testing.TB, p store.Partition, k string) {
	t.Helper()
	_, err := e.b.Get(e.ctx, p, []byte(k))
	require.ErrorIs(t, err, store.ErrNotFound, "get %q from %s", k, p)
}

// kv is one key-value pair as the suite compares them.
type kv struct{ K, V string }

// collect drains a scan into copies of its pairs and closes it.
func collect(t testing.TB, b store.StorageBackend, p store.Partition, opts store.ScanOptions) []kv {
	t.Helper()
	it, err := b.Scan(context.Background(), p, opts)
	require.NoError(t, err)
	out := drain(t, it)
	require.NoError(t, it.Close())
	return out
}

func drain(t testing.TB, it store.Iterator) []kv {
	t.Helper()
	out := []kv{}
	for it.Next() {
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	require.NoError(t, it.Err())
	return out
}

// reference computes what a scan must return over data (a map of the
// partition's contents), following the documented option semantics literally.
func reference(data map[string]string, o store.ScanOptions) []kv {
	var out []kv
	for k, v := range data {
		kb := []byte(k)
		if !bytes.HasPrefix(kb, o.Prefix) {
			continue
		}
		if len(o.Start) > 0 {
			c := bytes.Compare(kb, o.Start)
			if o.Reverse {
				if c > 0 || (c == 0 && o.ExclusiveStart) {
					continue
				}
			} else if c < 0 || (c == 0 && o.ExclusiveStart) {
				continue
			}
		}
		out = append(out, kv{k, v})
	}
	sortKVs(out, o.Reverse)
	if o.Limit > 0 && len(out) > o.Limit {
		out = out[:o.Limit]
	}
	if out == nil {
		out = []kv{}
	}
	return out
}

func sortKVs(s []kv, reverse bool) {
	sort.Slice(s, func(i, j int) bool {
		if reverse {
			return s[i].K > s[j].K
		}
		return s[i].K < s[j].K
	})
}
