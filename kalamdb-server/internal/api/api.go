// Package api is kalamdb-server's HTTP API: JSON over net/http's ServeMux,
// bearer-token authentication on every /v1 route, one error envelope
//
//	{"error":{"code":"TABLE_NOT_FOUND","message":"…"}}
//
// with the status that fits (400 bad input naming the field, 401, 403, 404,
// 409, 413, 415; 500 only for faults of the server, whose details go to the
// log and never to the client), and Prometheus metrics for every route.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/metrics"
)

// Options configures an API.
type Options struct {
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Auth authenticates /v1 callers. Required.
	Auth *auth.Authenticator
	// Metrics records requests; nil records nothing.
	Metrics *metrics.Metrics
	// MaxBodyBytes is the largest request body accepted (413 beyond).
	MaxBodyBytes int64
	// MaxPageRows caps the limit of a row listing.
	MaxPageRows int
	// Backend is the name of the storage backend, for /readyz.
	Backend string
	// Ready answers /readyz: nil when the backend is open and answering.
	// An *Error it returns is the response as it is (and is not logged);
	// any other error is logged and answers 503 saying that the backend
	// does not answer.
	Ready func(ctx context.Context) error
	// Degraded, when set, lists the problems that leave the server
	// serving reads and writes (the cold tier failing, for example):
	// /readyz still answers 200, with "status":"degraded" and them.
	Degraded func() []string

	// DB serves the namespace, table and row routes; nil leaves them out.
	DB *tables.DB
	// Catalog serves the namespace and table routes alone (without rows)
	// when DB is nil; with DB it is DB.Catalog().
	Catalog *catalog.Catalog
	// EvictionInterval is how often stream tables drop expired events.
	EvictionInterval time.Duration
	// OnWrite, when set, is told of every successful write to a user or
	// shared table: n row versions were buffered in t.
	OnWrite func(t *catalog.Table, n int)
	// Flush serves POST …/tables/{t}/flush for a user or shared table; nil
	// answers 501.
	Flush func(w http.ResponseWriter, r *http.Request, t *catalog.Table) error
	// Compact serves POST …/tables/{t}/compact for a user or shared table;
	// nil answers 501.
	Compact func(w http.ResponseWriter, r *http.Request, t *catalog.Table) error
	// Defaults are the policies of tables created without them.
	Defaults Defaults
	// Stats reports the buffered rows and segments of a table, as the
	// caller sees them; nil leaves them out of GET …/tables/{t}.
	Stats func(ctx context.Context, t *catalog.Table, p auth.Principal) (TableStats, error)
	// DropTable removes a table with everything it owns (buffer, manifest,
	// files); nil drops it from the catalog alone.
	DropTable func(ctx context.Context, ns, name string) error
}

// TableStats are the counters GET …/tables/{t} reports.
type TableStats struct {
	BufferedRows int64
	Segments     int64
}

// API is the HTTP handler of the server.
type API struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	draining atomic.Bool
	evict    evictions
}

// New builds the API and registers its routes.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.MaxPageRows <= 0 {
		opts.MaxPageRows = 1000
	}
	if opts.DB != nil {
		opts.Catalog = opts.DB.Catalog()
	}
	if opts.EvictionInterval <= 0 {
		opts.EvictionInterval = 10 * time.Second
	}
	a := &API{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	a.route("GET /healthz", public, a.healthz)
	a.route("GET /readyz", public, a.readyz)
	if opts.Metrics != nil {
		h := opts.Metrics.Handler()
		a.route("GET /metrics", public, func(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
			h.ServeHTTP(w, r)
			return nil
		})
	}
	if opts.Catalog != nil {
		a.route("POST /v1/namespaces", adminOnly, a.createNamespace)
		a.route("GET /v1/namespaces", authenticated, a.listNamespaces)
		a.route("GET /v1/namespaces/{ns}", authenticated, a.getNamespace)
		a.route("DELETE /v1/namespaces/{ns}", adminOnly, a.dropNamespace)
		a.route("POST /v1/namespaces/{ns}/tables", adminOnly, a.createTable)
		a.route("GET /v1/namespaces/{ns}/tables", authenticated, a.listTables)
		a.route("GET /v1/namespaces/{ns}/tables/{t}", authenticated, a.getTable)
		a.route("DELETE /v1/namespaces/{ns}/tables/{t}", adminOnly, a.dropTable)
		if opts.DB != nil {
			a.route("POST /v1/namespaces/{ns}/tables/{t}/rows", authenticated, a.insertRows)
			a.route("GET /v1/namespaces/{ns}/tables/{t}/rows", authenticated, a.listRows)
			a.route("GET /v1/namespaces/{ns}/tables/{t}/rows/{pk}", authenticated, a.getRow)
			a.route("PATCH /v1/namespaces/{ns}/tables/{t}/rows/{pk}", authenticated, a.patchRow)
			a.route("DELETE /v1/namespaces/{ns}/tables/{t}/rows/{pk}", authenticated, a.deleteRow)
			a.route("POST /v1/namespaces/{ns}/tables/{t}/flush", adminOnly, a.flushTable)
			a.route("POST /v1/namespaces/{ns}/tables/{t}/compact", adminOnly, a.compactTable)
			a.route("POST /v1/namespaces/{ns}/tables/{t}/columns", adminOnly, a.addColumn)
		}
	}
	a.mux.HandleFunc("/", a.noRoute)
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// SetDraining makes /readyz answer 503 from now on, so that a load balancer
// stops sending requests while the server shuts down.
func (a *API) SetDraining() { a.draining.Store(true) }

// access is who may call a route.
type access int

const (
	public        access = iota // no token
	authenticated               // any user
	adminOnly                   // users with the admin role
)

// handlerFunc is a route handler: it writes a response and returns nil, or
// returns an error that the route turns into the error envelope.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// route registers pattern ("METHOD /path") with the checks of its access
// level, metrics under the pattern's path, and error mapping.
func (a *API) route(pattern string, acc access, h handlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	var rm *metrics.RouteMetrics
	if a.opts.Metrics != nil {
		rm = a.opts.Metrics.Route(path, method)
	}
	op := "api: " + pattern
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		var end func(int)
		if rm != nil {
			end = rm.Begin()
		}
		var p auth.Principal
		logReq := a.log.Enabled(r.Context(), slog.LevelDebug)
		var start time.Time
		if logReq {
			start = time.Now()
		}
		defer func() {
			if end != nil {
				end(sw.statusOrOK())
			}
			if logReq {
				a.log.Debug("request", "method", r.Method, "route", path, "status", sw.statusOrOK(), "user", p.ID, "duration", time.Since(start))
			}
		}()
		err := guard.Run(op, func() error {
			if acc != public {
				var err error
				p, err = a.opts.Auth.Authenticate(r.Header.Get("Authorization"))
				if err != nil {
					w.Header().Set("WWW-Authenticate", `Bearer realm="kalamdb"`)
					return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: err.Error()}
				}
				if acc == adminOnly && !p.IsAdmin() {
					return &Error{Status: http.StatusForbidden, Code: CodeForbidden,
						Message: fmt.Sprintf("user %q has role %q; this operation needs the admin role", p.ID, p.Role)}
				}
			}
			return h(sw, r, p)
		})
		if pe, ok := err.(*guard.PanicError); ok {
			if pe.Value == http.ErrAbortHandler {
				panic(http.ErrAbortHandler) // net/http's way to abort a response
			}
			a.log.Error("handler panic", "method", r.Method, "route", path, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
			if !sw.wrote {
				a.writeError(sw, r, errInternal)
			}
			return
		}
		if err != nil {
			a.writeError(sw, r, err)
		}
	})
}

// noRoute answers requests that match no route: 405 when the path exists
// for another method, 404 otherwise.
func (a *API) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		a.writeError(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))})
		return
	}
	a.writeError(w, r, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if a.draining.Load() {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Message: "the server is shutting down"}
	}
	if a.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.opts.Ready(ctx); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return e // the checker logs what it found, once
			}
			a.log.Warn("readiness check failed", "backend", a.opts.Backend, "err", err)
			return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady,
				Message: fmt.Sprintf("storage backend %q is not answering", a.opts.Backend)}
		}
	}
	if a.opts.Degraded != nil {
		if problems := a.opts.Degraded(); len(problems) > 0 {
			writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "backend": a.opts.Backend, "degraded": true, "problems": problems})
			return nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "backend": a.opts.Backend})
	return nil
}

// WriteJSON writes v as the JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// writeJSON writes v as the JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here (an unencodable value).
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"INTERNAL","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body = append(body, '\n')
	_, _ = w.Write(body)
}

// statusWriter remembers the status written, for metrics and for not
// writing twice.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) statusOrOK() int {
	if !s.wrote {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

var errInternal = errors.New("internal error")
