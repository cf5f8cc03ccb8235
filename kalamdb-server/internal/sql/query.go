package sql

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/duckdb/duckdb-go/v2"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// tableRef is a table a query reads, as the engine's parser found it.
type tableRef struct {
	ns, name string
	pos      int
}

// parsed is what the statement layer learns from the engine's parse tree.
type parsed struct {
	refs        []tableRef
	ctes        map[string]bool
	currentUser bool
	maxParam    int            // the highest parameter the query uses
	root        map[string]any // the statement's node
}

// parse parses query text with the engine's parser and collects the tables
// it reads. Only a single query is accepted; a table function (read_csv,
// query, …) is refused, so a query reads nothing but the tables given to
// it. offset is the position of text in the request, or -1 when text was
// built by the statement layer.
func (s *session) parse(ctx context.Context, conn *sql.Conn, text string, offset int) (*parsed, error) {
	var out string
	if err := conn.QueryRowContext(ctx, "SELECT json_serialize_sql($1::VARCHAR)::VARCHAR", text).Scan(&out); err != nil {
		return nil, err
	}
	d := json.NewDecoder(strings.NewReader(out))
	d.UseNumber()
	var tree map[string]any
	if err := d.Decode(&tree); err != nil {
		return nil, fmt.Errorf("sql: reading the parse tree: %w", err)
	}
	if tree["error"] == true {
		msg, _ := tree["error_message"].(string)
		if strings.Contains(msg, "Only SELECT statements") {
			return nil, badRequest(CodeUnsupported, "only queries (SELECT, WITH, VALUES) run on the query engine; the statement is not one")
		}
		pos, err := strconv.Atoi(fmt.Sprint(tree["position"]))
		if err != nil || offset < 0 {
			return nil, badRequest(CodeInvalidSQL, "%s", msg)
		}
		return nil, invalidSQL(offset+pos, "%s", msg)
	}
	stmts, _ := tree["statements"].([]any)
	if len(stmts) != 1 {
		return nil, badRequest(CodeInvalidSQL, "expected one query, found %d", len(stmts))
	}
	root, _ := stmts[0].(map[string]any)
	node, _ := root["node"].(map[string]any)
	p := &parsed{ctes: map[string]bool{}, root: node}
	if err := p.walk(node, offset); err != nil {
		return nil, err
	}
	return p, nil
}

// walk collects the tables, common table expressions and calls of
// CURRENT_USER below v.
func (p *parsed) walk(v any, offset int) error {
	switch x := v.(type) {
	case map[string]any:
		switch x["type"] {
		case "BASE_TABLE":
			if c, _ := x["catalog_name"].(string); c != "" {
				return badRequest(CodeInvalidSQL, "table names have at most two parts, namespace.table; %s.%v.%v has three", c, x["schema_name"], x["table_name"])
			}
			ns, _ := x["schema_name"].(string)
			name, _ := x["table_name"].(string)
			// Such a name could only be a file the engine would read.
			if strings.ContainsAny(ns+name, "./\\:") {
				return badRequest(CodeInvalidSQL, "%q is not a table name: names of namespaces and tables have no '.', '/', '\\' or ':'", strings.TrimPrefix(ns+"."+name, "."))
			}
			pos, _ := strconv.Atoi(fmt.Sprint(x["query_location"]))
			if offset >= 0 {
				pos += offset
			} else {
				pos = -1
			}
			p.refs = append(p.refs, tableRef{ns: ns, name: name, pos: pos})
		case "TABLE_FUNCTION":
			fn := ""
			if f, ok := x["function"].(map[string]any); ok {
				fn, _ = f["function_name"].(string)
			}
			if generators[strings.ToLower(fn)] {
				break
			}
			return badRequest(CodeUnsupported, "table function %s is not available: queries read KalamDB tables only", fn)
		}
		if x["class"] == "PARAMETER" {
			id, _ := x["identifier"].(string)
			if n, err := strconv.Atoi(id); err != nil || n < 1 {
				return badRequest(CodeInvalidSQL, "parameter %q is not supported: number parameters $1, $2, … in the order of params", id)
			} else if n > p.maxParam {
				p.maxParam = n
			}
		}
		if x["class"] == "FUNCTION" {
			if fn, _ := x["function_name"].(string); strings.EqualFold(fn, "current_user") {
				p.currentUser = true
			}
		}
		if m, ok := x["cte_map"].(map[string]any); ok {
			if list, ok := m["map"].([]any); ok {
				for _, e := range list {
					if kv, ok := e.(map[string]any); ok {
						if k, ok := kv["key"].(string); ok {
							p.ctes[strings.ToLower(k)] = true
						}
					}
				}
			}
		}
		for _, c := range x {
			if err := p.walk(c, offset); err != nil {
				return err
			}
		}
	case []any:
		for _, c := range x {
			if err := p.walk(c, offset); err != nil {
				return err
			}
		}
	}
	return nil
}

// generators are the table functions a query may call: they make rows
// from their arguments and read nothing.
var generators = map[string]bool{"range": true, "generate_series": true, "unnest": true}

// source is a table a query reads, resolved in the catalog.
type source struct {
	t   *catalog.Table
	pos int
}

// resolve looks up the tables a query reads.
func (s *session) resolve(ctx context.Context, p *parsed) ([]source, error) {
	var out []source
	seen := map[string]bool{}
	for _, r := range p.refs {
		ns := r.ns
		if ns == "" {
			if p.ctes[strings.ToLower(r.name)] {
				continue
			}
			if s.ns == "" {
				return nil, noNamespace(r.pos, r.name)
			}
			ns = s.ns
		}
		t, err := s.e.opts.DB.Catalog().FindTable(ctx, ns, r.name)
		if errors.Is(err, core.ErrTableNotFound) && r.name != strings.ToLower(r.name) {
			t, err = s.e.opts.DB.Catalog().FindTable(ctx, ns, strings.ToLower(r.name))
		}
		if err != nil {
			if r.pos >= 0 {
				return nil, fmt.Errorf("%w (at position %d)", err, r.pos)
			}
			return nil, err
		}
		if !seen[t.FullName()] {
			seen[t.FullName()] = true
			out = append(out, source{t: t, pos: r.pos})
		}
	}
	return out, nil
}

// query runs a query on the engine over what the caller may see of the
// tables it reads. offset is as for parse.
func (s *session) query(ctx context.Context, text string, args []any, offset int) (*Result, error) {
	p, err := s.e.parseCached(ctx, s, text, offset)
	if err != nil {
		return nil, err
	}
	if p.maxParam > len(args) {
		return nil, badRequest(CodeInvalidArgument, "the statement uses parameter $%d but %d params go with it", p.maxParam, len(args))
	}
	srcs, err := s.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	if res, ok, err := s.pointSelect(ctx, p, srcs, args); ok || err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.e.opts.QueryTimeout)
	defer cancel()
	res, err := s.run(ctx, p, srcs, text, args, offset)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return nil, &api.Error{Status: http.StatusRequestTimeout, Code: api.CodeRequestTimeout,
			Message: fmt.Sprintf("the statement ran longer than %s and was stopped", s.e.opts.QueryTimeout)}
	}
	return res, err
}

// run runs query p, which reads srcs, on the engine, within ctx's bound.
func (s *session) run(ctx context.Context, p *parsed, srcs []source, text string, args []any, offset int) (*Result, error) {
	conn, err := s.e.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if len(srcs) > 0 || p.currentUser {
		cleanup, err := s.materialize(ctx, conn, p, srcs, args)
		if cleanup != nil {
			defer cleanup()
		}
		if err != nil {
			return nil, err
		}
	}
	rows, err := conn.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, engineError(err, offset)
	}
	defer rows.Close()
	return s.collect(rows, offset)
}

// parseCached is parse, remembering the parse trees of the last queries:
// a query sent again with other params is not parsed again.
func (e *Engine) parseCached(ctx context.Context, s *session, text string, offset int) (*parsed, error) {
	key := strconv.Itoa(offset) + ":" + text
	if p, ok := e.parses.get(key); ok {
		return p, nil
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	p, err := s.parse(ctx, conn, text, offset)
	if err != nil {
		return nil, err
	}
	if len(text) <= maxCachedText {
		e.parses.put(key, p)
	}
	return p, nil
}

// The caches of parse trees and of statements hold up to maxCachedParses
// texts of up to maxCachedText bytes each; they are emptied when full.
const (
	maxCachedParses = 1024
	maxCachedText   = 4096
)

// textCache remembers values by the text they were made from, up to
// maxCachedParses of them. It is safe for concurrent use; the values are
// shared and must only be read.
type textCache[V any] struct {
	sync.Mutex
	m map[string]V
}

func (c *textCache[V]) get(key string) (V, bool) {
	c.Lock()
	defer c.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *textCache[V]) put(key string, v V) {
	c.Lock()
	defer c.Unlock()
	if c.m == nil || len(c.m) >= maxCachedParses {
		c.m = make(map[string]V)
	}
	c.m[key] = v
}

// collect reads a result.
func (s *session) collect(rows *sql.Rows, offset int) (*Result, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, engineError(err, offset)
	}
	res := &Result{Schema: make([]Field, len(types)), Rows: [][]any{}}
	for i, t := range types {
		res.Schema[i] = Field{Name: t.Name(), DataType: engineType(t.DatabaseTypeName()), Index: i}
	}
	for rows.Next() {
		if len(res.Rows) >= s.e.opts.MaxResultRows {
			return nil, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: CodeResultTooLarge,
				Message: fmt.Sprintf("the result has more than %d rows; add a LIMIT", s.e.opts.MaxResultRows)}
		}
		vals := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, engineError(err, offset)
		}
		for i, v := range vals {
			vals[i] = jsonValue(v)
		}
		res.Rows = append(res.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, engineError(err, offset)
	}
	return res, nil
}

// materialize creates the query's private catalog on conn, holding what
// the caller may read of srcs, and makes it the connection's default. The
// cleanup it returns drops the catalog and releases the segments the
// query reads.
func (s *session) materialize(ctx context.Context, conn *sql.Conn, p *parsed, srcs []source, args []any) (func(), error) {
	scope := "kq" + strconv.FormatUint(s.e.scope.Add(1), 10)
	def := "main"
	if s.ns != "" {
		def = s.ns
	}
	// Statements that need nothing in between go to the engine together.
	ddl := []string{"ATTACH ':memory:' AS " + scope}
	schemas := map[string]bool{"main": true}
	for _, ns := range append([]string{def}, namespacesOf(srcs)...) {
		if !schemas[ns] {
			schemas[ns] = true
			ddl = append(ddl, "CREATE SCHEMA "+scope+"."+quote(ns))
		}
	}
	if _, err := conn.ExecContext(ctx, strings.Join(ddl, "; ")); err != nil {
		return nil, err
	}
	var releases []func()
	cleanup := func() {
		for _, release := range releases {
			release()
		}
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "USE memory.main; DETACH "+scope); err != nil {
			s.e.log.Warn("sql: dropping a query's tables", "err", err)
		}
	}
	var bounds *keyBounds
	if len(srcs) == 1 {
		bounds = pushdown(p, srcs[0].t, args)
	}
	ddl = ddl[:0]
	for i, src := range srcs {
		var b *keyBounds
		if len(srcs) == 1 {
			b = bounds
		}
		if s.e.segments == nil || src.t.Type == catalog.StreamTable || b != nil && b.point {
			if err := s.load(ctx, conn, scope, src.t, b); err != nil {
				return cleanup, err
			}
			continue
		}
		view, release, err := s.loadSegments(ctx, conn, scope, src.t, b, i)
		if err != nil {
			return cleanup, err
		}
		releases = append(releases, release)
		ddl = append(ddl, view)
	}
	ddl = append(ddl, "USE "+scope+"."+quote(def))
	if p.currentUser {
		ddl = append(ddl, "CREATE MACRO "+scope+"."+quote(def)+".current_user() AS "+quoteString(s.p.ID))
	}
	if _, err := conn.ExecContext(ctx, strings.Join(ddl, "; ")); err != nil {
		return cleanup, err
	}
	return cleanup, nil
}

func namespacesOf(srcs []source) []string {
	out := make([]string, len(srcs))
	for i, s := range srcs {
		out[i] = s.t.Namespace
	}
	return out
}

// engineTypes are the engine's types of the column types.
var engineTypes = map[row.Type]string{
	row.TypeInt32: "INTEGER", row.TypeInt64: "BIGINT", row.TypeFloat64: "DOUBLE", row.TypeBool: "BOOLEAN",
	row.TypeString: "VARCHAR", row.TypeBytes: "BLOB", row.TypeTimestamp: "TIMESTAMP",
}

// load copies what the caller may read of t, within b, into the scope.
func (s *session) load(ctx context.Context, conn *sql.Conn, scope string, t *catalog.Table, b *keyBounds) error {
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE TABLE %s.%s.%s (", scope, quote(t.Namespace), quote(t.Name))
	for _, c := range t.Columns {
		fmt.Fprintf(&ddl, "%s %s, ", quote(c.Name), engineTypes[c.Type])
	}
	fmt.Fprintf(&ddl, "%s BIGINT, %s TIMESTAMP)", quote(catalog.ColumnSeq), quote(catalog.ColumnUpdated))
	if _, err := conn.ExecContext(ctx, ddl.String()); err != nil {
		return err
	}
	return conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppender(dc.(driver.Conn), scope, t.Namespace, t.Name)
		if err != nil {
			return err
		}
		n := len(t.Columns)
		vals := make([]driver.Value, n+2)
		add := func(r *row.Row) error {
			for i := 0; i < n; i++ {
				var v row.Value
				if i < len(r.Values) {
					v = r.Values[i]
				}
				vals[i] = engineValue(v)
			}
			vals[n], vals[n+1] = r.Seq, r.UpdatedTime()
			return app.AppendRow(vals...)
		}
		err = s.scan(ctx, t, b, add)
		return errors.Join(err, app.Close())
	})
}

// scan calls add with every row of t within b that the caller may read, up
// to the result bound.
func (s *session) scan(ctx context.Context, t *catalog.Table, b *keyBounds, add func(*row.Row) error) error {
	read := 0
	count := func() error {
		read++
		if read > s.e.opts.MaxResultRows {
			return &api.Error{Status: http.StatusRequestEntityTooLarge, Code: CodeResultTooLarge,
				Message: fmt.Sprintf("the statement reads more than %d rows of %s; narrow it with a condition on the primary key %q", s.e.opts.MaxResultRows, t.FullName(), t.PrimaryKey)}
		}
		return nil
	}
	if t.Type == catalog.StreamTable {
		st, err := s.e.opts.DB.Stream(ctx, t.Namespace, t.Name)
		if err != nil {
			return err
		}
		s.e.opts.API.StartEviction(st)
		var after int64
		for {
			page, err := st.Read(ctx, tables.StreamReadOptions{After: after, Limit: tables.MaxLimit})
			if err != nil {
				return err
			}
			for i := range page.Events {
				if err := count(); err != nil {
					return err
				}
				if err := add(&page.Events[i]); err != nil {
					return err
				}
			}
			if !page.More {
				return nil
			}
			after = page.Next
		}
	}
	rs, err := s.e.opts.DB.RowStore(ctx, t.Namespace, t.Name, s.p.ID)
	if err != nil {
		return err
	}
	if b != nil && b.point {
		r, err := rs.Get(ctx, b.lo)
		if errors.Is(err, core.ErrRowNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return add(&r)
	}
	opts := tables.ScanOptions{Limit: tables.MaxLimit}
	if b != nil && !b.lo.IsNull() {
		if b.loOpen {
			opts.After = b.lo
		} else {
			opts.Start = b.lo
		}
	}
	for {
		page, err := rs.Scan(ctx, opts)
		if err != nil {
			return err
		}
		for i := range page.Rows {
			r := &page.Rows[i]
			if b != nil && b.beyond(r.Values[t.PrimaryKeyIndex()]) {
				return nil
			}
			if err := count(); err != nil {
				return err
			}
			if err := add(r); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
		opts.Start, opts.After = row.Value{}, page.Next
	}
}

// engineValue is v as the engine's appender takes it.
func engineValue(v row.Value) driver.Value {
	switch v.Type() {
	case row.TypeInt32:
		return v.Int32()
	case row.TypeInt64:
		return v.Int64()
	case row.TypeFloat64:
		return v.Float64()
	case row.TypeBool:
		return v.Bool()
	case row.TypeString:
		return v.Str()
	case row.TypeBytes:
		return bytes.Clone(v.Bytes())
	case row.TypeTimestamp:
		return v.Timestamp().UTC()
	}
	return nil
}

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
