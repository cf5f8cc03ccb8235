// Package sql is kalamdb-server's SQL endpoint, POST /v1/api/sql, in
// KalamDB's request and response shapes.
//
// A small statement layer recognises KalamDB's own statements — namespace
// and table DDL, SHOW, DESCRIBE, USE, STORAGE FLUSH and COMPACT, BACKUP
// DATABASE (and RESTORE DATABASE, refused while the server runs) — and runs
// them with the operations of the REST API. Queries, and the expressions
// of INSERT, UPDATE and DELETE, are parsed, planned and evaluated by an
// embedded DuckDB: each query gets a private in-memory catalog holding
// exactly the rows the REST API shows the caller (the merged buffer and
// segments, newest version wins, tombstones hidden, the caller's own rows
// of a user table), with equality and ranges on the primary key pushed
// down to point lookups and bounded scans. See ADR-019.
package sql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
)

// Route is the pattern of the SQL endpoint.
const Route = "POST /v1/api/sql"

// Error codes the SQL endpoint adds to the REST API's.
const (
	CodeInvalidSQL      = "INVALID_SQL"
	CodeUnsupported     = "UNSUPPORTED_STATEMENT"
	CodeUnknownColumn   = "UNKNOWN_COLUMN"
	CodeTypeError       = "TYPE_ERROR"
	CodeNoNamespace     = "NO_NAMESPACE"
	CodeResultTooLarge  = "RESULT_TOO_LARGE"
	CodeInvalidArgument = api.CodeInvalidArgument
)

// DefaultMaxResultRows is the most rows a statement returns or reads into
// the engine when Options.MaxResultRows is 0.
const DefaultMaxResultRows = 1_000_000

// DefaultQueryTimeout is Options.QueryTimeout when it is 0.
const DefaultQueryTimeout = 30 * time.Second

// Options configures an Engine.
type Options struct {
	// API runs the statements that the REST API also serves. Required.
	API *api.API
	// DB holds the tables. Required.
	DB *tables.DB
	// Logger receives engine errors; nil discards them.
	Logger *slog.Logger
	// QueryTimeout bounds the time a statement spends in the query engine;
	// 0 means DefaultQueryTimeout. A statement that takes longer fails with
	// REQUEST_TIMEOUT.
	QueryTimeout time.Duration
	// MaxResultRows bounds the rows a statement reads from one table and
	// the rows it returns; 0 means DefaultMaxResultRows. Of a table whose
	// segments the engine reads itself (Segments), it bounds the buffered
	// rows read.
	MaxResultRows int
	// Segments, when set and its segment files are in a local directory,
	// lets the engine read a table's Parquet segments itself, that
	// directory being the only one it may read; otherwise (an object
	// store) it does so through copies of the files in SegmentFiles, when
	// set, or a query copies every row it reads from the table layer.
	Segments Segments
	// SegmentFiles is the directory where the engine keeps copies of the
	// segment files of an object store, whole, for queries to read. It is
	// the engine's alone: New empties it. Used only when the segments are
	// not in a local directory.
	SegmentFiles string
	// SegmentFilesMaxBytes bounds the copies in SegmentFiles that no
	// running query reads (the least recently used are removed beyond
	// it); 0 means DefaultSegmentFilesMaxBytes.
	SegmentFilesMaxBytes int64
}

// DefaultSegmentFilesMaxBytes is Options.SegmentFilesMaxBytes when it is 0.
const DefaultSegmentFilesMaxBytes = 1 << 30

// Engine executes SQL requests. It is safe for concurrent use.
type Engine struct {
	opts  Options
	log   *slog.Logger
	conn  *duckdb.Connector
	db    *sql.DB
	scope atomic.Uint64 // names the private catalog of each query
	// parses caches parse trees by query text (parseCached).
	parses textCache[*parsed]
	// splits caches the statements of a request by its text (splitCached).
	splits textCache[[]statement]
	// segments is opts.Segments when its files are local or mirrored,
	// else nil.
	segments Segments
	// mirror holds the copies of the segment files of an object store
	// (Options.SegmentFiles); nil when they are local.
	mirror *mirror
	// dml serialises the UPDATE and DELETE statements of one table (and
	// user) in this process, striped by a hash of both (dmlLock): each
	// evaluates its rows, then writes them only if no row changed since,
	// so concurrent statements on the same rows would otherwise evaluate
	// again and again, each undoing the others' reads.
	dml     [64]sync.Mutex
	dmlSeed maphash.Seed
	// dedupeAlways makes every view over segments merge its versions, even
	// where their key ranges prove it needless (tests and benchmarks).
	dedupeAlways bool
	// between, when set, is called by a query between its read of a
	// table's buffer and its list of segments ("buffered"), and once it
	// holds the list ("listed") (tests).
	between func(stage string)
	// views counts the views over segment files made, merged the
	// segments they merged with the buffer (tests).
	views, merged atomic.Int64
}

// New opens the query engine: an in-memory DuckDB that loads no extension
// and may read no file, except the segment files under Options.Segments's
// local directory, or under Options.SegmentFiles for an object store.
func New(opts Options) (*Engine, error) {
	if opts.API == nil || opts.DB == nil {
		return nil, errors.New("sql: Options.API and Options.DB are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.MaxResultRows <= 0 {
		opts.MaxResultRows = DefaultMaxResultRows
	}
	c, err := duckdb.NewConnector("?autoinstall_known_extensions=false&autoload_known_extensions=false", nil)
	if err != nil {
		return nil, fmt.Errorf("sql: opening the query engine: %w", err)
	}
	db := sql.OpenDB(c)
	e := &Engine{opts: opts, log: opts.Logger, conn: c, db: db, dmlSeed: maphash.MakeSeed()}
	// Once external access is off, the directories it may read cannot
	// change, and with the configuration locked nothing else can either.
	setup := []string{"SET enable_external_access = false", "SET lock_configuration = true"}
	if opts.Segments != nil {
		dir, ok := opts.Segments.LocalDir()
		mirrored := false
		if !ok && opts.SegmentFiles != "" {
			if dir, err = filepath.Abs(opts.SegmentFiles); err != nil {
				_ = db.Close()
				_ = c.Close()
				return nil, fmt.Errorf("sql: the segment files directory: %w", err)
			}
			ok, mirrored = true, true
		}
		// A path DuckDB would take for a pattern, or the file system's
		// root (which would open every file), is left to the copy.
		if ok && !strings.ContainsAny(dir, "*?[]{}") && filepath.Dir(dir) != dir {
			if mirrored {
				limit := opts.SegmentFilesMaxBytes
				if limit == 0 {
					limit = DefaultSegmentFilesMaxBytes
				}
				if e.mirror, err = openMirror(dir, limit, opts.Segments.Store()); err != nil {
					_ = db.Close()
					_ = c.Close()
					return nil, err
				}
			}
			e.segments = opts.Segments
			// Segment files are never rewritten under their name (it holds
			// the table's id and the segment's, neither ever reused), so
			// their footers may be kept between queries.
			setup = append([]string{"SET allowed_directories = [" + quoteString(strings.TrimSuffix(dir, "/")+"/") + "]",
				"SET parquet_metadata_cache = true"}, setup...)
		}
	}
	for _, q := range setup {
		if _, err := db.Exec(q); err != nil {
			_ = db.Close()
			_ = c.Close()
			return nil, fmt.Errorf("sql: configuring the query engine (%s): %w", q, err)
		}
	}
	return e, nil
}

// Close closes the query engine.
func (e *Engine) Close() error {
	return errors.Join(e.db.Close(), e.conn.Close())
}

// Register adds the SQL route to a.
func (e *Engine) Register(a *api.API) { a.HandleAuthenticated(Route, e.Serve) }

// request is the body of POST /v1/api/sql.
type request struct {
	SQL         *string         `json:"sql"`
	Params      json.RawMessage `json:"params"`
	NamespaceID string          `json:"namespace_id"`
}

// Field is a column of a result.
type Field struct {
	Name     string `json:"name"`
	DataType string `json:"data_type"`
	Index    int    `json:"index"`
}

// Result is the outcome of one statement.
type Result struct {
	Schema   []Field `json:"schema"`
	Rows     [][]any `json:"rows"`
	RowCount int     `json:"row_count"`
	Message  string  `json:"message,omitempty"`
}

// Response is the body of every answer of the endpoint.
type Response struct {
	Status  string         `json:"status"`
	Results []Result       `json:"results"`
	Took    float64        `json:"took"`
	Error   *ResponseError `json:"error,omitempty"`
}

// ResponseError is the error of a failed request.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details"`
}

// Serve answers POST /v1/api/sql as caller p. Every outcome, failures
// included, is written in the endpoint's response shape.
func (e *Engine) Serve(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	start := time.Now()
	results, failed, err := e.serve(w, r, p)
	took := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		ae := e.opts.API.ErrorOf(r, err)
		if ae.Code == api.CodeStorageUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		var details any
		if failed > 0 {
			details = map[string]int{"statement": failed}
		}
		api.WriteJSON(w, ae.Status, Response{Status: "error", Results: []Result{}, Took: took,
			Error: &ResponseError{Code: ae.Code, Message: ae.Message, Details: details}})
		return nil
	}
	writeSuccess(w, results, took)
	return nil
}

// serve runs the request's statements in order, stopping at the first
// failure, whose number (from 1) it returns with the error.
func (e *Engine) serve(w http.ResponseWriter, r *http.Request, p auth.Principal) ([]Result, int, error) {
	var (
		text, ns string
		params   []any
	)
	err := e.opts.API.ReadJSONBody(w, r, func(data []byte) error {
		var ok bool
		if text, params, ns, ok = quickRequest(data); ok {
			return nil
		}
		var req request
		if err := e.opts.API.DecodeJSON(data, &req); err != nil {
			return err
		}
		if req.SQL == nil {
			return badRequest(CodeInvalidSQL, `field "sql" is required: the statements to run`)
		}
		var err error
		if params, err = decodeParams(req.Params); err != nil {
			return err
		}
		text, ns = *req.SQL, req.NamespaceID
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	stmts, err := e.splitCached(text)
	if err != nil {
		return nil, 0, err
	}
	if len(stmts) == 0 {
		return nil, 0, badRequest(CodeInvalidSQL, `field "sql" holds no statement`)
	}
	s := &session{e: e, p: p, ns: ns, params: params}
	results := make([]Result, 0, len(stmts))
	for i, st := range stmts {
		res, err := s.exec(r.Context(), st)
		if errors.Is(err, core.ErrTableNotFound) && e.catalogReadAgain(r.Context()) {
			// Another server dropped a table the statement names and
			// created it again: the statement applied nothing, and runs
			// once more on the catalog read again.
			res, err = s.exec(r.Context(), st)
		}
		if err != nil {
			if len(stmts) > 1 {
				err = wrapStatement(err, i+1, len(stmts))
			}
			return nil, i + 1, err
		}
		if res.Schema == nil {
			res.Schema = []Field{}
		}
		if res.Rows == nil {
			res.Rows = [][]any{}
		}
		res.RowCount = len(res.Rows)
		results = append(results, *res)
	}
	return results, 0, nil
}

// catalogReadAgain reads the catalog again after a statement found a
// table gone, on a backend several servers share, and reports whether it
// could: the statement then runs once more (a background refresh may have
// read the change first, so whether this read changed anything says
// nothing). On an embedded backend, which only this process changes, it
// does nothing and reports false.
func (e *Engine) catalogReadAgain(ctx context.Context) bool {
	if !e.opts.DB.Backend().Capabilities().MultiProcess {
		return false
	}
	_, err := e.opts.DB.Catalog().Refresh(ctx)
	return err == nil
}

// splitCached is split, remembering the statements of requests of up to
// maxCachedText bytes (up to maxCachedParses of them, forgotten all at once
// when full). The statements and their tokens are only ever read.
func (e *Engine) splitCached(text string) ([]statement, error) {
	if len(text) > maxCachedText {
		return split(text)
	}
	if stmts, ok := e.splits.get(text); ok {
		return stmts, nil
	}
	stmts, err := split(text)
	if err != nil {
		return nil, err
	}
	e.splits.put(text, stmts)
	return stmts, nil
}

// wrapStatement names statement i of n in err's message, keeping its
// status and code.
func wrapStatement(err error, i, n int) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return &api.Error{Status: ae.Status, Code: ae.Code, Message: fmt.Sprintf("statement %d of %d: %s", i, n, ae.Message)}
	}
	return fmt.Errorf("statement %d of %d: %w", i, n, err)
}

// decodeParams reads the params of a request: numbers, strings, booleans
// and nulls, for $1, $2, …; integers keep their 64 bits.
func decodeParams(raw json.RawMessage) ([]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var list []any
	if err := d.Decode(&list); err != nil {
		return nil, badRequest(CodeInvalidArgument, `field "params" must be a list of numbers, strings, booleans and nulls`)
	}
	for i, v := range list {
		switch x := v.(type) {
		case json.Number:
			if n, err := x.Int64(); err == nil {
				list[i] = n
			} else if f, err := x.Float64(); err == nil {
				list[i] = f
			} else {
				return nil, badRequest(CodeInvalidArgument, `field "params[%d]" is the number %s, which does not fit a 64-bit float`, i, x)
			}
		case string, bool, nil:
		default:
			return nil, badRequest(CodeInvalidArgument, `field "params[%d]" must be a number, string, boolean or null, not %s`, i, jsonKind(v))
		}
	}
	return list, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

func badRequest(code, format string, args ...any) *api.Error {
	return &api.Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidSQL(pos int, format string, args ...any) *api.Error {
	return badRequest(CodeInvalidSQL, "%s", fmt.Sprintf(format, args...)+fmt.Sprintf(" (at position %d)", pos))
}

func forbidden(p auth.Principal, what string) *api.Error {
	return &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden,
		Message: fmt.Sprintf("user %q has role %q; %s needs the admin role", p.ID, p.Role, what)}
}

// session is the state of one request: the caller, the default namespace
// (changed by USE) and the parameters.
type session struct {
	e      *Engine
	p      auth.Principal
	ns     string
	params []any
}

// exec runs one statement.
func (s *session) exec(ctx context.Context, st statement) (*Result, error) {
	first := st.toks[0]
	word := strings.ToUpper(first.text)
	if first.kind != tokIdent {
		word = ""
	}
	if n := maxParam(st.toks); n > len(s.params) {
		return nil, badRequest(CodeInvalidArgument, "the statement uses $%d but the request has %d params", n, len(s.params))
	}
	switch word {
	case "SELECT", "WITH", "VALUES", "FROM", "TABLE":
		return s.query(ctx, st.text, s.argsFor(st), st.pos)
	case "INSERT":
		return s.insert(ctx, st)
	case "UPDATE":
		return s.update(ctx, st)
	case "DELETE":
		return s.delete(ctx, st)
	case "CREATE", "DROP", "ALTER", "SHOW", "DESCRIBE", "DESC", "USE", "STORAGE", "BACKUP", "RESTORE":
		return s.command(ctx, st)
	}
	if first.punct("(") {
		return s.query(ctx, st.text, s.argsFor(st), st.pos)
	}
	return nil, &api.Error{Status: http.StatusBadRequest, Code: CodeInvalidSQL,
		Message: fmt.Sprintf("statement %q is not known (at position %d); the statements are SELECT, INSERT, UPDATE, DELETE, CREATE/DROP NAMESPACE, CREATE/DROP/ALTER TABLE, SHOW NAMESPACES, SHOW TABLES, DESCRIBE TABLE, USE, STORAGE FLUSH/COMPACT and BACKUP DATABASE",
			truncate(first.text, 40), first.pos)}
}

// argsFor returns the params statement st uses: $1 to the highest it names.
func (s *session) argsFor(st statement) []any {
	return s.params[:maxParam(st.toks)]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
