package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// longKeySet is a partition's worth of keys up to store.MaxKeySize bytes
// that share long prefixes, with the bounds the long-key behaviours scan
// and delete with.
type longKeySet struct {
	data map[string]string
	// starts are scan starts: every key, and points between and beyond
	// them; none is longer than store.MaxKeySize.
	starts []string
	// prefixes select runs of the keys, none of them, or all.
	prefixes []string
	// cuts are range-delete bounds: keys and points between them.
	cuts []string
}

// longKeys builds the set. Most keys share a head of MaxKeySize-8 bytes and
// differ in their last bytes only, by 0x00 and 0xFF among others; some are
// prefixes of others; several are exactly MaxKeySize bytes, the largest key
// of all among them; short keys sit on either side.
func longKeys() longKeySet {
	const m = store.MaxKeySize
	h := rep("m", m-8)  // the shared head
	half := h[:m/2]     // a long key that is a prefix of the others
	sib := h[:len(h)-1] // the head less its last byte
	keys := []string{
		"l", "n",
		rep("\x00", m/2), rep("\x00", m),
		half, half + "\x00",
		sib + "l" + rep("\xff", 8),
		h, h + "\x00", h + "\x00\x00", h + "a", h + "a" + rep("\x00", 7),
		h + "b", h + "b" + rep("\xff", 7), h + rep("\xff", 8),
		sib + "n", sib + "n" + rep("\x00", 8),
		rep("\xff", m-1), rep("\xff", m),
	}
	s := longKeySet{data: make(map[string]string, len(keys))}
	for i, k := range keys {
		s.data[k] = "v" + string(rune('A'+i))
	}
	between := []string{
		"m", "o", "\xff", rep("\x00", m/2) + "\x00\x01",
		h[:m/2-1], half + "\x00\x00", sib, sib + "l",
		h + "\x00\x01", h + "`", h + "a\x00", h + "a" + rep("\x00", 6) + "\x01",
		h + "c", h + rep("\xff", 7), h + rep("\xff", 7) + "\xfe", sib + "n\x00",
		rep("\xff", m-1) + "\xfe",
	}
	s.starts = append(append([]string{""}, keys...), between...)
	s.prefixes = []string{
		"", "m", "\x00", rep("\x00", m), half, half + "\x00", sib, h, h + "a", h + "b\xff", h + "\xff",
		sib + "n", h + "z", rep("\xff", m-1), rep("\xff", m),
	}
	s.cuts = []string{
		"l", rep("\x00", m), half, sib + "l", h, h + "\x00\x01", h + "a",
		h + "a\x00", h + "b" + rep("\xff", 7), sib + "n", "n", rep("\xff", m-1) + "\xfe", rep("\xff", m),
	}
	return s
}

// longKeyParts creates the partition "long" with set's data, and the
// partitions "lon" and "long-x" on either side of it (where backends that
// map partitions onto key prefixes put their keys next to it) with the same
// keys and other values. It returns the three partitions and the data of the
// neighbours.
func longKeyParts(t *testing.T, e *env, set longKeySet) (p store.Partition, neighbours []store.Partition, theirs map[string]string) {
	p = e.part(t, "long")
	neighbours = []store.Partition{e.part(t, "lon"), e.part(t, "long-x")}
	theirs = make(map[string]string, len(set.data))
	for k, v := range set.data {
		theirs[k] = "n" + v
	}
	e.load(t, p, set.data)
	for _, q := range neighbours {
		e.load(t, q, theirs)
	}
	return p, neighbours, theirs
}

// load writes data into p, in as few batches as the backend's limits allow.
func (e *env) load(t testing.TB, p store.Partition, data map[string]string) {
	t.Helper()
	ops := make([]store.Operation, 0, len(data))
	for k, v := range data {
		ops = append(ops, store.PutOp(p, []byte(k), []byte(v)))
	}
	e.fill(t, ops)
}

// requireScan scans p with o and requires exactly what the reference
// semantics give over data; a failure prints long keys abbreviated.
func requireScan(t testing.TB, e *env, p store.Partition, data map[string]string, o store.ScanOptions, what string) {
	t.Helper()
	want, got := reference(data, o), collect(t, e.b, p, o)
	if !slices.Equal(want, got) {
		require.Equal(t, showKVs(want), showKVs(got), "%s: scan %s of %s", what, describe(o), p)
		require.Fail(t, "scans differ", "%s: scan %s of %s", what, describe(o), p)
	}
}

// testLongKeyScans scans keys near store.MaxKeySize that share long
// prefixes: forward and in reverse, with Start and ExclusiveStart landing on
// them, between them and beyond them, with prefixes and limits. Engines that
// store long keys specially, or seek with bounds built from them, go wrong
// here first.
func testLongKeyScans(t *testing.T, e *env) {
	set := longKeys()
	p, neighbours, theirs := longKeyParts(t, e, set)

	// Hand-written cases anchor the reference over these keys.
	h := rep("m", store.MaxKeySize-8)
	for _, c := range []struct {
		o    store.ScanOptions
		want []string
	}{
		{store.ScanOptions{Start: []byte(h + "\x00\x01"), ExclusiveStart: true, Limit: 3}, []string{h + "a", h + "a" + rep("\x00", 7), h + "b"}},
		{store.ScanOptions{Start: []byte(h + "a\x00"), Reverse: true, Limit: 3}, []string{h + "a", h + "\x00\x00", h + "\x00"}},
		{store.ScanOptions{Start: []byte(h + "a"), ExclusiveStart: true, Reverse: true, Limit: 2}, []string{h + "\x00\x00", h + "\x00"}},
		{store.ScanOptions{Prefix: []byte(rep("\xff", store.MaxKeySize)), Reverse: true}, []string{rep("\xff", store.MaxKeySize)}},
	} {
		require.Equal(t, showKeys(c.want), showKeys(keysOf(collect(t, e.b, p, c.o))), "scan %s", describe(c.o))
	}

	n := 0
	for _, prefix := range set.prefixes {
		for _, start := range set.starts {
			for _, excl := range []bool{false, true} {
				for _, rev := range []bool{false, true} {
					for _, limit := range []int{0, 1, 3} {
						o := store.ScanOptions{Prefix: []byte(prefix), Start: []byte(start), ExclusiveStart: excl, Reverse: rev, Limit: limit}
						requireScan(t, e, p, set.data, o, "long keys")
						n++
					}
				}
			}
		}
	}
	require.Greater(t, n, 5000)
	for _, q := range neighbours {
		requireScan(t, e, q, theirs, store.ScanOptions{}, "neighbour")
		requireScan(t, e, q, theirs, store.ScanOptions{Reverse: true}, "neighbour")
	}
}

// testLongKeyDeletes deletes long keys that share long prefixes, one at a
// time and by range, inside batches that also write, and checks every key
// with Get and with scans in both directions that start on, between and
// beyond the keys deleted. The neighbouring partitions keep all their keys.
func testLongKeyDeletes(t *testing.T, e *env) {
	set := longKeys()
	p, neighbours, theirs := longKeyParts(t, e, set)
	h := rep("m", store.MaxKeySize-8)
	data := map[string]string{}
	for k, v := range set.data {
		data[k] = v
	}
	check := func(what string) {
		t.Helper()
		for k := range set.data {
			if v, ok := data[k]; ok {
				got, err := e.b.Get(e.ctx, p, []byte(k))
				require.NoError(t, err, "%s: get %s", what, show(k))
				require.Equal(t, v, string(got), "%s: get %s", what, show(k))
			} else {
				_, err := e.b.Get(e.ctx, p, []byte(k))
				require.ErrorIs(t, err, store.ErrNotFound, "%s: get of the deleted %s", what, show(k))
			}
		}
		for _, start := range set.starts {
			for _, excl := range []bool{false, true} {
				for _, rev := range []bool{false, true} {
					o := store.ScanOptions{Start: []byte(start), ExclusiveStart: excl, Reverse: rev, Limit: 2}
					requireScan(t, e, p, data, o, what)
				}
			}
		}
		for _, prefix := range set.prefixes {
			requireScan(t, e, p, data, store.ScanOptions{Prefix: []byte(prefix)}, what)
			requireScan(t, e, p, data, store.ScanOptions{Prefix: []byte(prefix), Reverse: true}, what)
		}
	}
	apply := func(what string, ops ...store.Operation) {
		t.Helper()
		require.NoError(t, e.b.Batch(e.ctx, ops), what)
		for _, op := range ops {
			switch op.Kind {
			case store.OpPut:
				data[string(op.Key)] = string(op.Value)
			case store.OpDelete:
				delete(data, string(op.Key))
			case store.OpDeleteRange:
				for k := range data {
					if k >= string(op.Key) && k < string(op.End) {
						delete(data, k)
					}
				}
			}
		}
		check(what)
	}

	top := rep("\xff", store.MaxKeySize)
	require.NoError(t, e.b.Delete(e.ctx, p, []byte(h+"a")))
	delete(data, h+"a")
	check("point delete")
	require.NoError(t, e.b.Delete(e.ctx, p, []byte(h+"c")), "deleting a missing long key succeeds")
	apply("point deletes of the longest keys", store.DeleteOp(p, []byte(top)), store.DeleteOp(p, []byte(h+"b"+rep("\xff", 7))))
	apply("a range inside the shared head",
		store.DeleteRangeOp(p, []byte(h+"\x00\x01"), []byte(h+"b\xff")),
		store.PutOp(p, []byte(h+"a\x00"), []byte("put after the range")))
	apply("a range whose bounds are the longest keys",
		store.PutOp(p, []byte(top), []byte("back")),
		store.DeleteRangeOp(p, []byte(rep("\xff", store.MaxKeySize-1)), []byte(top)))
	apply("a range across heads",
		store.DeleteRangeOp(p, []byte(h[:store.MaxKeySize/2]+"\x00"), []byte(h+"\x00")),
		store.DeleteRangeOp(p, []byte(h+rep("\xff", 8)), []byte("n")))
	apply("everything but the ends",
		store.DeleteRangeOp(p, []byte(rep("\x00", store.MaxKeySize)), []byte(top)))
	require.Equal(t, showKeys([]string{rep("\x00", store.MaxKeySize/2), top}), showKeys(keysOf(collect(t, e.b, p, store.ScanOptions{}))),
		"the range left the key below its start and its end")
	for _, q := range neighbours {
		requireScan(t, e, q, theirs, store.ScanOptions{}, "neighbour")
		requireScan(t, e, q, theirs, store.ScanOptions{Reverse: true}, "neighbour")
	}
}

// rep is strings.Repeat, short for the long keys above.
func rep(s string, n int) string { return strings.Repeat(s, n) }
