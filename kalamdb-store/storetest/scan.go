package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func contextBackground() context.Context { return context.Background() }

// scanData is a key set with the awkward bytes: 0x00, 0xFF, keys that are
// prefixes of others, and a run of 0xFF that has no prefix successor.
func scanData() map[string]string {
	keys := []string{
		"\x00", "\x00\x00", "\x00\x01", "a", "a\x00", "a\x00b", "aa", "ab", "abc", "ab\xff",
		"b", "ba", "b\xff", "c", "\xfe", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
	}
	m := make(map[string]string, len(keys))
	for i, k := range keys {
		m[k] = fmt.Sprintf("v%02d", i)
	}
	return m
}

func loadScanData(t *testing.T, e *env) (store.Partition, map[string]string) {
	p := e.part(t, "scan")
	data := scanData()
	ops := make([]store.Operation, 0, len(data))
	for k, v := range data {
		ops = append(ops, store.PutOp(p, []byte(k), []byte(v)))
	}
	e.fill(t, ops)
	return p, data
}

func keysOf(kvs []kv) []string {
	out := make([]string, len(kvs))
	for i, x := range kvs {
		out[i] = x.K
	}
	return out
}

// testScanCases checks hand-written expectations, so the suite does not rest
// on its own reference implementation alone.
func testScanCases(t *testing.T, e *env) {
	p, _ := loadScanData(t, e)
	cases := []struct {
		name string
		opts store.ScanOptions
		want []string
	}{
		{"prefix a", store.ScanOptions{Prefix: []byte("a")}, []string{"a", "a\x00", "a\x00b", "aa", "ab", "abc", "ab\xff"}},
		{"prefix ab", store.ScanOptions{Prefix: []byte("ab")}, []string{"ab", "abc", "ab\xff"}},
		{"prefix 00", store.ScanOptions{Prefix: []byte("\x00")}, []string{"\x00", "\x00\x00", "\x00\x01"}},
		{"prefix ff", store.ScanOptions{Prefix: []byte("\xff")}, []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}},
		{"prefix ffff", store.ScanOptions{Prefix: []byte("\xff\xff")}, []string{"\xff\xff", "\xff\xff\xff"}},
		{"prefix ffff reverse", store.ScanOptions{Prefix: []byte("\xff\xff"), Reverse: true}, []string{"\xff\xff\xff", "\xff\xff"}},
		{"prefix ffffffff none", store.ScanOptions{Prefix: []byte("\xff\xff\xff\xff")}, []string{}},
		{"prefix fe", store.ScanOptions{Prefix: []byte("\xfe")}, []string{"\xfe", "\xfe\xff"}},
		{"prefix absent", store.ScanOptions{Prefix: []byte("zz")}, []string{}},
		{"start b", store.ScanOptions{Start: []byte("b"), Limit: 3}, []string{"b", "ba", "b\xff"}},
		{"start after b", store.ScanOptions{Start: []byte("b"), ExclusiveStart: true, Limit: 2}, []string{"ba", "b\xff"}},
		{"start between keys", store.ScanOptions{Start: []byte("abd"), Limit: 2}, []string{"ab\xff", "b"}},
		{"reverse start b", store.ScanOptions{Start: []byte("b"), Reverse: true, Limit: 3}, []string{"b", "ab\xff", "abc"}},
		{"reverse after b", store.ScanOptions{Start: []byte("b"), ExclusiveStart: true, Reverse: true, Limit: 2}, []string{"ab\xff", "abc"}},
		{"reverse start between", store.ScanOptions{Start: []byte("abd"), Reverse: true, Limit: 2}, []string{"abc", "ab"}},
		{"reverse all limit", store.ScanOptions{Reverse: true, Limit: 2}, []string{"\xff\xff\xff", "\xff\xff"}},
		{"forward all limit", store.ScanOptions{Limit: 2}, []string{"\x00", "\x00\x00"}},
		{"start before prefix", store.ScanOptions{Prefix: []byte("b"), Start: []byte("a")}, []string{"b", "ba", "b\xff"}},
		{"start after prefix", store.ScanOptions{Prefix: []byte("a"), Start: []byte("b")}, []string{}},
		{"reverse start after prefix", store.ScanOptions{Prefix: []byte("a"), Start: []byte("zz"), Reverse: true, Limit: 2}, []string{"ab\xff", "abc"}},
		{"reverse start before prefix", store.ScanOptions{Prefix: []byte("b"), Start: []byte("a"), Reverse: true}, []string{}},
		{"start ff exclusive", store.ScanOptions{Start: []byte("\xff\xff\xff"), ExclusiveStart: true}, []string{}},
		{"reverse start 00 exclusive", store.ScanOptions{Start: []byte("\x00"), ExclusiveStart: true, Reverse: true}, []string{}},
		{"reverse start 00", store.ScanOptions{Start: []byte("\x00"), Reverse: true}, []string{"\x00"}},
		{"prefix ff start ff00 reverse", store.ScanOptions{Prefix: []byte("\xff"), Start: []byte("\xff\x00"), Reverse: true}, []string{"\xff\x00", "\xff"}},
		{"limit beyond count", store.ScanOptions{Prefix: []byte("c"), Limit: 10}, []string{"c"}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, keysOf(collect(t, e.b, p, c.opts)), c.name)
		// Bulk is a hint: the same scan with it returns the same entries.
		bulk := c.opts
		bulk.Bulk = true
		require.Equal(t, c.want, keysOf(collect(t, e.b, p, bulk)), c.name+" (bulk)")
	}
}

// testScanMatrix compares every combination of prefix, start, exclusivity,
// direction and limit with the reference semantics.
func testScanMatrix(t *testing.T, e *env) {
	p, data := loadScanData(t, e)
	prefixes := []string{"", "\x00", "a", "a\x00", "ab", "b", "\xfe", "\xff", "\xff\xff", "\xff\xff\xff\xff", "q"}
	starts := []string{"", "\x00", "\x00\x00", "a", "a\x00", "ab", "abd", "b", "b\xff", "\xff", "\xff\xff", "\xff\xff\xff\xff"}
	n := 0
	for _, prefix := range prefixes {
		for _, start := range starts {
			for _, excl := range []bool{false, true} {
				for _, rev := range []bool{false, true} {
					for _, limit := range []int{0, 1, 3} {
						o := store.ScanOptions{Prefix: []byte(prefix), Start: []byte(start), ExclusiveStart: excl, Reverse: rev, Limit: limit}
						want := reference(data, o)
						got := collect(t, e.b, p, o)
						require.Equal(t, want, got, "scan %s", describe(o))
						n++
					}
				}
			}
		}
	}
	require.Greater(t, n, 1000)
}

// testScanPaging pages through enough keys to span many tree nodes or
// blocks, in both directions, and checks the pages reassemble the partition.
func testScanPaging(t *testing.T, e *env) {
	p := e.part(t, "paging")
	data := map[string]string{}
	var ops []store.Operation
	for i := 0; i < 3000; i++ {
		k := fmt.Sprintf("key/%05d", i*7%3000)
		if i%10 == 0 {
			k += "\x00\xff"
		}
		data[k] = fmt.Sprintf("value-%d", i)
		ops = append(ops, store.PutOp(p, []byte(k), []byte(data[k])))
		if len(ops) == 500 {
			e.fill(t, ops)
			ops = ops[:0]
		}
	}
	e.fill(t, ops)
	e.put(t, p, "other/1", "x") // outside the prefix, on both sides
	e.put(t, p, "aaa", "x")
	for _, rev := range []bool{false, true} {
		for _, page := range []int{1, 7, 256, 4000} {
			var got []kv
			var start []byte
			for {
				o := store.ScanOptions{Prefix: []byte("key/"), Start: start, ExclusiveStart: start != nil, Limit: page, Reverse: rev}
				batch := collect(t, e.b, p, o)
				got = append(got, batch...)
				if len(batch) < page {
					break
				}
				start = []byte(batch[len(batch)-1].K)
			}
			want := reference(data, store.ScanOptions{Reverse: rev})
			require.Equal(t, len(want), len(got), "page size %d reverse %v", page, rev)
			require.Equal(t, want, got, "page size %d reverse %v", page, rev)
		}
	}
}
