package sql

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/big"
	"strings"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// INSERT, UPDATE and DELETE are split by the statement layer into the
// table they change and the expressions they evaluate; the engine
// evaluates the expressions (as a query over what the caller may see) and
// the table layer writes the rows, so that a write follows the same rules
// as the REST API's.

// textOf returns the source text of tokens toks[from:to] of st.
func textOf(st statement, from, to int) string {
	if from >= to {
		return ""
	}
	first, last := st.toks[from], st.toks[to-1]
	return st.text[first.pos-st.pos : last.pos-st.pos+len(last.text)]
}

// column returns column name of t, or an error naming it.
func column(t *catalog.Table, name string, pos int) (catalog.Column, error) {
	i, ok := t.ColumnIndex(name)
	if !ok {
		if strings.HasPrefix(name, "_") {
			return catalog.Column{}, badRequest(CodeUnknownColumn, "column %q of %s is a system column (or reserved name) and cannot be written (at position %d)", name, t.FullName(), pos)
		}
		return catalog.Column{}, badRequest(CodeUnknownColumn, "%s has no column %q (at position %d)", t.FullName(), name, pos)
	}
	return t.Columns[i], nil
}

// column reads the name of a column of t that a statement writes.
func (p *parser) column(t *catalog.Table) (catalog.Column, error) {
	at := p.peek().pos
	n, err := p.name("a column name")
	if err != nil {
		return catalog.Column{}, err
	}
	return column(t, n, at)
}

// cast is expression text cast to column c's engine type.
func cast(expr string, c catalog.Column) string {
	return "CAST((" + expr + ") AS " + engineTypes[c.Type] + ")"
}

func (s *session) insert(ctx context.Context, st statement) (*Result, error) {
	p := newParser(st)
	if err := p.expect("INSERT", "INTO"); err != nil {
		return nil, err
	}
	ns, name, err := p.tableName(s)
	if err != nil {
		return nil, err
	}
	t, err := s.e.opts.DB.Catalog().FindTable(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	var cols []catalog.Column
	if p.acceptPunct("(") {
		seen := map[string]bool{}
		for {
			at := p.peek().pos
			c, err := p.column(t)
			if err != nil {
				return nil, err
			}
			n := c.Name
			if seen[n] {
				return nil, invalidSQL(at, "column %q is named twice", n)
			}
			seen[n] = true
			cols = append(cols, c)
			if p.acceptPunct(")") {
				break
			}
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
		}
	} else {
		cols = t.Columns
	}
	from := p.i
	var source string
	switch {
	case p.peek().is("VALUES"):
		source = "(" + textOf(st, from, len(st.toks)) + ")"
	case p.peek().is("SELECT") || p.peek().is("WITH"):
		source = "(" + textOf(st, from, len(st.toks)) + ")"
	default:
		return nil, p.errorf("expected VALUES or SELECT")
	}
	if p.peek().is("VALUES") {
		if rows, ok := constantRows(st.toks[from+1:], s.params, len(cols)); ok {
			if maps, ok := exactRows(cols, rows); ok {
				n, err := s.e.opts.API.InsertRows(ctx, t.Namespace, t.Name, s.p, maps)
				if err != nil {
					return nil, err
				}
				return message("Inserted %d row(s)", n), nil
			}
		}
	}
	var q strings.Builder
	q.WriteString("SELECT ")
	for i, c := range cols {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(cast(fmt.Sprintf("v.c%d", i), c))
	}
	// v.* too, to count the columns the source gives.
	q.WriteString(", v.* FROM " + source + " AS v(")
	for i := range cols {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "c%d", i)
	}
	q.WriteString(")")
	res, err := s.query(ctx, q.String(), s.argsFor(st), -1)
	if err != nil {
		return nil, err
	}
	if got := len(res.Schema) - len(cols); got != len(cols) {
		return nil, badRequest(CodeInvalidArgument, "INSERT INTO %s names %d columns but its rows have %d values", t.FullName(), len(cols), got)
	}
	if len(res.Rows) == 0 {
		return message("Inserted 0 row(s)"), nil
	}
	maps := make([]map[string]any, len(res.Rows))
	for i, r := range res.Rows {
		m := make(map[string]any, len(cols))
		for j, c := range cols {
			m[c.Name] = r[j]
		}
		maps[i] = m
	}
	n, err := s.e.opts.API.InsertRows(ctx, t.Namespace, t.Name, s.p, maps)
	if err != nil {
		return nil, err
	}
	return message("Inserted %d row(s)", n), nil
}

// exactRows returns rows as maps of cols when every value already has its
// column's type.
func exactRows(cols []catalog.Column, rows [][]any) ([]map[string]any, bool) {
	maps := make([]map[string]any, len(rows))
	for i, r := range rows {
		m := make(map[string]any, len(cols))
		for j, c := range cols {
			if !exactValue(c.Type, r[j]) {
				return nil, false
			}
			m[c.Name] = r[j]
		}
		maps[i] = m
	}
	return maps, true
}

// target reads the keywords kws and the table an UPDATE or DELETE
// changes, and returns the parser after them and the table's store for the
// caller; verb names the change in the error for a stream table.
func (s *session) target(ctx context.Context, st statement, verb string, kws ...string) (*parser, *tables.RowStore, error) {
	p := newParser(st)
	if err := p.expect(kws...); err != nil {
		return nil, nil, err
	}
	ns, name, err := p.tableName(s)
	if err != nil {
		return nil, nil, err
	}
	rs, err := s.e.opts.DB.RowStore(ctx, ns, name, s.p.ID)
	if errors.Is(err, core.ErrWrongTableType) {
		return nil, nil, fmt.Errorf("%w: %s.%s is a stream table: its events cannot be %s", core.ErrWrongTableType, ns, name, verb)
	}
	return p, rs, err
}

// keyOf returns the primary key of t that a query selected as v.
func keyOf(t *catalog.Table, v any) (row.Value, error) {
	c := t.PrimaryKeyColumn()
	pk, err := row.FromAny(c.Type, fromResult(v))
	if err != nil {
		return row.Value{}, core.InvalidRow(c.Name, "%v", err)
	}
	return pk, nil
}

// whereClause reads an optional WHERE to the end of the statement and
// returns its text.
func whereClause(p *parser, st statement) (string, error) {
	if p.done() {
		return "", nil
	}
	if !p.accept("WHERE") {
		return "", p.errorf("expected WHERE or the end of the statement")
	}
	if p.done() {
		return "", p.errorf("expected a condition after WHERE")
	}
	return " WHERE " + textOf(st, p.i, len(st.toks)), nil
}

func (s *session) update(ctx context.Context, st statement) (*Result, error) {
	p, rs, err := s.target(ctx, st, "updated", "UPDATE")
	if err != nil {
		return nil, err
	}
	t := rs.Table()
	if err := p.expect("SET"); err != nil {
		return nil, err
	}
	var cols []catalog.Column
	var exprs []string
	for {
		at := p.peek().pos
		c, err := p.column(t)
		if err != nil {
			return nil, err
		}
		n := c.Name
		if c.Name == t.PrimaryKey {
			return nil, badRequest(CodeInvalidArgument, "column %q is the primary key of %s and cannot be updated (at position %d)", n, t.FullName(), at)
		}
		if err := p.expectPunct("="); err != nil {
			return nil, err
		}
		start, depth := p.i, 0
		for ; !p.done(); p.i++ {
			tk := p.peek()
			if tk.punct("(") {
				depth++
			} else if tk.punct(")") {
				depth--
			} else if depth == 0 && (tk.punct(",") || tk.is("WHERE")) {
				break
			}
		}
		if p.i == start {
			return nil, p.errorf("expected a value for column %q", n)
		}
		cols = append(cols, c)
		exprs = append(exprs, textOf(st, start, p.i))
		if !p.acceptPunct(",") {
			break
		}
	}
	where, err := whereClause(p, st)
	if err != nil {
		return nil, err
	}
	defer s.e.dmlLock(t, rs.User())()
	var q strings.Builder
	q.WriteString("SELECT " + quote(t.PrimaryKey) + ", " + quote(catalog.ColumnSeq))
	for i, c := range cols {
		q.WriteString(", " + cast(exprs[i], c))
	}
	q.WriteString(" FROM " + quote(t.Namespace) + "." + quote(t.Name) + where)
	n, err := untilUnchanged(func() (int, error) {
		res, err := s.query(ctx, q.String(), s.argsFor(st), -1)
		if err != nil {
			return 0, err
		}
		// Every new value is checked before any row changes, and the rows
		// change in one batch of the storage backend: all or none, and
		// only if each still holds the version its new values were
		// computed from.
		ups := make([]tables.RowUpdate, len(res.Rows))
		for i, r := range res.Rows {
			if ups[i].PK, err = keyOf(t, r[0]); err != nil {
				return 0, err
			}
			if ups[i].Seq, err = seqOf(r[1]); err != nil {
				return 0, err
			}
			m := make(map[string]any, len(cols))
			for j, c := range cols {
				m[c.Name] = fromResult(r[j+2])
			}
			set, err := t.PatchFromMap(m)
			if err != nil {
				return 0, err
			}
			if err := t.ValidatePatch(set); err != nil {
				return 0, err
			}
			ups[i].Set = set
		}
		return rs.UpdateMany(ctx, ups)
	})
	if err != nil {
		return nil, err
	}
	return message("Updated %d row(s)", n), nil
}

// untilUnchanged runs an UPDATE or DELETE (evaluate, then write) again
// while its write finds that another request changed a row it chose
// (tables.ErrRowChanged), at most maxStatementRetries times in all.
func untilUnchanged(run func() (int, error)) (int, error) {
	for attempt := 1; ; attempt++ {
		n, err := run()
		if !errors.Is(err, tables.ErrRowChanged) || attempt >= maxStatementRetries {
			return n, err
		}
	}
}

// dmlLock takes the lock of the UPDATE and DELETE statements of user's
// rows of t (Engine.dml) and returns its release.
func (e *Engine) dmlLock(t *catalog.Table, user string) (unlock func()) {
	var h maphash.Hash
	h.SetSeed(e.dmlSeed)
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], t.ID)
	_, _ = h.Write(id[:])
	_, _ = h.WriteString(user)
	mu := &e.dml[h.Sum64()%uint64(len(e.dml))]
	mu.Lock()
	return mu.Unlock
}

// maxStatementRetries is how many times an UPDATE or DELETE is evaluated
// again when other requests (REST writes, other servers; this process's
// statements on the table wait for each other, dmlLock) change the rows it
// chose between its query and its write (tables.ErrRowChanged); past it
// the statement fails with a write conflict.
const maxStatementRetries = 50

// seqOf reads a _seq selected by the statement layer.
func seqOf(v any) (int64, error) {
	n, ok := v.(int64)
	if !ok || n <= 0 {
		return 0, fmt.Errorf("sql: _seq %v (%T) of a selected row is not a positive BIGINT", v, v)
	}
	return n, nil
}

func (s *session) delete(ctx context.Context, st statement) (*Result, error) {
	p, rs, err := s.target(ctx, st, "deleted", "DELETE", "FROM")
	if err != nil {
		return nil, err
	}
	t := rs.Table()
	where, err := whereClause(p, st)
	if err != nil {
		return nil, err
	}
	defer s.e.dmlLock(t, rs.User())()
	q := "SELECT " + quote(t.PrimaryKey) + ", " + quote(catalog.ColumnSeq) + " FROM " + quote(t.Namespace) + "." + quote(t.Name) + where
	n, err := untilUnchanged(func() (int, error) {
		res, err := s.query(ctx, q, s.argsFor(st), -1)
		if err != nil {
			return 0, err
		}
		vs := make([]tables.RowVersion, len(res.Rows))
		for i, r := range res.Rows {
			if vs[i].PK, err = keyOf(t, r[0]); err != nil {
				return 0, err
			}
			if vs[i].Seq, err = seqOf(r[1]); err != nil {
				return 0, err
			}
		}
		// All rows or none, in one batch, and only the versions that
		// matched the condition.
		return rs.DeleteVersions(ctx, vs)
	})
	if err != nil {
		return nil, err
	}
	return message("Deleted %d row(s)", n), nil
}

// fromResult undoes jsonValue for a value of a column the engine cast to a
// column type: what row.FromAny takes for that type.
func fromResult(v any) any {
	if b, ok := v.(*big.Int); ok && b.IsInt64() {
		return b.Int64()
	}
	return v
}
