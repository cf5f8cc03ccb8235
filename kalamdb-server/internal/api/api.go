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
	"unicode/utf8"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/metrics"
)

// Options configures an API.
type Options struct {
	// Logger receives request errors and, with AccessLog, a line per
	// request; nil discards them.
	Logger *slog.Logger
	// AccessLog logs every request at info level: method, route pattern,
	// status, duration, user id and client address (never a token).
	AccessLog bool
	// Auth authenticates /v1 callers. Required.
	Auth *auth.Authenticator
	// Metrics records requests; nil records nothing.
	Metrics *metrics.Metrics
	// MaxBodyBytes is the largest request body accepted (413 beyond).
	MaxBodyBytes int64
	// MaxPageRows caps the limit of a row listing.
	MaxPageRows int
	// MaxPageBytes ends a page of a row listing early once its rows take
	// that many bytes (tables.ScanOptions.MaxBytes); 0 means 8 MiB.
	MaxPageBytes int
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

	// DatabaseID, when set, is shown by /healthz: servers that share a
	// backend serve one database and show the same id.
	DatabaseID string
	// DB serves the namespace, table and row routes; nil leaves them out.
	DB *tables.DB
	// Catalog serves the namespace and table routes alone (without rows)
	// when DB is nil; with DB it is DB.Catalog().
	Catalog *catalog.Catalog
	// EvictionInterval is how often stream tables drop expired events.
	EvictionInterval time.Duration
	// Cold serves POST …/flush and …/compact of user and shared tables,
	// and DELETE of a table (which removes its segments too); nil answers
	// the first two 501 and drops tables from the catalog alone.
	Cold ColdTier
	// Defaults are the policies of tables created without them.
	Defaults Defaults
	// Stats reports the buffered rows and segments of a table, as the
	// caller sees them; nil leaves them out of GET …/tables/{t}.
	Stats func(ctx context.Context, t *catalog.Table, p auth.Principal) (TableStats, error)
	// Backup serves POST /v1/admin/backup: an online backup of the
	// database to a location the server writes; nil leaves the route out.
	Backup func(ctx context.Context, to string) (*backup.Index, error)
}

// ColdTier is what the API needs of the Parquet cold tier (a
// *flush.Manager).
type ColdTier interface {
	Flush(ctx context.Context, ns, name string) (flush.Result, error)
	MajorCompact(ctx context.Context, ns, name string) (flush.CompactResult, error)
	DropTable(ctx context.Context, ns, name string) error
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
	authn    atomic.Pointer[auth.Authenticator]
	access   atomic.Bool // Options.AccessLog, as SetAccessLog last set it
	draining atomic.Bool
	// storageDown is set while the backend is known not to answer, so that
	// the outage and the recovery are each logged once.
	storageDown atomic.Bool
	// unmatched are the metrics of requests no route matches, by method.
	unmatched map[string]*metrics.RouteMetrics
	evict     evictions
}

// UnmatchedRoute is the route label of requests that match no route, in
// metrics and in the access log.
const UnmatchedRoute = "unmatched"

// unmatchedMethods are the method labels of unmatched requests; any other
// method is counted as OTHER, so that clients cannot grow the label set.
var unmatchedMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}

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
	if opts.MaxPageBytes <= 0 {
		opts.MaxPageBytes = 8 << 20
	}
	if opts.DB != nil {
		opts.Catalog = opts.DB.Catalog()
	}
	if opts.EvictionInterval <= 0 {
		opts.EvictionInterval = 10 * time.Second
	}
	a := &API{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	a.authn.Store(opts.Auth)
	a.access.Store(opts.AccessLog)
	if opts.Metrics != nil {
		a.unmatched = make(map[string]*metrics.RouteMetrics, len(unmatchedMethods))
		for _, m := range unmatchedMethods {
			a.unmatched[m] = opts.Metrics.Route(UnmatchedRoute, m)
		}
	}
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
	if opts.Backup != nil {
		a.route("POST /v1/admin/backup", adminOnly, a.backup)
	}
	a.mux.HandleFunc("/", a.observe(UnmatchedRoute, a.unmatchedMetrics, func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) {
		a.noRoute(w, r)
	}))
	return a
}

// SetAccessLog turns the access log on or off, as a reload of the
// configuration does.
func (a *API) SetAccessLog(on bool) { a.access.Store(on) }

// SetAuth replaces the authenticator, as a reload of the configuration
// does: requests that start afterwards use the new users and tokens.
func (a *API) SetAuth(authn *auth.Authenticator) { a.authn.Store(authn) }

func (a *API) unmatchedMetrics(method string) *metrics.RouteMetrics {
	if a.unmatched == nil {
		return nil
	}
	if rm, ok := a.unmatched[method]; ok {
		return rm
	}
	return a.unmatched["OTHER"]
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
	a.mux.HandleFunc(pattern, a.observe(path, func(string) *metrics.RouteMetrics { return rm }, func(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
		if acc != public {
			if n := len(r.Header.Values("Authorization")); n > 1 {
				a.writeError(w, r, badRequest("the request has %d Authorization headers; send one", n))
				return
			}
			var err error
			*p, err = a.authn.Load().Authenticate(r.Header.Get("Authorization"))
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kalamdb"`)
				a.writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: err.Error()})
				return
			}
			if acc == adminOnly && !p.IsAdmin() {
				a.writeError(w, r, &Error{Status: http.StatusForbidden, Code: CodeForbidden,
					Message: fmt.Sprintf("user %q has role %q; this operation needs the admin role", p.ID, p.Role)})
				return
			}
		}
		serve := h
		if strings.Contains(path, "{t}") {
			serve = a.onRecreated(h)
		}
		if err := serve(w, r, *p); err != nil {
			a.writeError(w, r, err)
		}
	}))
}

// observe wraps serve with what every request gets, routed or not: the
// metrics of rm(method) under route, recovery from a panic (logged with its
// stack, answered 500), the access log line, and the tracking of the
// storage backend's state. serve records the caller in its principal
// argument once authenticated.
func (a *API) observe(route string, rm func(method string) *metrics.RouteMetrics, serve func(w http.ResponseWriter, r *http.Request, p *auth.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		var end func(int)
		if m := rm(r.Method); m != nil {
			end = m.Begin()
		}
		var p auth.Principal
		start := time.Now()
		defer func() {
			status := sw.statusOrOK()
			if end != nil {
				end(status)
			}
			if status < 300 && route != UnmatchedRoute && a.storageDown.Load() {
				a.storageAnswers()
			}
			if a.access.Load() {
				attrs := []any{"method", truncate(r.Method, 32), "route", route, "status", status, "duration", time.Since(start), "user", p.ID, "remote", r.RemoteAddr}
				if route == UnmatchedRoute {
					attrs = append(attrs, "path", truncate(r.URL.Path, 256))
				}
				a.log.Info("request", attrs...)
			}
		}()
		err := guard.Run("api: "+route, func() error {
			serve(sw, r, &p)
			return nil
		})
		if pe, ok := err.(*guard.PanicError); ok {
			if pe.Value == http.ErrAbortHandler {
				panic(http.ErrAbortHandler) // net/http's way to abort a response
			}
			a.log.Error("handler panic", "method", r.Method, "route", route, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
			if !sw.wrote {
				a.writeError(sw, r, errInternal)
			}
		}
	}
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// storageUnavailable records that the backend does not answer, logging the
// change once: requests answer 503 until it answers again.
func (a *API) storageUnavailable(err error) {
	if a.storageDown.CompareAndSwap(false, true) {
		if errors.Is(err, objstore.ErrUnavailable) {
			a.log.Warn("the object store of the segments is unavailable: requests that need a segment not in the local cache answer 503 until it answers again",
				"err", err)
			return
		}
		a.log.Warn("storage backend is unavailable: requests that need it answer 503 until it answers again",
			"backend", a.opts.Backend, "err", err)
	}
}

// storageAnswers records that the backend answers again, logging the change
// once.
func (a *API) storageAnswers() {
	if a.storageDown.CompareAndSwap(true, false) {
		a.log.Info("storage backend answers again", "backend", a.opts.Backend)
	}
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
			Message: fmt.Sprintf("%s is not allowed on %s; allowed: %s", truncate(r.Method, 32), truncate(r.URL.Path, 256), strings.Join(allowed, ", "))})
		return
	}
	a.writeError(w, r, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no route %s %s", truncate(r.Method, 32), truncate(r.URL.Path, 256))})
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	body := map[string]string{"status": "ok"}
	if a.opts.DatabaseID != "" {
		body["database_id"] = a.opts.DatabaseID
	}
	writeJSON(w, http.StatusOK, body)
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
			a.storageUnavailable(err)
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
