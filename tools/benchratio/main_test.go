package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb
BenchmarkDispatch/get/direct-2         	  500000	      1000 ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      1010 ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/scan100/direct-2     	   10000	     20000 ns/op	    6416 B/op	     402 allocs/op
BenchmarkDispatch/scan100/backend-2    	   10000	     22000 ns/op	    6816 B/op	     407 allocs/op
BenchmarkDispatch/get/direct-2         	  500000	      3000 ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      1020 ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/scan100/direct-2     	   10000	     20000 ns/op	    6416 B/op	     402 allocs/op
BenchmarkDispatch/scan100/backend-2    	   10000	     20100 ns/op	    6816 B/op	     407 allocs/op
BenchmarkDispatch/get/direct-2         	  500000	      1000 ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      1030 ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/scan100/direct-2     	   10000	     20000 ns/op	    6416 B/op	     402 allocs/op
BenchmarkDispatch/scan100/backend-2    	   10000	     20200 ns/op	    6816 B/op	     407 allocs/op
BenchmarkRocksDB/get-2                 	  500000	      1000 ns/op
BenchmarkOnlyDirect/x/direct-2         	  500000	      1000 ns/op
PASS
ok  	github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb	28.146s
pkg: github.com/kalamdb/kalamdb-go/kalamdb-store/pebble
BenchmarkDispatch/get/direct-2         	  500000	      500 ns/op	       400.0 cpu-ns/op	     152 B/op	       4 allocs/op
BenchmarkDispatch/get/backend-2        	  500000	      600 ns/op	       420.0 cpu-ns/op	     152 B/op	       4 allocs/op
`

func TestCompareUsesMediansAndPairs(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, res["rocksdb.BenchmarkDispatch/get/direct"], 3)
	rows := compare(res, 1.02)
	require.Len(t, rows, 3, "only get and scan100 of rocksdb and get of pebble have both sides")
	pebble, get, scan := rows[0], rows[1], rows[2]
	require.Equal(t, "pebble.BenchmarkDispatch/get", pebble.Op, "packages are kept apart")
	assert.InDelta(t, 1.2, pebble.Ratio, 1e-9)
	assert.InDelta(t, 1.05, pebble.CPURatio, 1e-9, "cpu-ns/op medians")
	assert.Equal(t, 4.0, pebble.BackendAllocs, "allocs/op after a custom metric")
	require.Equal(t, "rocksdb.BenchmarkDispatch/get", get.Op)
	require.Equal(t, "rocksdb.BenchmarkDispatch/scan100", scan.Op)

	// Medians: direct 1000 (the 3000 outlier ignored), backend 1020.
	assert.Equal(t, 1000.0, get.DirectNs)
	assert.Equal(t, 1020.0, get.BackendNs)
	assert.InDelta(t, 1.02, get.Ratio, 1e-9)
	assert.True(t, get.OK, "a ratio at the target passes")
	assert.InDelta(t, 0.34, get.MinRatio, 1e-9, "paired runs: 1020/3000")
	assert.InDelta(t, 1.03, get.MaxRatio, 1e-9)

	assert.InDelta(t, 1.01, scan.Ratio, 1e-9)
	assert.Equal(t, 402.0, scan.DirectAllocs)
	assert.Equal(t, 407.0, scan.BackendAllocs)
	assert.False(t, scan.OK, "more allocations per op fail whatever the time")

	var out bytes.Buffer
	writeText(&out, rows, 1.02)
	assert.Contains(t, out.String(), "MORE ALLOCS")
	assert.Contains(t, out.String(), "1.020")
	assert.Contains(t, out.String(), "1.050")
	out.Reset()
	writeMarkdown(&out, rows, 1.02)
	assert.True(t, strings.HasPrefix(out.String(), "| operation |"))
	assert.Equal(t, 5, strings.Count(out.String(), "\n"), "header, rule and three rows")
}

func TestParseRejectsEmptyInput(t *testing.T) {
	_, err := parse(strings.NewReader("PASS\nok x 1s\n"))
	require.Error(t, err)
}

func TestCompareFlagsSlowBackend(t *testing.T) {
	res := results{
		"BenchmarkX/put/direct":  {{NsPerOp: 100, AllocsPerOp: 1}},
		"BenchmarkX/put/backend": {{NsPerOp: 110, AllocsPerOp: 1}},
	}
	rows := compare(res, 1.05)
	require.Len(t, rows, 1)
	require.False(t, rows[0].OK)
	require.Equal(t, "ABOVE 1.05", verdict(rows[0], 1.05))
}
