package sql

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// quickRequest decodes the common request body — an object of "sql",
// "params" and "namespace_id", each at most once, whose strings have no
// escape and params are plain numbers, strings, booleans and nulls — as
// api.DecodeJSON and decodeParams would, without reflection. ok is false
// for anything else, which then takes that strict path and gets its
// errors: quickRequest refuses no body, it only declines.
func quickRequest(data []byte) (sql string, params []any, ns string, ok bool) {
	d := quickDecoder{data: data}
	var seen [3]bool
	d.space()
	if !d.byte('{') {
		return "", nil, "", false
	}
	d.space()
	if d.byte('}') {
		return "", nil, "", false // no "sql": the strict path names it
	}
	for {
		key, ok := d.str()
		if !ok {
			return "", nil, "", false
		}
		d.space()
		if !d.byte(':') {
			return "", nil, "", false
		}
		d.space()
		i := slices.Index(requestFields[:], key)
		if i < 0 || seen[i] {
			return "", nil, "", false
		}
		seen[i] = true
		switch i {
		case 0:
			sql, ok = d.str()
		case 1:
			params, ok = d.params()
		case 2:
			ns, ok = d.str()
		}
		if !ok {
			return "", nil, "", false
		}
		d.space()
		if d.byte('}') {
			break
		}
		if !d.byte(',') {
			return "", nil, "", false
		}
		d.space()
	}
	d.space()
	if !seen[0] || d.pos != len(d.data) {
		return "", nil, "", false
	}
	return sql, params, ns, true
}

// requestFields are the members of a request, in quickRequest's order.
var requestFields = [3]string{"sql", "params", "namespace_id"}

type quickDecoder struct {
	data []byte
	pos  int
}

func (d *quickDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *quickDecoder) byte(c byte) bool {
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid
// UTF-8.
func (d *quickDecoder) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := d.data[start:d.pos]
			d.pos++
			if !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		}
		d.pos++
	}
	return "", false
}

// params reads a list of numbers, plain strings, booleans and nulls; a
// number is an int64 when it is an integer that fits, else a float64.
func (d *quickDecoder) params() ([]any, bool) {
	if !d.byte('[') {
		return nil, false // null and other kinds take the strict path
	}
	list := []any{}
	d.space()
	if d.byte(']') {
		return list, true
	}
	for {
		switch c := d.peek(); {
		case c == '"':
			s, ok := d.str()
			if !ok {
				return nil, false
			}
			list = append(list, s)
		case c == '-' || c >= '0' && c <= '9':
			n, ok := d.number()
			if !ok {
				return nil, false
			}
			list = append(list, n)
		case d.word("true"):
			list = append(list, true)
		case d.word("false"):
			list = append(list, false)
		case d.word("null"):
			list = append(list, nil)
		default:
			return nil, false
		}
		d.space()
		if d.byte(']') {
			return list, true
		}
		if !d.byte(',') {
			return nil, false
		}
		d.space()
	}
}

func (d *quickDecoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *quickDecoder) word(w string) bool {
	if len(d.data)-d.pos >= len(w) && string(d.data[d.pos:d.pos+len(w)]) == w {
		d.pos += len(w)
		return true
	}
	return false
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
func (d *quickDecoder) number() (any, bool) {
	start := d.pos
	d.byte('-')
	if d.byte('0') {
	} else if !d.digits() {
		return nil, false
	}
	if d.byte('.') && !d.digits() {
		return nil, false
	}
	if d.byte('e') || d.byte('E') {
		if !d.byte('+') {
			d.byte('-')
		}
		if !d.digits() {
			return nil, false
		}
	}
	text := string(d.data[start:d.pos])
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return f, true
	}
	return nil, false // out of range: the strict path names it
}

func (d *quickDecoder) digits() bool {
	start := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos > start
}
