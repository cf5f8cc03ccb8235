package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServerTopologies(t *testing.T) {
	var names []string
	for _, tp := range serverTopologies() {
		names = append(names, tp.String())
	}
	assert.Equal(t, []string{"rocksdb/1", "etcd/1", "etcd/2", "etcd/3", "redis/1", "redis/2", "redis/3"}, names)
}

func TestRoundRobin(t *testing.T) {
	bases := []string{"a", "b", "c"}
	var got []string
	for i := int64(1); i <= 7; i++ {
		got = append(got, roundRobin(bases, i))
	}
	assert.Equal(t, []string{"b", "c", "a", "b", "c", "a", "b"}, got)
	assert.Equal(t, "a", roundRobin([]string{"a"}, 41))
}

func TestSumMetric(t *testing.T) {
	text := `# HELP grpc_server_handled_total Total number of RPCs completed on the server.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 12
grpc_server_handled_total{grpc_code="OK",grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3e+01
grpc_server_handled_total_other 1000
grpc_server_handled 500
grpc_server_started_total{grpc_method="Txn"} 99
`
	v, err := sumMetric(strings.NewReader(text), "grpc_server_handled_total")
	require.NoError(t, err)
	assert.Equal(t, 42.0, v)

	v, err = sumMetric(strings.NewReader("kalamdb_buffered_rows 7\n"), "kalamdb_buffered_rows")
	require.NoError(t, err)
	assert.Equal(t, 7.0, v)

	v, err = sumMetric(strings.NewReader("other 1\n"), "kalamdb_buffered_rows")
	require.NoError(t, err)
	assert.Equal(t, 0.0, v, "a metric that is absent sums to zero")

	_, err = sumMetric(strings.NewReader(`m{a="1"} many`+"\n"), "m")
	assert.ErrorContains(t, err, `metric m: value of "m{a=\"1\"} many"`)
	_, err = sumMetric(strings.NewReader(`m{a="1" 3`+"\n"), "m")
	assert.ErrorContains(t, err, "unterminated labels")
	_, err = sumMetric(strings.NewReader("m \n"), "m")
	assert.ErrorContains(t, err, "no value")
}

func TestInfoField(t *testing.T) {
	info := []byte("# Stats\r\ntotal_connections_received:4\r\ntotal_commands_processed:1234\r\n")
	v, err := infoField(info, "total_commands_processed")
	require.NoError(t, err)
	assert.Equal(t, 1234.0, v)

	_, err = infoField(info, "total_net_input_bytes")
	assert.ErrorContains(t, err, "no field total_net_input_bytes")
	_, err = infoField([]byte("total_commands_processed:x\r\n"), "total_commands_processed")
	assert.Error(t, err)
}

func TestMedianOf(t *testing.T) {
	vals := []float64{3, 1, 2}
	assert.Equal(t, 2.0, medianOf(vals))
	assert.Equal(t, []float64{3, 1, 2}, vals, "medianOf does not reorder its argument")
	assert.Equal(t, 0.0, medianOf(nil))
}

func TestWorkload(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, r.Host+" "+r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
		if r.Method == "POST" {
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	other := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	bases := []string{srv.URL, other}
	var seq atomic.Int64
	w := &workload{base: func() string { return roundRobin(bases, seq.Add(1)) }, warm: 3}
	c := newClient(2)

	n, err := w.insert(c, 2)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = w.insert(c, 1)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	for range 3 {
		_, err := w.lookup(c)
		require.NoError(t, err)
	}

	host := func(u string) string { return strings.TrimPrefix(u, "http://") }
	row := func(id int) string {
		return fmt.Sprintf(`{"id":%d,"body":"message number %d, some text of a usual size","at":"2026-01-02T03:04:05Z"}`, id, id)
	}
	assert.Equal(t, []string{
		host(other) + " POST /v1/namespaces/bench/tables/messages/rows " + `{"rows":[` + row(1) + "," + row(2) + `]}`,
		host(srv.URL) + " POST /v1/namespaces/bench/tables/messages/rows " + `{"rows":[` + row(3) + `]}`,
		// 7919, 15838 and 23757 modulo 3, plus 1.
		host(other) + " GET /v1/namespaces/bench/tables/messages/rows/3 ",
		host(srv.URL) + " GET /v1/namespaces/bench/tables/messages/rows/2 ",
		host(other) + " GET /v1/namespaces/bench/tables/messages/rows/1 ",
	}, reqs)

	_, err = w.insert(c, 1)
	require.NoError(t, err)
	srv.Close()
	_, err = w.lookup(c)
	assert.Error(t, err, "a server that does not answer is an error")
}
