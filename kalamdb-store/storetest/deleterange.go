package storetest

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// rangeBounds are the bounds the range-delete matrix combines: keys of
// scanData, keys between and around them, and the extremes.
var rangeBounds = []string{
	"\x00", "\x00\x00", "\x00\x02", "a", "a\x00", "aa", "ab\xff", "ab\xff\x00", "b", "b\xff",
	"bb", "\xfe", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff", "\xff\xff\xff\x00",
}

// withoutRange returns data less the keys in [start, end), as a scan returns it.
func withoutRange(data map[string]string, start, end string) []kv {
	left := map[string]string{}
	for k, v := range data {
		if k < start || k >= end {
			left[k] = v
		}
	}
	return reference(left, store.ScanOptions{})
}

// testDeleteRangeMatrix deletes every range [start, end) of rangeBounds
// from the scan data, reloaded before each, and compares the partition with
// the reference; a hand-written case anchors the reference.
func testDeleteRangeMatrix(t *testing.T, e *env) {
	p, data := loadScanData(t, e)
	reload := make([]store.Operation, 0, len(data))
	for k, v := range data {
		reload = append(reload, store.PutOp(p, []byte(k), []byte(v)))
	}
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{store.DeleteRangeOp(p, []byte("a\x00"), []byte("ab\xff"))}))
	require.Equal(t, []string{"\x00", "\x00\x00", "\x00\x01", "a", "ab\xff", "b", "ba", "b\xff", "c",
		"\xfe", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"},
		keysOf(collect(t, e.b, p, store.ScanOptions{})), "hand-written case")
	for _, start := range rangeBounds {
		for _, end := range rangeBounds {
			if start >= end {
				continue
			}
			e.fill(t, reload)
			require.NoError(t, e.b.Batch(e.ctx, []store.Operation{store.DeleteRangeOp(p, []byte(start), []byte(end))}),
				"range [%q, %q)", start, end)
			require.Equal(t, withoutRange(data, start, end), collect(t, e.b, p, store.ScanOptions{}), "range [%q, %q)", start, end)
			for _, k := range []string{start, end} {
				if v, ok := data[k]; ok && k == end {
					e.mustGet(t, p, k, v) // the end is exclusive
				} else if ok {
					e.mustMiss(t, p, k) // the start is inclusive
				}
			}
		}
	}
}

// testDeleteRangeLongKeys deletes every range between bounds among keys of
// up to store.MaxKeySize bytes that share a head of MaxKeySize-2 bytes,
// bounds as long as the longest key included, and compares the whole
// partition, forward and in reverse, with the reference.
func testDeleteRangeLongKeys(t *testing.T, e *env) {
	p := e.part(t, "long")
	head := rep("m", store.MaxKeySize-2)
	top := rep("\xff", store.MaxKeySize)
	data := map[string]string{
		"l": "short-before", head: "head", head + "a": "a", head + "b": "b", head + "c": "c",
		head[:len(head)-1] + "n": "other-head", "n": "short-after", top: "max",
	}
	reload := make([]store.Operation, 0, len(data))
	for k, v := range data {
		reload = append(reload, store.PutOp(p, []byte(k), []byte(v)))
	}
	bounds := []string{"l", head, head + "a", head + "a\x00", head + "c", head + "d", head[:len(head)-1] + "n", "n", top}
	for _, start := range bounds {
		for _, end := range bounds {
			if start >= end {
				continue
			}
			e.fill(t, reload)
			require.NoError(t, e.b.Batch(e.ctx, []store.Operation{store.DeleteRangeOp(p, []byte(start), []byte(end))}))
			left := map[string]string{}
			for k, v := range data {
				if k < start || k >= end {
					left[k] = v
				}
			}
			what := "range [" + show(start) + ", " + show(end) + ")"
			requireScan(t, e, p, left, store.ScanOptions{}, what)
			requireScan(t, e, p, left, store.ScanOptions{Reverse: true}, what)
		}
	}
}

// testDeleteRangeInBatch checks that a range delete is one operation of an
// atomic, ordered batch: it removes what earlier operations put in its
// range and not what later ones put, it touches no other partition, and a
// batch it belongs to is applied entirely or not at all.
func testDeleteRangeInBatch(t *testing.T, e *env) {
	a := e.part(t, "a")
	b := e.part(t, "b")
	for _, k := range []string{"k1", "k2", "k3", "z"} {
		e.put(t, a, k, "old")
		e.put(t, b, k, "other")
	}
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.PutOp(a, []byte("k0"), []byte("put-before")),
		store.PutOp(a, []byte("k2"), []byte("put-before")),
		store.DeleteRangeOp(a, []byte("k"), []byte("l")),
		store.PutOp(a, []byte("k3"), []byte("put-after")),
		store.PutOp(b, []byte("k4"), []byte("new")),
	}))
	require.Equal(t, []kv{{"k3", "put-after"}, {"z", "old"}}, collect(t, e.b, a, store.ScanOptions{}))
	require.Equal(t, []kv{{"k1", "other"}, {"k2", "other"}, {"k3", "other"}, {"k4", "new"}, {"z", "other"}},
		collect(t, e.b, b, store.ScanOptions{}), "the other partition is untouched")

	// Empty ranges: no key in the interval, and an empty partition.
	empty := e.part(t, "empty")
	require.NoError(t, e.b.Batch(e.ctx, []store.Operation{
		store.DeleteRangeOp(a, []byte("l"), []byte("y")),
		store.DeleteRangeOp(a, []byte("\x00"), []byte("\x01")),
		store.DeleteRangeOp(empty, []byte("\x00"), []byte("\xff")),
	}))
	require.Equal(t, []kv{{"k3", "put-after"}, {"z", "old"}}, collect(t, e.b, a, store.ScanOptions{}))
	require.Equal(t, []kv{}, collect(t, e.b, empty, store.ScanOptions{}))

	// A batch that fails, whatever the position of the failing operation,
	// applies none of its range deletes.
	missing := store.MustPartition("missing")
	bad := map[string]struct {
		op  store.Operation
		err error
	}{
		"range in a missing partition": {store.DeleteRangeOp(missing, []byte("a"), []byte("b")), store.ErrPartitionNotFound},
		"put in a missing partition":   {store.PutOp(missing, []byte("k"), []byte("v")), store.ErrPartitionNotFound},
		"start equals end":             {store.DeleteRangeOp(a, []byte("k"), []byte("k")), store.ErrInvalidArgument},
		"start after end":              {store.DeleteRangeOp(a, []byte("z"), []byte("a")), store.ErrInvalidArgument},
		"empty start":                  {store.DeleteRangeOp(a, nil, []byte("z")), store.ErrInvalidArgument},
		"empty end":                    {store.DeleteRangeOp(a, []byte("a"), nil), store.ErrInvalidArgument},
		"end too long":                 {store.DeleteRangeOp(a, []byte("a"), bytes.Repeat([]byte{'z'}, store.MaxKeySize+1)), store.ErrInvalidArgument},
	}
	for what, c := range bad {
		for _, pos := range []int{0, 2} { // first and last
			ops := []store.Operation{
				store.DeleteRangeOp(a, []byte("\x00"), []byte("\xff")),
				store.DeleteRangeOp(b, []byte("k"), []byte("l")),
			}
			ops = append(ops[:pos], append([]store.Operation{c.op}, ops[pos:]...)...)
			err := e.b.Batch(e.ctx, ops)
			require.ErrorIs(t, err, c.err, "%s at %d", what, pos)
			assert.NotEmpty(t, err.Error(), what)
			require.Equal(t, []kv{{"k3", "put-after"}, {"z", "old"}}, collect(t, e.b, a, store.ScanOptions{}), "%s at %d", what, pos)
			require.Len(t, collect(t, e.b, b, store.ScanOptions{}), 5, "%s at %d", what, pos)
		}
	}
	ok, err := e.b.PartitionExists(e.ctx, missing)
	require.NoError(t, err)
	require.False(t, ok)

	if e.reopen == nil {
		return
	}
	// A range delete is as durable as any other write.
	require.NoError(t, e.b.Close())
	nb, err := e.reopen()
	require.NoError(t, err)
	e.b = nb
	require.Equal(t, []kv{{"k3", "put-after"}, {"z", "old"}}, collect(t, e.b, a, store.ScanOptions{}), "after reopen")
}
