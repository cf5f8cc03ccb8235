package etcd

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// TestCompile checks the reduction of a batch to writes etcd takes: one
// write per key, the last one winning; range deletes merged and cut around
// the keys put after them; deletes inside a range left to the range.
func TestCompile(t *testing.T) {
	p := store.MustPartition("p")
	put := func(k, v string) store.Operation { return store.PutOp(p, []byte(k), []byte(v)) }
	del := func(k string) store.Operation { return store.DeleteOp(p, []byte(k)) }
	rng := func(s, e string) store.Operation { return store.DeleteRangeOp(p, []byte(s), []byte(e)) }
	cases := []struct {
		name    string
		ops     []store.Operation
		puts    []kvPair
		deletes []string
		ranges  [][2]string
	}{
		{"a later put wins", []store.Operation{put("a", "1"), put("a", "2")}, []kvPair{{"a", "2"}}, nil, nil},
		{"a delete after a put", []store.Operation{put("a", "1"), del("a")}, nil, []string{"a"}, nil},
		{"a put after a delete", []store.Operation{del("a"), put("a", "1")}, []kvPair{{"a", "1"}}, nil, nil},
		{"a range removes earlier puts", []store.Operation{put("b", "1"), put("x", "2"), rng("a", "c")},
			[]kvPair{{"x", "2"}}, nil, [][2]string{{"a", "c"}}},
		{"a put after a range cuts it", []store.Operation{rng("a", "z"), put("m", "1"), put("a", "2"), put("m\x00", "3")},
			[]kvPair{{"a", "2"}, {"m", "1"}, {"m\x00", "3"}}, nil, [][2]string{{"a\x00", "m"}, {"m\x00\x00", "z"}}},
		{"puts cut the ranges they fall in, not others", []store.Operation{rng("a", "c"), rng("x", "z"), put("y", "1"), put("m", "2"), put("b", "3")},
			[]kvPair{{"y", "1"}, {"m", "2"}, {"b", "3"}}, nil, [][2]string{{"a", "b"}, {"b\x00", "c"}, {"x", "y"}, {"y\x00", "z"}}},
		{"a put, a range over it, a put again", []store.Operation{put("b", "1"), rng("a", "c"), put("b", "2")},
			[]kvPair{{"b", "2"}}, nil, [][2]string{{"a", "b"}, {"b\x00", "c"}}},
		{"a delete inside a range goes", []store.Operation{del("b"), rng("a", "c"), del("bb"), del("d")},
			nil, []string{"d"}, [][2]string{{"a", "c"}}},
		{"ranges merge", []store.Operation{rng("c", "e"), rng("a", "d"), rng("e", "f"), rng("x", "y")},
			nil, nil, [][2]string{{"a", "f"}, {"x", "y"}}},
		{"checks write nothing", []store.Operation{store.CheckAbsentOp(p, []byte("a")), store.CheckValueOp(p, []byte("b"), nil)},
			nil, nil, nil},
	}
	for _, c := range cases {
		got := compile(c.ops, func(i int) string { return string(c.ops[i].Key) }, func(i int) string { return string(c.ops[i].End) })
		assert.ElementsMatch(t, c.puts, got.puts, c.name)
		assert.ElementsMatch(t, c.deletes, got.deletes, c.name)
		assert.Equal(t, c.ranges, got.ranges, c.name)
	}
}

// TestLimits: a batch is half of max_txn_ops, and the bytes left for keys
// and values shrink as the prefix grows, never below a key and a value.
func TestLimits(t *testing.T) {
	c := DefaultConfig()
	got := limits(c)
	require.Equal(t, 64, got.MaxBatchOps)
	assert.Greater(t, got.MaxBatchBytes, 900<<10, "about 1 MiB of keys and values by default")
	assert.Less(t, got.MaxBatchBytes, DefaultMaxRequestBytes)
	assert.True(t, got.MultiProcess && got.SnapshotScans && got.Durable)
	c.Prefix = "p123456789p123456789p123456789p123456789p123456789p123456789abcd"
	assert.Less(t, limits(c).MaxBatchBytes, got.MaxBatchBytes)
	c.MaxTxnOps = 1024
	require.ErrorContains(t, c.Validate(), "max_request_bytes")
	c.MaxRequestBytes = 16 << 20
	require.NoError(t, c.Validate())
	assert.Equal(t, 512, limits(c).MaxBatchOps)
}

// BenchmarkCompile measures the reduction of a batch of 64 puts, the most
// a batch holds by default, which every Batch pays on the client.
func BenchmarkCompile(b *testing.B) {
	p := store.MustPartition("p")
	ops := make([]store.Operation, 64)
	keys := make([]string, len(ops))
	for i := range ops {
		ops[i] = store.PutOp(p, []byte(fmt.Sprintf("row/%08d", i*7919%10000)), make([]byte, 100))
		keys[i] = "prefix/d/12345678" + string(ops[i].Key)
	}
	b.ReportAllocs()
	for b.Loop() {
		compile(ops, func(i int) string { return keys[i] }, func(int) string { return "" })
	}
}
