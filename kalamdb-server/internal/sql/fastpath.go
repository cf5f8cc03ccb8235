package sql

import (
	"context"
	"errors"
	"strconv"
	"strings"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Two statement shapes skip the engine's execution (the engine still parsed
// them): a query of plain columns of one row by primary key, answered by a
// point lookup, and an INSERT of constants and params whose types are
// exactly the columns', written as the REST insert writes them. Anything
// else, or a value needing a cast, takes the engine's path.

// pointSelect answers SELECT cols FROM t WHERE pk = value with a point
// lookup. ok is false when the query has another shape.
func (s *session) pointSelect(ctx context.Context, p *parsed, srcs []source, args []any) (res *Result, ok bool, err error) {
	if len(srcs) != 1 || p.currentUser || len(p.refs) != 1 {
		return nil, false, nil
	}
	n := p.root
	t := srcs[0].t
	if t.Type == catalog.StreamTable || len(asList(n["modifiers"])) > 0 || len(asList(n["group_expressions"])) > 0 ||
		n["having"] != nil || n["qualify"] != nil || n["sample"] != nil || n["aggregate_handling"] != "STANDARD_HANDLING" {
		return nil, false, nil
	}
	if m, _ := n["cte_map"].(map[string]any); m == nil || len(asList(m["map"])) > 0 {
		return nil, false, nil
	}
	from, _ := n["from_table"].(map[string]any)
	if from == nil || from["sample"] != nil || from["at_clause"] != nil || len(asList(from["column_name_alias"])) > 0 {
		return nil, false, nil
	}
	where, _ := n["where_clause"].(map[string]any)
	if where == nil || where["type"] != "COMPARE_EQUAL" {
		return nil, false, nil
	}
	b := pushdown(p, t, args)
	if b == nil || !b.point {
		return nil, false, nil
	}
	// The projection: * or plain columns, each named as in the table.
	var cols []int // -1 _seq, -2 _updated
	var names []string
	for _, e := range asList(n["select_list"]) {
		m, _ := e.(map[string]any)
		if m == nil {
			return nil, false, nil
		}
		alias, _ := m["alias"].(string)
		switch m["class"] {
		case "STAR":
			if alias != "" || m["relation_name"] != "" || m["expr"] != nil || m["columns"] != false ||
				len(asList(m["exclude_list"])) > 0 || len(asList(m["replace_list"])) > 0 ||
				len(asList(m["rename_list"])) > 0 || len(asList(m["qualified_exclude_list"])) > 0 {
				return nil, false, nil
			}
			for i, c := range t.Columns {
				cols, names = append(cols, i), append(names, c.Name)
			}
			cols, names = append(cols, -1, -2), append(names, catalog.ColumnSeq, catalog.ColumnUpdated)
		case "COLUMN_REF":
			parts := asList(m["column_names"])
			if len(parts) != 1 {
				return nil, false, nil
			}
			name, _ := parts[0].(string)
			i, found := t.ColumnIndex(name)
			switch {
			case found:
			case name == catalog.ColumnSeq:
				i = -1
			case name == catalog.ColumnUpdated:
				i = -2
			default:
				return nil, false, nil // the engine names the unknown column
			}
			if alias == "" {
				alias = name
			}
			cols, names = append(cols, i), append(names, alias)
		default:
			return nil, false, nil
		}
	}
	res = &Result{Schema: make([]Field, len(cols)), Rows: [][]any{}}
	for i, c := range cols {
		dt := "BigInt"
		switch {
		case c >= 0:
			dt = dataType(t.Columns[c].Type)
		case c == -2:
			dt = "Timestamp"
		}
		res.Schema[i] = Field{Name: names[i], DataType: dt, Index: i}
	}
	rs, err := s.e.opts.DB.RowStore(ctx, t.Namespace, t.Name, s.p.ID)
	if err != nil {
		return nil, true, err
	}
	r, err := rs.Get(ctx, b.lo)
	if errors.Is(err, core.ErrRowNotFound) {
		return res, true, nil
	}
	if err != nil {
		return nil, true, err
	}
	out := make([]any, len(cols))
	for i, c := range cols {
		switch {
		case c == -1:
			out[i] = r.Seq
		case c == -2:
			out[i] = formatTime(r.UpdatedTime())
		case c < len(r.Values):
			out[i] = jsonValue(engineValue(r.Values[c]))
		}
	}
	res.Rows = append(res.Rows, out)
	return res, true, nil
}

// constantRows reads VALUES (v, …), (v, …) where every v is a number, a
// string, NULL, TRUE, FALSE or a param, as Go values. ok is false for any
// other shape.
func constantRows(toks []token, params []any, width int) (rows [][]any, ok bool) {
	i := 0
	for {
		if i >= len(toks) || !toks[i].punct("(") {
			return nil, false
		}
		i++
		var r []any
		for {
			if i >= len(toks) {
				return nil, false
			}
			tk := toks[i]
			neg := false
			if tk.punct("-") && i+1 < len(toks) && toks[i+1].kind == tokNumber {
				neg, i = true, i+1
				tk = toks[i]
			}
			switch {
			case tk.kind == tokNumber:
				text := tk.text
				if neg {
					text = "-" + text
				}
				if n, err := strconv.ParseInt(text, 10, 64); err == nil {
					r = append(r, n)
				} else if f, err := strconv.ParseFloat(text, 64); err == nil && !strings.ContainsAny(text, "xXbBoO_") {
					r = append(r, f)
				} else {
					return nil, false
				}
			case neg:
				return nil, false
			case tk.kind == tokString:
				r = append(r, tk.val)
			case tk.kind == tokParam:
				n, err := strconv.Atoi(tk.text[1:])
				if err != nil || n < 1 || n > len(params) {
					return nil, false
				}
				r = append(r, params[n-1])
			case tk.is("NULL"):
				r = append(r, nil)
			case tk.is("TRUE"):
				r = append(r, true)
			case tk.is("FALSE"):
				r = append(r, false)
			default:
				return nil, false
			}
			i++
			if i < len(toks) && toks[i].punct(",") {
				i++
				continue
			}
			if i < len(toks) && toks[i].punct(")") {
				i++
				break
			}
			return nil, false
		}
		if len(r) != width {
			return nil, false
		}
		rows = append(rows, r)
		if i == len(toks) {
			return rows, true
		}
		if !toks[i].punct(",") {
			return nil, false
		}
		i++
	}
}

// exactValue reports whether x is already a value of type t, so that no
// cast could change it.
func exactValue(t row.Type, x any) bool {
	switch x.(type) {
	case nil:
		return true
	case int64:
		return t == row.TypeInt32 || t == row.TypeInt64
	case float64:
		return t == row.TypeFloat64
	case bool:
		return t == row.TypeBool
	case string:
		return t == row.TypeString
	}
	return false
}
