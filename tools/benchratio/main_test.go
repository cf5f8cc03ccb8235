package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb
BenchmarkDispatch/get/direct-2         	  500000	      1000 ns/op	      900.0 cpu-ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      1010 ns/op	      918.0 cpu-ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/paired-2         	     500	   3000000 ns/op	      1010 backend-ns/op	         1.015 backend/direct	         1.012 cpu-backend/direct	      1000 direct-ns/op	         1.005 engine/direct
BenchmarkDispatch/scan100/direct-2     	   10000	     20000 ns/op	    6416 B/op	     402 allocs/op
BenchmarkDispatch/scan100/backend-2    	   10000	     22000 ns/op	    6816 B/op	     407 allocs/op
BenchmarkDispatch/get/direct-2         	  500000	      3000 ns/op	      900.0 cpu-ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      1020 ns/op	      918.0 cpu-ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/paired-2         	     500	   3000000 ns/op	      1010 backend-ns/op	         1.025 backend/direct	         1.022 cpu-backend/direct	      1000 direct-ns/op	         1.005 engine/direct
BenchmarkDispatch/scan100/direct-2     	   10000	     20000 ns/op	    6416 B/op	     402 allocs/op
BenchmarkDispatch/scan100/backend-2    	   10000	     20100 ns/op	    6816 B/op	     407 allocs/op
BenchmarkDispatch/get/direct-2         	  500000	      1000 ns/op	      900.0 cpu-ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      1030 ns/op	      918.0 cpu-ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/paired-2         	     500	   3000000 ns/op	      1010 backend-ns/op	         1.018 backend/direct	         1.016 cpu-backend/direct	      1000 direct-ns/op	         1.005 engine/direct
BenchmarkDispatch/scan100/direct-2     	   10000	     20000 ns/op	    6416 B/op	     402 allocs/op
BenchmarkDispatch/scan100/backend-2    	   10000	     20200 ns/op	    6816 B/op	     407 allocs/op
BenchmarkRocksDB/get-2                 	  500000	      1000 ns/op
BenchmarkOnlyDirect/x/direct-2         	  500000	      1000 ns/op
PASS
ok  	github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb	28.146s
pkg: github.com/kalamdb/kalamdb-go/kalamdb-store/pebble
BenchmarkDispatch/get/direct-2         	  500000	      500 ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      600 ns/op	     152 B/op	       4 allocs/op
`

func TestCompare(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, res["rocksdb.BenchmarkDispatch/get/direct"], 3)
	rows := compare(res, 1.02)
	require.Len(t, rows, 3, "rocksdb get and scan100, pebble get: the pairs with both sides")
	pebble, get, scan := rows[0], rows[1], rows[2]
	require.Equal(t, "pebble.BenchmarkDispatch/get", pebble.Op, "packages are kept apart")
	require.Equal(t, "rocksdb.BenchmarkDispatch/get", get.Op)
	require.Equal(t, "rocksdb.BenchmarkDispatch/scan100", scan.Op)

	// Medians: direct 1000 (the 3000 outlier ignored), backend 1020.
	assert.Equal(t, 1000.0, get.DirectNs)
	assert.Equal(t, 1020.0, get.BackendNs)
	assert.InDelta(t, 1.02, get.Ratio, 1e-9)
	assert.InDelta(t, 0.34, get.MinRatio, 1e-9, "runs paired in order: 1020/3000")
	assert.InDelta(t, 1.03, get.MaxRatio, 1e-9)
	assert.InDelta(t, 1.02, get.CPURatio, 1e-9, "918/900")
	assert.InDelta(t, 1.018, get.Paired, 1e-9, "median of the paired runs")
	assert.InDelta(t, 1.016, get.PairedCPU, 1e-9)
	assert.InDelta(t, 1.005, get.Engine, 1e-9)
	assert.True(t, get.OK, "the paired ratio is within the target")
	assert.Equal(t, 4.0, get.BackendAllocs, "allocs/op after custom metrics")

	assert.InDelta(t, 1.01, scan.Ratio, 1e-9)
	assert.True(t, math.IsNaN(scan.Paired), "no paired variant")
	assert.Equal(t, 402.0, scan.DirectAllocs)
	assert.Equal(t, 407.0, scan.BackendAllocs)
	assert.Equal(t, "MORE ALLOCS", scan.verdict(), "more allocations per op fail whatever the time")

	assert.InDelta(t, 1.2, pebble.Ratio, 1e-9)
	assert.Equal(t, "ABOVE 1.02", pebble.verdict(), "without a paired variant the ratio is judged")

	var out bytes.Buffer
	writeText(&out, rows)
	text := out.String()
	assert.Contains(t, text, "MORE ALLOCS")
	assert.Contains(t, text, "1.018")
	assert.Equal(t, 4, strings.Count(text, "\n"), "header and three rows")
	out.Reset()
	writeMarkdown(&out, rows)
	assert.True(t, strings.HasPrefix(out.String(), "| operation |"))
	assert.Equal(t, 5, strings.Count(out.String(), "\n"), "header, rule and three rows")
}

func TestParseRejectsEmptyInput(t *testing.T) {
	_, err := parse(strings.NewReader("PASS\nok x 1s\n"))
	require.Error(t, err)
}

func TestCompareFlagsSlowBackend(t *testing.T) {
	res := results{
		"x.BenchmarkX/put/direct":  {{"ns/op": 100, "allocs/op": 1}},
		"x.BenchmarkX/put/backend": {{"ns/op": 101, "allocs/op": 1}},
		"x.BenchmarkX/put/paired":  {{"ns/op": 1, "backend/direct": 1.10}},
	}
	rows := compare(res, 1.05)
	require.Len(t, rows, 1)
	require.False(t, rows[0].OK, "the paired ratio, 1.10, is judged, not the 1.01 of the separate runs")
	require.Equal(t, "ABOVE 1.05", rows[0].verdict())
}
