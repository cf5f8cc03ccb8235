package s3test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Fault is what the Proxy does to one request.
type Fault int

// The faults of a Proxy.
const (
	// Pass forwards the request and its response.
	Pass Fault = iota
	// Fail answers 503 without forwarding the request.
	Fail
	// LostReply forwards the request (the store applies it) and answers
	// 500 instead of the store's response.
	LostReply
	// Truncate forwards the request and cuts the response's body in half
	// (the length announced stays whole), then closes the connection.
	Truncate
	// Hang never answers: the request waits until its client gives up
	// (a timeout) or the proxy closes.
	Hang
	// Slow forwards the request and answers after SlowDelay.
	Slow
)

// SlowDelay is how long a Slow fault delays a response.
var SlowDelay = 200 * time.Millisecond

// Proxy is an HTTP proxy on a loopback port between an S3 client and the
// server, which injects faults into chosen requests: the client's endpoint
// is the proxy's URL.
type Proxy struct {
	// URL is the proxy's endpoint.
	URL    string
	target string
	srv    *httptest.Server
	mu     sync.Mutex
	rule   func(n int, r *http.Request) Fault
	n      int
	closed chan struct{}
}

// NewProxy starts a proxy to the server at target (an endpoint URL).
func NewProxy(target string) *Proxy {
	p := &Proxy{target: target, closed: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	return p
}

// Close stops the proxy; hanging requests end.
func (p *Proxy) Close() {
	close(p.closed)
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// SetRule sets the fault of each request: rule gets the request's number
// (1 for the first after SetRule) and the request. nil passes everything.
func (p *Proxy) SetRule(rule func(n int, r *http.Request) Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule, p.n = rule, 0
}

// Requests returns how many requests came since the last SetRule.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.n++
	f := Pass
	if p.rule != nil {
		f = p.rule(p.n, r)
	}
	p.mu.Unlock()
	switch f {
	case Fail:
		http.Error(w, "injected fault", http.StatusServiceUnavailable)
		return
	case Hang:
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host
	req.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	switch f {
	case LostReply:
		http.Error(w, "injected fault after the request applied", http.StatusInternalServerError)
		return
	case Slow:
		select {
		case <-time.After(SlowDelay):
		case <-r.Context().Done():
			return
		}
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if f == Truncate && len(data) > 1 {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(data[:len(data)/2])
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.(*net.TCPConn).Close()
			}
		}
		return
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(data)
}
