package sql

import (
	"strconv"
	"strings"
)

// The statement layer tokenizes a request only far enough to split it into
// statements and to recognise KalamDB's own statements (DDL, storage
// commands, the shape of INSERT, UPDATE and DELETE). Every expression and
// every query is parsed and evaluated by the query engine.

// tokenKind is the kind of a token.
type tokenKind int

const (
	tokIdent  tokenKind = iota // a bare word: keyword or name
	tokQuoted                  // a "quoted" identifier
	tokString                  // a 'string' literal
	tokNumber                  // a numeric literal
	tokParam                   // $n
	tokPunct                   // any other character
)

// token is one token of a statement: its kind, its text in the source and,
// for identifiers and strings, its value.
type token struct {
	kind tokenKind
	text string
	val  string
	pos  int // byte offset in the request
}

// is reports whether t is the keyword kw (case-insensitive, bare words only).
func (t token) is(kw string) bool { return t.kind == tokIdent && strings.EqualFold(t.text, kw) }

// punct reports whether t is the punctuation p.
func (t token) punct(p string) bool { return t.kind == tokPunct && t.text == p }

// lex splits src into tokens, skipping white space and comments.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, invalidSQL(i, "comment opened at position %d is never closed with */", i)
			}
			i += end + 4
		case c == '\'' || c == '"':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(src) {
				if src[i] == c {
					if i+1 < len(src) && src[i+1] == c {
						b.WriteByte(c)
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(src[i])
				i++
			}
			if !closed {
				what := "string"
				if c == '"' {
					what = "quoted identifier"
				}
				return nil, invalidSQL(start, "%s opened at position %d is never closed with %c", what, start, c)
			}
			kind := tokString
			if c == '"' {
				kind = tokQuoted
			}
			toks = append(toks, token{kind: kind, text: src[start:i], val: b.String(), pos: start})
		case isIdentStart(c):
			start := i
			for i < len(src) && isIdentPart(src[i]) {
				i++
			}
			toks = append(toks, token{kind: tokIdent, text: src[start:i], val: strings.ToLower(src[start:i]), pos: start})
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			start := i
			for i < len(src) && (isIdentPart(src[i]) || src[i] == '.' ||
				(src[i] == '+' || src[i] == '-') && (src[i-1] == 'e' || src[i-1] == 'E')) {
				i++
			}
			toks = append(toks, token{kind: tokNumber, text: src[start:i], pos: start})
		case c == '$' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			start := i
			i++
			for i < len(src) && src[i] >= '0' && src[i] <= '9' {
				i++
			}
			toks = append(toks, token{kind: tokParam, text: src[start:i], pos: start})
		default:
			toks = append(toks, token{kind: tokPunct, text: src[i : i+1], pos: i})
			i++
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

// statement is one statement of a request: its text and tokens.
type statement struct {
	text string
	pos  int // of text in the request
	toks []token
}

// split splits a request into its statements at the semicolons outside
// strings, quoted names and comments, dropping empty statements.
func split(src string) ([]statement, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	var out []statement
	begin := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && !toks[i].punct(";") {
			continue
		}
		if i > begin {
			first, last := toks[begin], toks[i-1]
			end := last.pos + len(last.text)
			out = append(out, statement{text: src[first.pos:end], pos: first.pos, toks: toks[begin:i]})
		}
		begin = i + 1
	}
	return out, nil
}

// maxParam returns the highest $n the tokens use (0 for none).
func maxParam(toks []token) int {
	n := 0
	for _, t := range toks {
		if t.kind == tokParam {
			if k, err := strconv.Atoi(t.text[1:]); err == nil && k > n {
				n = k
			}
		}
	}
	return n
}
