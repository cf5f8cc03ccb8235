package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type checkTarget struct {
	Rows  []map[string]any `json:"rows"`
	Inner *struct {
		Flag bool `json:"flag"`
	} `json:"inner"`
	Plain int
	Skip  int `json:"-"`
}

var checkTargetType = reflect.TypeOf(&checkTarget{})

func TestCheckJSONRefusesWhatDecodingWouldChange(t *testing.T) {
	bad := map[string]string{
		`{"rows":[{"id":1},{"id":118,"id":119}]}`: `field "rows[1]" has the field "id" twice`,
		`{"rows":[],"rows":[]}`:                   `request body has the field "rows" twice`,
		`{"ROWS":[]}`:                             `did you mean "rows"?`,
		`{"Plain":1,"plain":2}`:                   `has the field "plain"; did you mean "Plain"?`,
		`{"Skip":1}`:                              `unknown field "Skip"; known fields: Plain, inner, rows`,
		`{"rows":[{"a":{"b":1,"b":2}}]}`:          `field "rows[0].a" has the field "b" twice`,
		`{"rows":[{"s":"\udfff"}]}`:               `field "rows[0].s" has the escape \udfff`,
		`{"rows":[{"s":"\ud800\ud800"}]}`:         `escape \ud800 at byte`,
		`{"rows":[{"s":"x\ud800"}]}`:              `escape \ud800`,
		"{\"rows\":[{\"s\":\"\xed\xa0\x80\"}]}":   `not valid UTF-8 at byte 15 (0xed)`, // a surrogate in UTF-8
		"{\"rows\":[{\"s\":\"\xc3\"}]}":           `not valid UTF-8 at byte 15 (0xc3)`,
		`{"rows":[{"x":1,"y":2,"z":3,"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"x":4}]}`: `has the field "x" twice`,
		`{"rows":` + strings.Repeat("[", maxJSONDepth+2) + strings.Repeat("]", maxJSONDepth+2) + `}`:                                     "nests more than 10000 levels deep",
	}
	for body, want := range bad {
		err := checkJSON([]byte(body), checkTargetType)
		var e *Error
		require.True(t, errors.As(err, &e), "%.80s: %v", body, err)
		assert.Equal(t, 400, e.Status)
		assert.Contains(t, e.Message, want, "%.80s", body)
	}
	good := []string{
		`{"rows":[{"id":1,"ID":2}]}`, // a row's members are column names, checked by the table
		`{"rows":[{"s":"\ud83d\ude00 \\udc00 \"\\"}]}`,
		`{"rows":[{"a":{"b":1},"b":{"b":1}}]}`,
		`{"inner":{"flag":true},"Plain":3}`,
		`{"inner":null}`,
		` { "rows" : [ ] } `,
	}
	for _, body := range good {
		assert.NoError(t, checkJSON([]byte(body), checkTargetType), body)
	}
	// Malformed input is the decoder's to report: checkJSON lets it pass.
	for _, body := range []string{`{"rows":`, `{"rows" 1}`, `{"rows":[{"a":"\u12"}]}`, `[1 2]`, `{,}`, `"abc`, ``, `{"rows":[{"a":1,}]}`} {
		assert.NoError(t, checkJSON([]byte(body), checkTargetType), body)
	}
}

// FuzzCheckJSON: checkJSON never panics, and what it accepts decodes
// without a replacement character that the input did not spell, and
// without losing a member to a duplicate.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"rows":[{"a":1}]}`, `{"a":"\ud83d\ude00"}`, `{"a":"\udc00"}`, "{\"a\":\"\xff\"}", `{"a":1,"a":2}`, `[{"x":[1,{"y":"\u00e9"}]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkJSON(data, reflect.TypeOf((*any)(nil))) != nil {
			return
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		spelled := strings.Count(string(data), "\uFFFD") + strings.Count(strings.ToLower(string(data)), `\ufffd`)
		if got := countReplacement(v); got > spelled {
			t.Fatalf("accepted %q, which decodes with %d U+FFFD but spells %d", data, got, spelled)
		}
		if got, want := countMembers(v), tokenMembers(t, data); got != want {
			t.Fatalf("accepted %q, which has %d members but decodes to %d: a duplicate was lost", data, want, got)
		}
	})
}

func countReplacement(v any) int {
	n := 0
	switch x := v.(type) {
	case string:
		for _, r := range x {
			if r == utf8.RuneError {
				n++
			}
		}
	case []any:
		for _, e := range x {
			n += countReplacement(e)
		}
	case map[string]any:
		for k, e := range x {
			n += countReplacement(k) + countReplacement(e)
		}
	}
	return n
}

// tokenMembers counts the members of every object in data, duplicates
// included.
func tokenMembers(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct{ object, wantKey bool }
	var stack []frame
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("tokens of %q: %v", data, err)
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].wantKey = true
				}
				stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:top]
			}
			continue
		}
		if top >= 0 && stack[top].object {
			if stack[top].wantKey {
				n++
			}
			stack[top].wantKey = !stack[top].wantKey
		}
	}
}

func countMembers(v any) int {
	n := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			n += countMembers(e)
		}
	case map[string]any:
		n += len(x)
		for _, e := range x {
			n += countMembers(e)
		}
	}
	return n
}
