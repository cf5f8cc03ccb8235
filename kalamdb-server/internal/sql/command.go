package sql

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// parser walks the tokens of one of KalamDB's own statements.
type parser struct {
	toks []token
	i    int
	end  int // position just past the statement, for errors at its end
}

func newParser(st statement) *parser {
	last := st.toks[len(st.toks)-1]
	return &parser{toks: st.toks, end: last.pos + len(last.text)}
}

func (p *parser) done() bool { return p.i >= len(p.toks) }

func (p *parser) peek() token {
	if p.done() {
		return token{kind: tokPunct, text: "", pos: p.end}
	}
	return p.toks[p.i]
}

// accept consumes the keywords kws if they come next, all of them.
func (p *parser) accept(kws ...string) bool {
	for k, kw := range kws {
		if p.i+k >= len(p.toks) || !p.toks[p.i+k].is(kw) {
			return false
		}
	}
	p.i += len(kws)
	return true
}

func (p *parser) acceptPunct(s string) bool {
	if p.peek().punct(s) {
		p.i++
		return true
	}
	return false
}

// near describes the next token for an error.
func (p *parser) near() string {
	if p.done() {
		return "the end of the statement"
	}
	return fmt.Sprintf("%q", truncate(p.peek().text, 40))
}

func (p *parser) errorf(format string, args ...any) error {
	return invalidSQL(p.peek().pos, "%s; found %s", fmt.Sprintf(format, args...), p.near())
}

func (p *parser) expect(kws ...string) error {
	if !p.accept(kws...) {
		return p.errorf("expected %s", strings.Join(kws, " "))
	}
	return nil
}

func (p *parser) expectPunct(s string) error {
	if !p.acceptPunct(s) {
		return p.errorf("expected %q", s)
	}
	return nil
}

// name reads a name: a bare word (lower-cased) or a "quoted" name (as is).
func (p *parser) name(what string) (string, error) {
	t := p.peek()
	switch {
	case t.kind == tokIdent:
		p.i++
		return t.val, nil
	case t.kind == tokQuoted:
		p.i++
		return t.val, nil
	}
	return "", p.errorf("expected %s", what)
}

// tableName reads [ns.]t, with the session's namespace as the default.
func (p *parser) tableName(s *session) (ns, name string, err error) {
	at := p.peek().pos
	first, err := p.name("a table name")
	if err != nil {
		return "", "", err
	}
	if p.acceptPunct(".") {
		name, err := p.name("a table name after the namespace")
		return first, name, err
	}
	if s.ns == "" {
		return "", "", noNamespace(at, first)
	}
	return s.ns, first, nil
}

func noNamespace(pos int, table string) error {
	return &api.Error{Status: http.StatusBadRequest, Code: CodeNoNamespace,
		Message: fmt.Sprintf("table %q has no namespace (at position %d): write ns.%s, run USE ns first or give the request a namespace_id", table, pos, table)}
}

// finish fails unless every token was read.
func (p *parser) finish() error {
	if !p.done() {
		return p.errorf("expected the end of the statement")
	}
	return nil
}

// command runs one of KalamDB's own statements.
func (s *session) command(ctx context.Context, st statement) (*Result, error) {
	p := newParser(st)
	switch {
	case p.accept("CREATE", "NAMESPACE"):
		return s.admin("CREATE NAMESPACE", func() (*Result, error) { return s.createNamespace(ctx, p) })
	case p.accept("DROP", "NAMESPACE"):
		return s.admin("DROP NAMESPACE", func() (*Result, error) { return s.dropNamespace(ctx, p) })
	case p.accept("SHOW", "NAMESPACES"):
		return s.showNamespaces(ctx, p)
	case p.accept("SHOW", "TABLES"):
		return s.showTables(ctx, p)
	case p.accept("USE"):
		return s.use(ctx, p)
	case p.accept("DESCRIBE"), p.accept("DESC"):
		return s.describe(ctx, p)
	case p.accept("CREATE"):
		return s.admin("CREATE TABLE", func() (*Result, error) { return s.createTable(ctx, p) })
	case p.accept("DROP"):
		return s.admin("DROP TABLE", func() (*Result, error) { return s.dropTable(ctx, p) })
	case p.accept("ALTER", "TABLE"):
		return s.admin("ALTER TABLE", func() (*Result, error) { return s.alterTable(ctx, p) })
	case p.accept("STORAGE"):
		return s.admin("STORAGE", func() (*Result, error) { return s.storage(ctx, p) })
	case p.accept("BACKUP"):
		return s.admin("BACKUP DATABASE", func() (*Result, error) { return s.backupDatabase(ctx, p) })
	case p.accept("RESTORE"):
		return s.admin("RESTORE DATABASE", func() (*Result, error) { return s.restoreDatabase(p) })
	}
	return nil, p.errorf("unknown statement")
}

// admin runs f when the caller is an admin.
func (s *session) admin(what string, f func() (*Result, error)) (*Result, error) {
	if !s.p.IsAdmin() {
		return nil, forbidden(s.p, what)
	}
	return f()
}

func message(format string, args ...any) *Result {
	return &Result{Message: fmt.Sprintf(format, args...)}
}

func (s *session) createNamespace(ctx context.Context, p *parser) (*Result, error) {
	ifNot := p.accept("IF", "NOT", "EXISTS")
	name, err := p.name("a namespace name")
	if err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if _, err := s.e.opts.API.CreateNamespace(ctx, name); err != nil {
		if ifNot && errors.Is(err, core.ErrNamespaceExists) {
			return message("Namespace %s already exists", name), nil
		}
		return nil, err
	}
	return message("Namespace %s created", name), nil
}

func (s *session) dropNamespace(ctx context.Context, p *parser) (*Result, error) {
	ifExists := p.accept("IF", "EXISTS")
	name, err := p.name("a namespace name")
	if err != nil {
		return nil, err
	}
	cascade := p.accept("CASCADE")
	if err := p.finish(); err != nil {
		return nil, err
	}
	if cascade {
		ts, err := s.e.opts.DB.Catalog().FreshTables(ctx, name)
		if err != nil && !(ifExists && errors.Is(err, core.ErrNamespaceNotFound)) {
			return nil, err
		}
		for _, t := range ts {
			if err := s.e.opts.API.DropTable(ctx, t.Namespace, t.Name); err != nil && !errors.Is(err, core.ErrTableNotFound) {
				return nil, err
			}
		}
	}
	if err := s.e.opts.API.DropNamespace(ctx, name); err != nil {
		if ifExists && errors.Is(err, core.ErrNamespaceNotFound) {
			return message("Namespace %s does not exist", name), nil
		}
		return nil, err
	}
	if s.ns == name {
		s.ns = ""
	}
	return message("Namespace %s dropped", name), nil
}

func (s *session) showNamespaces(ctx context.Context, p *parser) (*Result, error) {
	if err := p.finish(); err != nil {
		return nil, err
	}
	res := &Result{Schema: fields("name", "Text", "created_at", "Timestamp")}
	nss, err := s.e.opts.DB.Catalog().FreshNamespaces(ctx)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		res.Rows = append(res.Rows, []any{ns.Name, formatTime(ns.CreatedAt)})
	}
	return res, nil
}

func (s *session) showTables(ctx context.Context, p *parser) (*Result, error) {
	nss, err := s.namespaces(ctx, p, "IN", "FROM")
	if err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	res := &Result{Schema: fields("namespace", "Text", "name", "Text", "type", "Text", "created_at", "Timestamp")}
	for _, ns := range nss {
		ts, err := s.e.opts.DB.Catalog().FreshTables(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			res.Rows = append(res.Rows, []any{t.Namespace, t.Name, strings.ToUpper(string(t.Type)), formatTime(t.CreatedAt)})
		}
	}
	return res, nil
}

// namespaces reads an optional "IN ns" (any of the keywords kws) and
// returns that namespace, or every namespace without it.
func (s *session) namespaces(ctx context.Context, p *parser, kws ...string) ([]string, error) {
	for _, kw := range kws {
		if p.accept(kw) {
			name, err := p.name("a namespace name")
			if err != nil {
				return nil, err
			}
			return []string{name}, nil
		}
	}
	all, err := s.e.opts.DB.Catalog().FreshNamespaces(ctx)
	if err != nil {
		return nil, err
	}
	nss := make([]string, len(all))
	for i, ns := range all {
		nss[i] = ns.Name
	}
	return nss, nil
}

func (s *session) use(ctx context.Context, p *parser) (*Result, error) {
	p.accept("NAMESPACE")
	name, err := p.name("a namespace name")
	if err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if _, err := s.e.opts.DB.Catalog().FindNamespace(ctx, name); err != nil {
		return nil, err
	}
	s.ns = name
	return message("Using namespace %s", name), nil
}

func (s *session) describe(ctx context.Context, p *parser) (*Result, error) {
	p.accept("TABLE")
	ns, name, err := p.tableName(s)
	if err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	t, err := s.e.opts.DB.Catalog().FindTable(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	res := &Result{Schema: fields("column_name", "Text", "data_type", "Text", "is_nullable", "Boolean", "is_primary_key", "Boolean", "ordinal_position", "Int")}
	for i, c := range t.Columns {
		res.Rows = append(res.Rows, []any{c.Name, dataType(c.Type), c.Nullable, t.Type != catalog.StreamTable && c.Name == t.PrimaryKey, i + 1})
	}
	n := len(t.Columns)
	res.Rows = append(res.Rows,
		[]any{catalog.ColumnSeq, "BigInt", false, false, n + 1},
		[]any{catalog.ColumnUpdated, "Timestamp", false, false, n + 2})
	return res, nil
}

// sqlTypes are the column types CREATE TABLE and ALTER TABLE accept.
var sqlTypes = map[string]row.Type{
	"int": row.TypeInt32, "integer": row.TypeInt32, "int4": row.TypeInt32,
	"bigint": row.TypeInt64, "int8": row.TypeInt64,
	"double": row.TypeFloat64, "float8": row.TypeFloat64, "float": row.TypeFloat64,
	"boolean": row.TypeBool, "bool": row.TypeBool,
	"text": row.TypeString, "varchar": row.TypeString, "string": row.TypeString,
	"bytes": row.TypeBytes, "blob": row.TypeBytes, "bytea": row.TypeBytes,
	"timestamp": row.TypeTimestamp,
}

// columnDef reads a column's name and type.
func (p *parser) columnDef() (string, row.Type, error) {
	col, err := p.name("a column name")
	if err != nil {
		return "", 0, err
	}
	typ, err := p.columnType(col)
	return col, typ, err
}

// columnType reads a column type, with an ignored length such as VARCHAR(20).
func (p *parser) columnType(col string) (row.Type, error) {
	t := p.peek()
	typ, ok := sqlTypes[t.val]
	if t.kind != tokIdent || !ok {
		return 0, p.errorf("expected the type of column %q: INT, BIGINT, DOUBLE, BOOLEAN, TEXT, BYTES or TIMESTAMP", col)
	}
	p.i++
	if typ == row.TypeFloat64 && t.val == "double" {
		p.accept("PRECISION")
	}
	if p.acceptPunct("(") {
		if p.peek().kind != tokNumber {
			return 0, p.errorf("expected a length")
		}
		p.i++
		if err := p.expectPunct(")"); err != nil {
			return 0, err
		}
	}
	return typ, nil
}

func (s *session) createTable(ctx context.Context, p *parser) (*Result, error) {
	kind := ""
	switch {
	case p.accept("USER"):
		kind = "user"
	case p.accept("SHARED"):
		kind = "shared"
	case p.accept("STREAM"):
		kind = "stream"
	}
	if err := p.expect("TABLE"); err != nil {
		return nil, err
	}
	ifNot := p.accept("IF", "NOT", "EXISTS")
	ns, name, err := p.tableName(s)
	if err != nil {
		return nil, err
	}
	req := api.TableRequest{Name: &name}
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	for {
		if p.accept("PRIMARY", "KEY") {
			if err := p.expectPunct("("); err != nil {
				return nil, err
			}
			col, err := p.name("the primary-key column")
			if err != nil {
				return nil, err
			}
			if req.PrimaryKey != "" && req.PrimaryKey != col {
				return nil, p.errorf("the table already has primary key %q", req.PrimaryKey)
			}
			req.PrimaryKey = col
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
		} else {
			col, typ, err := p.columnDef()
			if err != nil {
				return nil, err
			}
			nullable := true
			for {
				if p.accept("NOT", "NULL") {
					nullable = false
				} else if p.accept("NULL") {
					nullable = true
				} else if p.accept("PRIMARY", "KEY") {
					if req.PrimaryKey != "" {
						return nil, p.errorf("the table already has primary key %q", req.PrimaryKey)
					}
					req.PrimaryKey, nullable = col, false
				} else {
					break
				}
			}
			req.Columns = append(req.Columns, api.ColumnRequest{Name: col, Type: typ.String(), Nullable: nullable})
		}
		if p.acceptPunct(")") {
			break
		}
		if err := p.expectPunct(","); err != nil {
			return nil, err
		}
	}
	if p.accept("WITH") {
		if err := p.tableOptions(&req, &kind); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if kind == "" {
		kind = "user"
	}
	for i, c := range req.Columns {
		if c.Name == req.PrimaryKey {
			req.Columns[i].Nullable = false
		}
	}
	req.Type = &kind
	def, err := s.e.opts.API.TableDefinition(ns, &req)
	if err != nil {
		return nil, err
	}
	t, err := s.e.opts.API.CreateTable(ctx, def)
	if err != nil {
		if ifNot && errors.Is(err, core.ErrTableExists) {
			return message("Table %s.%s already exists", ns, name), nil
		}
		return nil, err
	}
	return message("Table %s created", t.FullName()), nil
}

// tableOptions reads WITH (KEY = value, …).
func (p *parser) tableOptions(req *api.TableRequest, kind *string) error {
	if err := p.expectPunct("("); err != nil {
		return err
	}
	for {
		key, err := p.name("an option name")
		if err != nil {
			return err
		}
		if err := p.expectPunct("="); err != nil {
			return err
		}
		v := p.peek()
		if v.kind != tokString && v.kind != tokNumber && v.kind != tokIdent {
			return p.errorf("expected the value of option %s", strings.ToUpper(key))
		}
		p.i++
		val := v.val
		if v.kind == tokNumber {
			val = v.text
		}
		bad := func(want string) error {
			return invalidSQL(v.pos, "option %s is %s; it must be %s", strings.ToUpper(key), v.text, want)
		}
		switch key {
		case "type":
			t := strings.ToLower(val)
			if t != "user" && t != "shared" && t != "stream" {
				return bad("'USER', 'SHARED' or 'STREAM'")
			}
			if *kind != "" && *kind != t {
				return bad(fmt.Sprintf("the %s the statement names", strings.ToUpper(*kind)))
			}
			*kind = t
		case "flush_policy":
			f, err := parseFlushPolicy(val)
			if err != nil {
				return bad("'rows:N', 'interval:S' or 'rows:N,interval:S'")
			}
			req.Flush = f
		case "ttl_seconds", "max_buffer_rows", "max_buffer_bytes":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return bad("an integer")
			}
			switch key {
			case "ttl_seconds":
				req.TTLSeconds = &n
			case "max_buffer_rows":
				req.MaxBufferRows = &n
			default:
				req.MaxBufferBytes = &n
			}
		default:
			return invalidSQL(v.pos, "unknown table option %s; the options are TYPE, FLUSH_POLICY, TTL_SECONDS, MAX_BUFFER_ROWS and MAX_BUFFER_BYTES", strings.ToUpper(key))
		}
		if p.acceptPunct(")") {
			return nil
		}
		if err := p.expectPunct(","); err != nil {
			return err
		}
	}
}

// parseFlushPolicy reads 'rows:N,interval:S' (either part alone too).
func parseFlushPolicy(s string) (*api.FlushRequest, error) {
	f := &api.FlushRequest{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, errors.New("no colon")
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "rows":
			f.Rows = &n
		case "interval":
			f.IntervalSeconds = &n
		default:
			return nil, errors.New("unknown part")
		}
	}
	return f, nil
}

func (s *session) dropTable(ctx context.Context, p *parser) (*Result, error) {
	if !p.accept("USER") && !p.accept("SHARED") {
		p.accept("STREAM")
	}
	if err := p.expect("TABLE"); err != nil {
		return nil, err
	}
	ifExists := p.accept("IF", "EXISTS")
	ns, name, err := p.tableName(s)
	if err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if err := s.e.opts.API.DropTable(ctx, ns, name); err != nil {
		if ifExists && (errors.Is(err, core.ErrTableNotFound) || errors.Is(err, core.ErrNamespaceNotFound)) {
			return message("Table %s.%s does not exist", ns, name), nil
		}
		return nil, err
	}
	return message("Table %s.%s dropped", ns, name), nil
}

func (s *session) alterTable(ctx context.Context, p *parser) (*Result, error) {
	ns, name, err := p.tableName(s)
	if err != nil {
		return nil, err
	}
	if err := p.expect("ADD"); err != nil {
		return nil, err
	}
	p.accept("COLUMN")
	col, typ, err := p.columnDef()
	if err != nil {
		return nil, err
	}
	if p.peek().is("NOT") {
		return nil, p.errorf("a column added to a table must take nulls: the rows already there have no value for %q", col)
	}
	p.accept("NULL")
	if err := p.finish(); err != nil {
		return nil, err
	}
	t, err := s.e.opts.API.AddColumn(ctx, ns, name, api.ColumnRequest{Name: col, Type: typ.String(), Nullable: true})
	if err != nil {
		return nil, err
	}
	return message("Column %s added to %s", col, t.FullName()), nil
}

func (s *session) storage(ctx context.Context, p *parser) (*Result, error) {
	compact := false
	switch {
	case p.accept("FLUSH"):
	case p.accept("COMPACT"):
		compact = true
	default:
		return nil, p.errorf("expected FLUSH or COMPACT")
	}
	var targets []*catalog.Table
	if p.accept("ALL") {
		nss, err := s.namespaces(ctx, p, "IN")
		if err != nil {
			return nil, err
		}
		for _, ns := range nss {
			ts, err := s.e.opts.DB.Catalog().FreshTables(ctx, ns)
			if err != nil {
				return nil, err
			}
			for _, t := range ts {
				if t.Type != catalog.StreamTable {
					targets = append(targets, t)
				}
			}
		}
	} else {
		if err := p.expect("TABLE"); err != nil {
			return nil, err
		}
		ns, name, err := p.tableName(s)
		if err != nil {
			return nil, err
		}
		targets = []*catalog.Table{{Namespace: ns, Name: name}}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	res := &Result{}
	if compact {
		res.Schema = fields("table", "Text", "segments_merged", "Int", "segments_written", "Int", "rows", "BigInt")
	} else {
		res.Schema = fields("table", "Text", "rows_flushed", "BigInt", "files", "Int")
	}
	for _, t := range targets {
		full := t.Namespace + "." + t.Name
		if compact {
			r, err := s.e.opts.API.CompactTable(ctx, t.Namespace, t.Name)
			if err != nil {
				return nil, err
			}
			res.Rows = append(res.Rows, []any{full, r.Merged, r.Written, r.Rows})
		} else {
			r, err := s.e.opts.API.FlushTable(ctx, t.Namespace, t.Name)
			if err != nil {
				return nil, err
			}
			res.Rows = append(res.Rows, []any{full, r.Rows, len(r.Files)})
		}
	}
	verb := "Flushed"
	if compact {
		verb = "Compacted"
	}
	res.Message = fmt.Sprintf("%s %d table(s)", verb, len(targets))
	return res, nil
}

// location reads the quoted string literal that names a backup's location
// after the keyword kw (TO or FROM).
func (p *parser) location(kw, what string) (string, error) {
	if err := p.expect("DATABASE"); err != nil {
		return "", err
	}
	if err := p.expect(kw); err != nil {
		return "", err
	}
	t := p.peek()
	if t.kind != tokString {
		return "", p.errorf("expected %s as a quoted string such as '/backups/monday', '/backups/monday.tar.gz' or 's3://bucket?prefix=monday/'", what)
	}
	if t.val == "" {
		return "", invalidSQL(t.pos, "%s is empty: give a directory, a .tar.gz file or an object-store URL", what)
	}
	p.i++
	return t.val, p.finish()
}

// backupDatabase runs BACKUP DATABASE TO 'dest': the online backup of
// POST /v1/admin/backup, answered with its totals.
func (s *session) backupDatabase(ctx context.Context, p *parser) (*Result, error) {
	dest, err := p.location("TO", "the backup's destination")
	if err != nil {
		return nil, err
	}
	idx, err := s.e.opts.API.Backup(ctx, dest)
	if err != nil {
		return nil, err
	}
	keys, bytes := idx.Totals()
	res := &Result{Schema: fields("to", "Text", "partitions", "Int", "keys", "BigInt", "segments", "Int", "bytes", "BigInt",
		"tables", "Int", "created", "Timestamp", "consistency", "Text")}
	res.Rows = [][]any{{dest, len(idx.Partitions), keys, len(idx.Segments), bytes, len(idx.Tables), formatTime(idx.Created), idx.Consistency}}
	res.Message = fmt.Sprintf("Backed up %d partition(s), %d key(s), %d segment(s) to '%s'", len(idx.Partitions), keys, len(idx.Segments), dest)
	return res, nil
}

// restoreDatabase refuses RESTORE DATABASE FROM 'src': a running server
// cannot replace the database under its open catalog, table caches and
// _seq allocators, so the restore is the command line's, on a stopped
// server.
func (s *session) restoreDatabase(p *parser) (*Result, error) {
	src, err := p.location("FROM", "the backup to restore")
	if err != nil {
		return nil, err
	}
	return nil, badRequest(CodeUnsupported,
		"RESTORE DATABASE cannot run on a running server: the restore replaces the whole database under the server's open catalog, caches and _seq allocators; stop the server and run `kalamdb-server restore --config C --from %s`, C being its configuration file (add --force to replace a database that holds data)",
		shellQuote(src))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-:+=@,%", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fields builds a schema from name, type pairs.
func fields(nameType ...string) []Field {
	out := make([]Field, 0, len(nameType)/2)
	for i := 0; i+1 < len(nameType); i += 2 {
		out = append(out, Field{Name: nameType[i], DataType: nameType[i+1], Index: i / 2})
	}
	return out
}

// dataType is the name results give a column type.
func dataType(t row.Type) string {
	switch t {
	case row.TypeInt32:
		return "Int"
	case row.TypeInt64:
		return "BigInt"
	case row.TypeFloat64:
		return "Double"
	case row.TypeBool:
		return "Boolean"
	case row.TypeString:
		return "Text"
	case row.TypeBytes:
		return "Bytes"
	case row.TypeTimestamp:
		return "Timestamp"
	}
	return t.String()
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
