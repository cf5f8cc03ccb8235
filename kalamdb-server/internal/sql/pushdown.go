package sql

import (
	"strconv"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// keyBounds are the primary keys a query can read, from the conditions on
// the key that its WHERE clause ANDs with the rest: the engine still
// evaluates the whole clause, so the bounds only need to hold every row
// the query can select.
type keyBounds struct {
	point          bool // lo is the only key
	lo, hi         row.Value
	loOpen, hiOpen bool // lo or hi excluded
}

// beyond reports whether pk is past the upper bound.
func (b *keyBounds) beyond(pk row.Value) bool {
	if b.hi.IsNull() {
		return false
	}
	c := compareKeys(pk, b.hi)
	return c > 0 || c == 0 && b.hiOpen
}

// compareKeys orders two keys of one type as the engine does: integers by
// value, strings by their bytes.
func compareKeys(a, b row.Value) int {
	switch a.Type() {
	case row.TypeInt32:
		return cmp(int64(a.Int32()), int64(b.Int32()))
	case row.TypeInt64:
		return cmp(a.Int64(), b.Int64())
	case row.TypeString:
		return cmp(a.Str(), b.Str())
	}
	return 0
}

func cmp[T int64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pushdown finds the key bounds of a query over the single table t: a
// query that names t once, as its whole FROM, and whose WHERE compares t's primary key (an
// integer or text) with constants or parameters. It returns nil when it
// finds none.
func pushdown(p *parsed, t *catalog.Table, args []any) *keyBounds {
	if len(p.refs) != 1 || t.Type == catalog.StreamTable || p.root == nil || p.root["type"] != "SELECT_NODE" {
		return nil
	}
	pk := t.PrimaryKeyColumn()
	if pk.Type != row.TypeInt32 && pk.Type != row.TypeInt64 && pk.Type != row.TypeString {
		return nil
	}
	if from, _ := p.root["from_table"].(map[string]any); from == nil || from["type"] != "BASE_TABLE" {
		return nil
	}
	where, _ := p.root["where_clause"].(map[string]any)
	if where == nil {
		return nil
	}
	b := &keyBounds{}
	found := false
	var conds []map[string]any
	if where["type"] == "CONJUNCTION_AND" {
		for _, c := range asList(where["children"]) {
			if m, ok := c.(map[string]any); ok {
				conds = append(conds, m)
			}
		}
	} else {
		conds = []map[string]any{where}
	}
	for _, c := range conds {
		if c["class"] == "BETWEEN" {
			if !isKey(c["input"], pk.Name) {
				continue
			}
			lo, ok1 := constant(c["lower"], pk.Type, args)
			hi, ok2 := constant(c["upper"], pk.Type, args)
			if ok1 && ok2 {
				b.lower(lo, false)
				b.upper(hi, false)
				found = true
			}
			continue
		}
		if c["class"] != "COMPARISON" {
			continue
		}
		op, _ := c["type"].(string)
		l, r := c["left"], c["right"]
		if !isKey(l, pk.Name) {
			l, r = r, l
			op = flip(op)
		}
		if !isKey(l, pk.Name) {
			continue
		}
		v, ok := constant(r, pk.Type, args)
		if !ok {
			continue
		}
		switch op {
		case "COMPARE_EQUAL":
			b.lower(v, false)
			b.upper(v, false)
		case "COMPARE_GREATERTHAN":
			b.lower(v, true)
		case "COMPARE_GREATERTHANOREQUALTO":
			b.lower(v, false)
		case "COMPARE_LESSTHAN":
			b.upper(v, true)
		case "COMPARE_LESSTHANOREQUALTO":
			b.upper(v, false)
		default:
			continue
		}
		found = true
	}
	if !found {
		return nil
	}
	if !b.lo.IsNull() && !b.hi.IsNull() {
		c := compareKeys(b.lo, b.hi)
		if c == 0 && !b.loOpen && !b.hiOpen {
			b.point = true
		}
	}
	return b
}

// lower raises the lower bound to v.
func (b *keyBounds) lower(v row.Value, open bool) {
	if b.lo.IsNull() {
		b.lo, b.loOpen = v, open
		return
	}
	c := compareKeys(v, b.lo)
	if c > 0 || c == 0 && open {
		b.lo, b.loOpen = v, open
	}
}

// upper lowers the upper bound to v.
func (b *keyBounds) upper(v row.Value, open bool) {
	if b.hi.IsNull() {
		b.hi, b.hiOpen = v, open
		return
	}
	c := compareKeys(v, b.hi)
	if c < 0 || c == 0 && open {
		b.hi, b.hiOpen = v, open
	}
}

func flip(op string) string {
	switch op {
	case "COMPARE_GREATERTHAN":
		return "COMPARE_LESSTHAN"
	case "COMPARE_LESSTHAN":
		return "COMPARE_GREATERTHAN"
	case "COMPARE_GREATERTHANOREQUALTO":
		return "COMPARE_LESSTHANOREQUALTO"
	case "COMPARE_LESSTHANOREQUALTO":
		return "COMPARE_GREATERTHANOREQUALTO"
	}
	return op
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// isKey reports whether expression e is the column key (unqualified or
// qualified by the table).
func isKey(e any, key string) bool {
	m, _ := e.(map[string]any)
	if m == nil || m["class"] != "COLUMN_REF" {
		return false
	}
	names := asList(m["column_names"])
	if len(names) == 0 || len(names) > 3 {
		return false
	}
	last, _ := names[len(names)-1].(string)
	return last == key
}

// constant returns expression e as a key of type t when it is an integer
// or text constant, or a parameter holding one, of exactly that kind: the
// engine's casts between kinds are left to the engine.
func constant(e any, t row.Type, args []any) (row.Value, bool) {
	m, _ := e.(map[string]any)
	if m == nil {
		return row.Value{}, false
	}
	var x any
	switch m["class"] {
	case "PARAMETER":
		id, _ := m["identifier"].(string)
		n, err := strconv.Atoi(id)
		if err != nil || n < 1 || n > len(args) {
			return row.Value{}, false
		}
		x = args[n-1]
	case "CONSTANT":
		lit, _ := m["literal"].(map[string]any)
		if lit == nil {
			return row.Value{}, false
		}
		text, _ := lit["text"].(string)
		switch lit["kind"] {
		case "INTEGER":
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return row.Value{}, false
			}
			x = n
		case "STRING":
			x = text
		default:
			return row.Value{}, false
		}
	default:
		return row.Value{}, false
	}
	switch v := x.(type) {
	case int64:
		if t == row.TypeInt64 {
			return row.Int64(v), true
		}
		if t == row.TypeInt32 && v >= -1<<31 && v < 1<<31 {
			return row.Int32(int32(v)), true
		}
	case string:
		if t == row.TypeString {
			return row.String(v), true
		}
	}
	return row.Value{}, false
}
