package server

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openConn opens a connection and tells whether the server keeps it: a
// kept one answers a request, a refused one is closed without a word.
func openConn(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	return openConnFrom(t, "127.0.0.1", addr)
}

// openConnFrom is openConn from another loopback address of this machine.
func openConnFrom(t *testing.T, local, addr string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	if err != nil {
		_ = c.Close()
		return nil, false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		_ = c.Close()
		return nil, false
	}
	_ = resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	return c, true
}

// Connections beyond server.max_connections_per_client (or
// server.max_connections) are closed on arrival, counted and logged, and a
// place freed by a closed connection is taken again.
func TestConnectionBounds(t *testing.T) {
	doc := strings.Replace(memoryConfig, "port = 0\n", "port = 0\nmax_connections = 5\nmax_connections_per_client = 3\n", 1)
	r := startServer(t, doc)
	var kept []net.Conn
	for range 3 {
		c, ok := openConn(t, r.addr)
		require.True(t, ok)
		kept = append(kept, c)
	}
	_, ok := openConn(t, r.addr)
	assert.False(t, ok, "a fourth connection from one address is refused")
	assert.Contains(t, r.logs.String(), "limit=server.max_connections_per_client")

	require.NoError(t, kept[0].Close())
	waitFor(t, func() bool { return strings.Contains(metricsText(t, r), "kalamdb_http_connections 2\n") })
	c, ok := openConn(t, r.addr)
	require.True(t, ok, "the freed place is taken again")
	kept[0] = c
	for _, local := range []string{"127.0.0.2", "127.0.0.2"} {
		c, ok := openConnFrom(t, local, r.addr)
		require.True(t, ok, "another client has room")
		kept = append(kept, c)
	}
	_, ok = openConnFrom(t, "127.0.0.3", r.addr)
	assert.False(t, ok, "a sixth connection is refused, whoever sends it")
	text := metricsText(t, r)
	assert.Contains(t, text, `kalamdb_http_connections_refused_total{limit="server.max_connections_per_client"} 1`)
	assert.Contains(t, text, `kalamdb_http_connections_refused_total{limit="server.max_connections"} 1`)
	assert.Contains(t, text, "kalamdb_http_connections 5\n")
	for _, c := range kept {
		_ = c.Close()
	}
}

// metricsText reads /metrics on a connection of its own, then closes it.
func metricsText(t *testing.T, r *running) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.server.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestConnectionBoundLeavesRoomForFiles(t *testing.T) {
	got, lowered := connectionBound(1 << 30)
	assert.True(t, lowered)
	assert.Less(t, got, 1<<30)
	got, lowered = connectionBound(10)
	assert.False(t, lowered)
	assert.Equal(t, 10, got)
}
