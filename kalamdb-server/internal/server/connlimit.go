package server

import (
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/metrics"
)

// limitListener bounds the connections the server holds open: in all, and
// from one client address. A connection beyond a bound is closed as soon as
// it is accepted, so that one client's idle keep-alive connections can
// neither exhaust the process's file descriptors (which the storage backend
// needs too) nor crowd out other clients.
type limitListener struct {
	net.Listener
	max, perClient int
	log            *slog.Logger
	m              *metrics.Metrics

	mu     sync.Mutex
	total  int
	byHost map[string]int

	lastLog atomic.Int64 // unix nanoseconds of the last refusal logged
}

func newLimitListener(ln net.Listener, max, perClient int, log *slog.Logger, m *metrics.Metrics) *limitListener {
	return &limitListener{Listener: ln, max: max, perClient: perClient, log: log, m: m, byHost: map[string]int{}}
}

// Accept returns the next connection within the bounds, closing those
// beyond them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := remoteHost(c.RemoteAddr())
		l.mu.Lock()
		reason := ""
		switch {
		case l.total >= l.max:
			reason = "server.max_connections"
		case l.byHost[host] >= l.perClient:
			reason = "server.max_connections_per_client"
		default:
			l.total++
			l.byHost[host]++
		}
		l.mu.Unlock()
		if reason != "" {
			// Counted and logged before the close, so that whoever sees
			// the connection closed finds the refusal recorded.
			l.refused(host, reason)
			_ = c.Close()
			continue
		}
		l.m.ConnectionOpened()
		return &limitedConn{Conn: c, release: func() { l.release(host) }}, nil
	}
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	l.total--
	if l.byHost[host]--; l.byHost[host] <= 0 {
		delete(l.byHost, host)
	}
	l.mu.Unlock()
	l.m.ConnectionClosed()
}

// refused counts a refused connection and logs it, at most once a second.
func (l *limitListener) refused(host, reason string) {
	l.m.ConnectionRefused(reason)
	now := time.Now().UnixNano()
	if last := l.lastLog.Load(); now-last >= int64(time.Second) && l.lastLog.CompareAndSwap(last, now) {
		l.log.Warn("connection refused: too many open connections", "client", host, "limit", reason)
	}
}

func remoteHost(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitedConn releases its place in the bounds when closed, once.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// fdReserve is how many file descriptors the connection bound leaves to
// the rest of the process: the storage backend's files, segment files and
// logs.
const fdReserve = 1024

// connectionBound returns max, lowered when the process may not open that
// many files besides fdReserve (RLIMIT_NOFILE, which Go raises to its hard
// limit at start), and whether it was lowered.
func connectionBound(max int) (int, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > math.MaxInt32 {
		return max, false
	}
	room := int64(lim.Cur) - fdReserve
	if room < 64 {
		room = 64
	}
	if int64(max) > room {
		return int(room), true
	}
	return max, false
}
