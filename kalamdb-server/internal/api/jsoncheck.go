package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// encoding/json quietly changes some inputs that a database must not store
// changed: it replaces invalid UTF-8 and unpaired surrogate escapes with
// U+FFFD, keeps the last of two members with the same name, and matches
// member names to struct fields without regard to case. checkJSON refuses
// all of them before the body is decoded, naming where the problem is.

// maxJSONDepth bounds the nesting of a request body, as encoding/json does.
const maxJSONDepth = 10000

// errJSONSyntax stops checkJSON at malformed input: the decoder that runs
// next reports the syntax error in its own words.
var errJSONSyntax = errors.New("json syntax")

// checkJSON checks data, a request body to be decoded into a value of type
// t: it must be UTF-8 without unpaired surrogate escapes, no object may have
// two members of one name, and the members of an object decoded into a
// struct must be named exactly as its fields are. The error is a 400 that
// names the place; malformed JSON passes, for the decoder to report.
func checkJSON(data []byte, t reflect.Type) error {
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return &Error{Status: 400, Code: CodeInvalidJSON,
			Message: fmt.Sprintf("request body is not valid UTF-8 at byte %d (0x%02x); send text in UTF-8", off, data[off])}
	}
	c := jsonChecker{data: data}
	err := c.value(t, "", 0)
	if err == errJSONSyntax {
		return nil
	}
	return err
}

type jsonChecker struct {
	data []byte
	pos  int
}

func (c *jsonChecker) skipSpace() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// value checks the JSON value at c.pos, to be decoded into type t (nil:
// any), at path (for messages).
func (c *jsonChecker) value(t reflect.Type, path string, depth int) error {
	if depth > maxJSONDepth {
		return &Error{Status: 400, Code: CodeInvalidJSON, Message: fmt.Sprintf("request body nests more than %d levels deep", maxJSONDepth)}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	c.skipSpace()
	if c.pos >= len(c.data) {
		return errJSONSyntax
	}
	switch c.data[c.pos] {
	case '{':
		return c.object(t, path, depth)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		c.pos++
		c.skipSpace()
		if c.pos < len(c.data) && c.data[c.pos] == ']' {
			c.pos++
			return nil
		}
		for i := 0; ; i++ {
			if err := c.value(elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
			c.skipSpace()
			if c.pos >= len(c.data) {
				return errJSONSyntax
			}
			switch c.data[c.pos] {
			case ',':
				c.pos++
			case ']':
				c.pos++
				return nil
			default:
				return errJSONSyntax
			}
		}
	case '"':
		_, err := c.str(path, false)
		return err
	}
	// A number, true, false or null: the decoder checks its spelling.
	start := c.pos
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			if c.pos == start {
				return errJSONSyntax
			}
			return nil
		}
		c.pos++
	}
	return nil
}

// object checks an object whose '{' is at c.pos.
func (c *jsonChecker) object(t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type
	isStruct := t != nil && t.Kind() == reflect.Struct
	if isStruct {
		fields = structFields(t)
	}
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	c.pos++
	c.skipSpace()
	if c.pos < len(c.data) && c.data[c.pos] == '}' {
		c.pos++
		return nil
	}
	var names []string
	var seen map[string]bool
	for {
		c.skipSpace()
		if c.pos >= len(c.data) || c.data[c.pos] != '"' {
			return errJSONSyntax
		}
		name, err := c.str(path, true)
		if err != nil {
			return err
		}
		where := "request body"
		if path != "" {
			where = fmt.Sprintf("field %q", path)
		}
		// Most objects are small: a list is cheaper than a map.
		dup := false
		if seen != nil {
			dup = seen[name]
			seen[name] = true
		} else {
			for _, n := range names {
				if n == name {
					dup = true
					break
				}
			}
			names = append(names, name)
			if len(names) > 16 {
				seen = make(map[string]bool, 32)
				for _, n := range names {
					seen[n] = true
				}
			}
		}
		if dup {
			return badRequest("%s has the field %q twice; give each field once", where, name)
		}
		child := elem
		if isStruct {
			ft, ok := fields[name]
			if !ok {
				return unknownMember(where, name, fields)
			}
			child = ft
		}
		c.skipSpace()
		if c.pos >= len(c.data) || c.data[c.pos] != ':' {
			return errJSONSyntax
		}
		c.pos++
		if err := c.value(child, joinPath(path, name), depth+1); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.data) {
			return errJSONSyntax
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
		case '}':
			c.pos++
			return nil
		default:
			return errJSONSyntax
		}
	}
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// unknownMember is the error for a member that no field of a struct has,
// pointing out a field that differs only in case.
func unknownMember(where, name string, fields map[string]reflect.Type) error {
	known := make([]string, 0, len(fields))
	for f := range fields {
		if strings.EqualFold(f, name) {
			return badRequest("%s has the field %q; did you mean %q? Field names are case-sensitive", where, name, f)
		}
		known = append(known, f)
	}
	slices.Sort(known)
	return badRequest("%s has the unknown field %q; known fields: %s", where, name, strings.Join(known, ", "))
}

// str reads the string at c.pos and, when need is set, returns its value;
// an unpaired surrogate escape is an error.
func (c *jsonChecker) str(path string, need bool) (string, error) {
	start := c.pos + 1
	escaped := false
	for i := start; i < len(c.data); i++ {
		switch c.data[i] {
		case '"':
			c.pos = i + 1
			if !need {
				return "", nil
			}
			if !escaped {
				return string(c.data[start:i]), nil
			}
			var s string
			if err := json.Unmarshal(c.data[start-1:i+1], &s); err != nil {
				return "", errJSONSyntax
			}
			return s, nil
		case '\\':
			escaped = true
			if i+1 >= len(c.data) {
				return "", errJSONSyntax
			}
			if c.data[i+1] == 'u' {
				n, err := c.surrogate(i, path)
				if err != nil {
					return "", err
				}
				i += n - 1 // the loop adds one
				continue
			}
			i++ // the escaped byte
		}
	}
	return "", errJSONSyntax
}

// surrogate checks the \u escape at data[i] and returns how many bytes it
// takes: a high surrogate must be followed by a low one (the pair takes 12
// bytes), and a low one must not stand alone.
func (c *jsonChecker) surrogate(i int, path string) (int, error) {
	r, ok := hex4(c.data, i+2)
	if !ok {
		return 0, errJSONSyntax
	}
	if r < 0xD800 || r > 0xDFFF {
		return 6, nil
	}
	if r <= 0xDBFF {
		j := i + 6
		if j+1 < len(c.data) && c.data[j] == '\\' && c.data[j+1] == 'u' {
			if l, ok := hex4(c.data, j+2); ok && l >= 0xDC00 && l <= 0xDFFF {
				return 12, nil
			}
		}
	}
	where := "request body"
	if path != "" {
		where = fmt.Sprintf("field %q", path)
	}
	return 0, &Error{Status: 400, Code: CodeInvalidJSON,
		Message: fmt.Sprintf("%s has the escape \\u%04x at byte %d, half of a UTF-16 surrogate pair without its other half: it is not a character", where, r, i)}
}

// hex4 reads four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, b := range data[i : i+4] {
		switch {
		case b >= '0' && b <= '9':
			r = r<<4 | rune(b-'0')
		case b >= 'a' && b <= 'f':
			r = r<<4 | rune(b-'a'+10)
		case b >= 'A' && b <= 'F':
			r = r<<4 | rune(b-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// structFields maps the JSON member names of struct type t to the types of
// their fields, as encoding/json names them (the json tag, else the field
// name).
func structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type
