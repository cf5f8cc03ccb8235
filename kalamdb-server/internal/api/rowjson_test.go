package api

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// appendString must write exactly what encoding/json writes without HTML
// escaping.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `quo"te\back`, "tab\tnl\ncr\r", "\x00\x01\x1f", "<a href='x'>&amp;</a>",
		"ü€𝄞", "\u2028\u2029", "bad \xff utf8 \xc3", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(s))
		assert.Equal(t, strings.TrimSuffix(want.String(), "\n"), string(appendString(nil, s)))
	})
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 1e-7, 1.234e-9, 123456789, 1e20, 1e21, 1.5e300, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1, 1e-6, 3.14159} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(appendFloat(nil, f)), "%v", f)
	}
	assert.Equal(t, "null", string(appendFloat(nil, math.NaN())))
}

// A row renders to the JSON of its column map plus _seq and _updated.
func TestAppendRowMatchesEncodingJSON(t *testing.T) {
	tbl := &catalog.Table{Columns: []catalog.Column{
		{Name: "i32", Type: row.TypeInt32}, {Name: "i64", Type: row.TypeInt64}, {Name: "f", Type: row.TypeFloat64},
		{Name: "b", Type: row.TypeBool}, {Name: "s", Type: row.TypeString}, {Name: "by", Type: row.TypeBytes},
		{Name: "ts", Type: row.TypeTimestamp}, {Name: "n", Type: row.TypeString, Nullable: true},
	}}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	r := row.Row{Seq: 42, Updated: ts.UnixMicro(), Values: []row.Value{
		row.Int32(-5), row.Int64(1 << 62), row.Float64(2.5e-8), row.Bool(true), row.String("hé \"x\" <y>"),
		row.Bytes([]byte{0, 1, 0xfe, 0xff}), row.Timestamp(ts), row.Null(),
	}}
	got := appendRow(nil, tbl, &r)
	var gotMap map[string]any
	require.NoError(t, json.Unmarshal(got, &gotMap), string(got))

	want := map[string]any{"i32": int32(-5), "i64": int64(1 << 62), "f": 2.5e-8, "b": true, "s": "hé \"x\" <y>",
		"by": []byte{0, 1, 0xfe, 0xff}, "ts": ts, "n": nil, "_seq": 42, "_updated": ts}
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	var wantMap map[string]any
	require.NoError(t, json.Unmarshal(wantJSON, &wantMap))
	assert.Equal(t, wantMap, gotMap)
	assert.Equal(t, `{"i32":-5,`, string(got[:10]), "columns come in schema order")
}

func BenchmarkAppendRow(b *testing.B) {
	tbl := &catalog.Table{Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "body", Type: row.TypeString}, {Name: "at", Type: row.TypeTimestamp}}}
	r := row.Row{Seq: 1, Updated: time.Now().UnixMicro(), Values: []row.Value{row.Int64(7), row.String("message number 7, some text of a usual size"), row.Timestamp(time.Now())}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendRow(buf[:0], tbl, &r)
	}
}
