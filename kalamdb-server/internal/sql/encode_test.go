package sql

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// marshalSuccess is the body encoding/json writes for a successful
// response, with '<', '>' and '&' left as they are.
func marshalSuccess(t *testing.T, results []Result, took float64) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(Response{Status: "success", Results: results, Took: took}))
	return b.Bytes()
}

// The hand-written response is byte for byte what encoding/json writes.
func TestAppendSuccessMatchesEncodingJSON(t *testing.T) {
	results := []Result{
		{Schema: []Field{{"id", "BigInt", 0}, {"na\"me\n", "Text", 1}, {"<&>", "Double", 2}}, Rows: [][]any{
			{int64(-9007199254740993), "a \"q\" \\ \t\x01 é \u2028 <&>", 1.5},
			{int32(-3), int16(4), int8(-5), int(6), uint64(math.MaxUint64), uint32(7), uint16(8), uint8(9), uint(10)},
			{nil, true, false, 0.0, 1e-7, 1e21, 123456789.125, -0.5, math.MaxFloat64},
			{[]any{int64(1), "x", []any{nil, 2.5}}, map[string]any{"b": int64(1), "a": "y"}, []any{}},
		}, RowCount: 4, Message: "done"},
		{Schema: []Field{}, Rows: [][]any{}},
		{},
	}
	for _, took := range []float64{0, 0.001, 12.345, 1e-7} {
		got, err := appendSuccess(nil, results, took)
		require.NoError(t, err)
		assert.Equal(t, string(marshalSuccess(t, results, took)), string(got))
	}
	got, err := appendSuccess(nil, []Result{}, 1)
	require.NoError(t, err)
	assert.Equal(t, string(marshalSuccess(t, []Result{}, 1)), string(got))
}

// A value encoding/json cannot encode is an error, as with json.Marshal.
func TestAppendSuccessRefusesUnencodable(t *testing.T) {
	_, err := appendSuccess(nil, []Result{{Rows: [][]any{{make(chan int)}}}}, 0)
	assert.Error(t, err)
}

// The endpoint's answers are written by the hand-written encoder: a string
// with '<' comes out unescaped, as in the REST API's rows.
func TestResponseLeavesHTMLCharactersUnescaped(t *testing.T) {
	f := newFixture(t)
	r := f.post(t, aliceToken, `{"sql":"SELECT '<a&b>' AS s"}`)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), `"<a&b>"`)
	assert.Equal(t, [][]any{{"<a&b>"}}, r.Results[0].Rows)
}
