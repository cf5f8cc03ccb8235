package row_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

var allTypes = []row.Type{row.TypeInt32, row.TypeInt64, row.TypeFloat64, row.TypeBool, row.TypeString, row.TypeBytes, row.TypeTimestamp}

func roundTrip(t *testing.T, r row.Row, types []row.Type) row.Row {
	t.Helper()
	enc, err := row.Encode(nil, &r, types)
	require.NoError(t, err)
	assert.Len(t, enc, row.EncodedLen(&r))
	var got row.Row
	require.NoError(t, row.Decode(enc, types, &got))
	var owned row.Row
	require.NoError(t, row.DecodeOwned(append([]byte(nil), enc...), types, &owned))
	assert.Equal(t, got, owned)
	return got
}

func TestRoundTripEveryTypeAndNull(t *testing.T) {
	cases := map[row.Type][]row.Value{
		row.TypeInt32:   {row.Int32(0), row.Int32(-1), row.Int32(math.MinInt32), row.Int32(math.MaxInt32)},
		row.TypeInt64:   {row.Int64(0), row.Int64(-1), row.Int64(math.MinInt64), row.Int64(math.MaxInt64)},
		row.TypeFloat64: {row.Float64(0), row.Float64(math.Copysign(0, -1)), row.Float64(math.NaN()), row.Float64(math.Float64frombits(0x7FF0000000000123)), row.Float64(math.Inf(-1)), row.Float64(math.SmallestNonzeroFloat64), row.Float64(1.5)},
		row.TypeBool:    {row.Bool(true), row.Bool(false)},
		row.TypeString:  {row.String(""), row.String("héllo"), row.String("a\x00b:c"), row.String(string(make([]byte, 300)))},
		row.TypeBytes:   {row.Bytes(nil), row.Bytes([]byte{0, 0xFF, 0x80}), row.Bytes(make([]byte, 1<<16))},
		row.TypeTimestamp: {row.TimestampMicros(0), row.TimestampMicros(-1), row.TimestampMicros(math.MaxInt64),
			row.Timestamp(time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.FixedZone("x", 3600)))},
	}
	for _, typ := range allTypes {
		for _, v := range append(cases[typ], row.Null()) {
			types := []row.Type{row.TypeInt64, typ, typ}
			in := row.Row{Seq: 42, Updated: -7, Deleted: true, Values: []row.Value{row.Int64(1), v, row.Null()}}
			got := roundTrip(t, in, types)
			require.Len(t, got.Values, 3)
			assert.True(t, got.Values[1].Equal(v), "%s: %v != %v", typ, got.Values[1], v)
			assert.Equal(t, math.Float64bits(v.Float64()), math.Float64bits(got.Values[1].Float64()))
			assert.True(t, got.Values[2].IsNull())
			assert.Equal(t, int64(42), got.Seq)
			assert.Equal(t, int64(-7), got.Updated)
			assert.True(t, got.Deleted)
		}
	}
}

func TestManyColumnsBitmap(t *testing.T) {
	types := make([]row.Type, 19)
	vals := make([]row.Value, 19)
	for i := range types {
		types[i] = allTypes[i%len(allTypes)]
		if i%3 != 0 {
			v, err := row.FromAny(types[i], nil)
			require.NoError(t, err)
			vals[i] = v
		} else {
			vals[i] = sample(types[i], i)
		}
	}
	got := roundTrip(t, row.Row{Seq: 1, Values: vals}, types)
	for i := range vals {
		assert.True(t, vals[i].Equal(got.Values[i]), "column %d", i)
	}
}

func sample(t row.Type, i int) row.Value {
	switch t {
	case row.TypeInt32:
		return row.Int32(int32(i))
	case row.TypeInt64:
		return row.Int64(int64(i) << 40)
	case row.TypeFloat64:
		return row.Float64(float64(i) / 3)
	case row.TypeBool:
		return row.Bool(i%2 == 0)
	case row.TypeString:
		return row.String("s" + string(rune('a'+i)))
	case row.TypeBytes:
		return row.Bytes([]byte{byte(i), 0})
	}
	return row.TimestampMicros(int64(i) * 1e6)
}

func TestDecodeReusesValuesAndClearsThem(t *testing.T) {
	types := []row.Type{row.TypeString, row.TypeInt64}
	enc1, err := row.Encode(nil, &row.Row{Values: []row.Value{row.String("x"), row.Int64(1)}}, types)
	require.NoError(t, err)
	enc2, err := row.Encode(nil, &row.Row{Values: []row.Value{row.Null(), row.Int64(2)}}, types)
	require.NoError(t, err)
	var r row.Row
	require.NoError(t, row.Decode(enc1, types, &r))
	first := &r.Values[0]
	require.NoError(t, row.Decode(enc2, types, &r))
	assert.Same(t, first, &r.Values[0], "Values reused")
	assert.True(t, r.Values[0].IsNull())
	assert.Equal(t, int64(2), r.Values[1].Int64())
}

func TestDecodeCopiesInput(t *testing.T) {
	types := []row.Type{row.TypeString, row.TypeBytes}
	enc, err := row.Encode(nil, &row.Row{Values: []row.Value{row.String("abc"), row.Bytes([]byte("def"))}}, types)
	require.NoError(t, err)
	var r row.Row
	require.NoError(t, row.Decode(enc, types, &r))
	for i := range enc {
		enc[i] = 'z'
	}
	assert.Equal(t, "abc", r.Values[0].Str())
	assert.Equal(t, []byte("def"), r.Values[1].Bytes())
}

func TestFewerStoredColumnsDecodeAsNull(t *testing.T) {
	old := []row.Type{row.TypeInt64}
	enc, err := row.Encode(nil, &row.Row{Seq: 3, Values: []row.Value{row.Int64(9)}}, old)
	require.NoError(t, err)
	var r row.Row
	require.NoError(t, row.Decode(enc, []row.Type{row.TypeInt64, row.TypeString, row.TypeBool}, &r))
	assert.Equal(t, int64(9), r.Values[0].Int64())
	assert.True(t, r.Values[1].IsNull())
	assert.True(t, r.Values[2].IsNull())
}

func TestEncodeRejectsMismatch(t *testing.T) {
	_, err := row.Encode(nil, &row.Row{Values: []row.Value{row.String("x")}}, []row.Type{row.TypeInt64})
	assert.ErrorIs(t, err, core.ErrInvalidRow)
	assert.Contains(t, err.Error(), "value 0 is string, the column is int64")
	_, err = row.Encode(nil, &row.Row{Values: []row.Value{row.Int64(1)}}, []row.Type{row.TypeInt64, row.TypeInt64})
	assert.ErrorIs(t, err, core.ErrInvalidRow)
}

func TestDecodeCorrupt(t *testing.T) {
	types := []row.Type{row.TypeInt64, row.TypeString, row.TypeBool}
	good, err := row.Encode(nil, &row.Row{Values: []row.Value{row.Int64(5), row.String("hello"), row.Bool(true)}}, types)
	require.NoError(t, err)
	mutate := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	bad := map[string][]byte{
		"empty":         nil,
		"short header":  good[:10],
		"version":       mutate(func(b []byte) []byte { b[0] = 9; return b }),
		"flags":         mutate(func(b []byte) []byte { b[1] = 0x80; return b }),
		"too many cols": mutate(func(b []byte) []byte { b[18] = 4; return b }),
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte(nil), good...), 0),
		"bool value":    mutate(func(b []byte) []byte { b[len(b)-1] = 7; return b }),
		"string length": mutate(func(b []byte) []byte { b[18+1+1+8] = 0x7F; return b }),
	}
	for name, data := range bad {
		var r row.Row
		err := row.Decode(data, types, &r)
		assert.ErrorIs(t, err, core.ErrCorrupt, name)
	}
	_, err = row.PeekSeq(good[:5])
	assert.ErrorIs(t, err, core.ErrCorrupt)
}

func TestPeekMeta(t *testing.T) {
	enc, err := row.Encode([]byte("prefix"), &row.Row{Seq: 77, Updated: 1234, Deleted: true, Values: []row.Value{row.Null()}}, []row.Type{row.TypeString})
	require.NoError(t, err)
	assert.Equal(t, "prefix", string(enc[:6]))
	enc = enc[6:]
	seq, err := row.PeekSeq(enc)
	require.NoError(t, err)
	assert.Equal(t, int64(77), seq)
	seq, upd, del, err := row.PeekMeta(enc)
	require.NoError(t, err)
	assert.Equal(t, []any{int64(77), int64(1234), true}, []any{seq, upd, del})
}

func TestTypeNames(t *testing.T) {
	for _, typ := range allTypes {
		got, err := row.ParseType(typ.String())
		require.NoError(t, err)
		assert.Equal(t, typ, got)
		text, err := typ.MarshalText()
		require.NoError(t, err)
		var back row.Type
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, typ, back)
	}
	_, err := row.ParseType("varchar")
	assert.ErrorContains(t, err, `unknown column type "varchar"`)
	_, err = row.Type(0).MarshalText()
	assert.Error(t, err)
	assert.Equal(t, "null", row.Type(0).String())
	assert.Equal(t, "Type(99)", row.Type(99).String())
}

func TestFromAny(t *testing.T) {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	ok := []struct {
		typ  row.Type
		in   any
		want row.Value
	}{
		{row.TypeInt32, 7, row.Int32(7)},
		{row.TypeInt32, float64(-3), row.Int32(-3)},
		{row.TypeInt32, json.Number("12"), row.Int32(12)},
		{row.TypeInt64, uint32(9), row.Int64(9)},
		{row.TypeInt64, int64(math.MinInt64), row.Int64(math.MinInt64)},
		{row.TypeInt64, float64(1 << 53), row.Int64(1 << 53)},
		{row.TypeFloat64, 2, row.Float64(2)},
		{row.TypeFloat64, json.Number("2.5"), row.Float64(2.5)},
		{row.TypeBool, true, row.Bool(true)},
		{row.TypeString, "x\x00y", row.String("x\x00y")},
		{row.TypeBytes, []byte{1, 2}, row.Bytes([]byte{1, 2})},
		{row.TypeBytes, "AQI=", row.Bytes([]byte{1, 2})},
		{row.TypeTimestamp, ts, row.Timestamp(ts)},
		{row.TypeTimestamp, "2025-01-02T03:04:05.000006Z", row.Timestamp(ts)},
		{row.TypeTimestamp, int64(5), row.TimestampMicros(5)},
		{row.TypeTimestamp, "2025-01-02T03:04:05.000006999Z", row.Timestamp(ts)}, // truncated to the microsecond
		{row.TypeTimestamp, "0000-01-01T00:00:00Z", row.Timestamp(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))},
		{row.TypeTimestamp, "9999-12-31T23:59:59.999999Z", row.Timestamp(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC))},
		{row.TypeFloat64, json.Number("4.9e-324"), row.Float64(5e-324)},
		{row.TypeFloat64, json.Number("0e-400"), row.Float64(0)},
		{row.TypeString, nil, row.Null()},
		{row.TypeInt64, row.Int64(3), row.Int64(3)},
	}
	for _, c := range ok {
		got, err := row.FromAny(c.typ, c.in)
		require.NoError(t, err, "%s %#v", c.typ, c.in)
		assert.True(t, c.want.Equal(got), "%s %#v: got %v want %v", c.typ, c.in, got, c.want)
	}
	bad := []struct {
		typ  row.Type
		in   any
		want string
	}{
		{row.TypeInt32, int64(math.MaxInt32 + 1), "must be an integer from -2147483648 to 2147483647, got the number 2147483648"},
		{row.TypeInt32, 1.5, "must be an integer from -2147483648 to 2147483647, got the number 1.5"},
		{row.TypeInt64, float64(1 << 63), "must be an integer from -9223372036854775808 to 9223372036854775807"},
		{row.TypeInt64, uint64(math.MaxUint64), "got the number 18446744073709551615"},
		{row.TypeInt64, json.Number("9223372036854775808"), "got the number 9223372036854775808"},
		{row.TypeInt64, "12", `must be an integer from -9223372036854775808 to 9223372036854775807, got the string "12"`},
		{row.TypeFloat64, "1", `must be a number, got the string "1"`},
		{row.TypeFloat64, json.Number("1e-400"), "got the number 1e-400: it is too small for a float64 and would be stored as 0"},
		{row.TypeFloat64, json.Number("-1e400"), "got the number -1e400: it is beyond the range of a float64"},
		{row.TypeBool, 1, "must be true or false, got the number 1"},
		{row.TypeString, 5, "must be a string, got the number 5"},
		{row.TypeString, json.Number("5"), "must be a string, got the number 5"},
		{row.TypeString, map[string]any{}, "must be a string, got an object"},
		{row.TypeString, []any{}, "must be a string, got an array"},
		{row.TypeString, "\xff", "is not valid UTF-8"},
		{row.TypeBytes, "!!", "must be a string of standard base64 (A-Z a-z 0-9 + /, padded with =): the string is not valid at offset 0"},
		{row.TypeBytes, "AB==", "the string is not valid at offset"}, // non-canonical: AA== is the encoding
		{row.TypeBytes, "_-8=", "offset 0"},                          // URL-safe alphabet
		{row.TypeTimestamp, "yesterday", `must be an RFC 3339 timestamp string such as "2026-01-02T03:04:05Z", got the string "yesterday"`},
		{row.TypeTimestamp, true, "must be an RFC 3339 timestamp string"},
		{row.TypeTimestamp, json.Number("1767323045"), "got the number 1767323045: a number does not say its unit"},
		{row.TypeTimestamp, 1767323045.0, "a number does not say its unit"},
		{row.TypeTimestamp, "10000-01-01T00:00:00Z", "must be an RFC 3339 timestamp string"},
		{row.TypeTimestamp, "9999-12-31T23:00:00-05:00", "outside the years 0000 to 9999"},
		{row.TypeTimestamp, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "outside the years 0000 to 9999"},
		{row.TypeTimestamp, time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC), "outside the years 0000 to 9999"},
		{row.TypeTimestamp, int64(math.MaxInt64), "outside the years 0000 to 9999"},
		{row.TypeInt64, row.String("x"), "must be an integer from -9223372036854775808 to 9223372036854775807, got a string value"},
	}
	for _, c := range bad {
		_, err := row.FromAny(c.typ, c.in)
		assert.ErrorContains(t, err, c.want, "%s %#v", c.typ, c.in)
	}
}

func TestValueAccessors(t *testing.T) {
	v := row.Int64(5)
	assert.Equal(t, int64(5), v.Int64())
	assert.Zero(t, v.Int32())
	assert.Zero(t, v.Str())
	assert.Nil(t, v.Bytes())
	assert.False(t, v.Bool())
	assert.Zero(t, v.Micros())
	assert.True(t, v.Timestamp().IsZero())
	assert.Equal(t, "5", v.String())
	assert.Equal(t, "NULL", row.Null().String())
	assert.Equal(t, `"a"`, row.String("a").String())
	assert.Equal(t, "0x00ff", row.Bytes([]byte{0, 255}).String())
	assert.Equal(t, "1970-01-01T00:00:01Z", row.TimestampMicros(1e6).String())
	assert.Nil(t, row.Null().Any())
	assert.False(t, row.String("\xff").ValidUTF8())
	assert.True(t, row.String("ok").ValidUTF8())
	b := []byte("abc")
	bv := row.Bytes(b)
	b[0] = 'z'
	assert.Equal(t, []byte("abc"), bv.Bytes(), "Bytes copies its input")
	assert.True(t, bv.Equal(row.BytesString("abc")))
	assert.Equal(t, "abc", bv.BytesView())
	assert.Zero(t, row.String("abc").BytesView(), "BytesView is for bytes values only")
	assert.Equal(t, row.TypeBytes, row.BytesString("").Type())
	r := row.Row{Updated: 1_500_000, Values: []row.Value{row.Int64(1)}}
	c := r.Clone()
	c.Values[0] = row.Int64(2)
	assert.Equal(t, int64(1), r.Values[0].Int64())
	assert.Equal(t, time.Unix(1, 5e8).UTC(), r.UpdatedTime())
}

// FuzzRoundTrip builds a row from fuzz input, one column per input chunk, and
// checks that it decodes to exactly what was encoded.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, int64(1), true)
	f.Add([]byte("\x05hello\x06\x00\xff"), int64(-5), false)
	f.Fuzz(func(t *testing.T, data []byte, seq int64, deleted bool) {
		var types []row.Type
		var vals []row.Value
		for len(data) > 0 && len(types) < 64 {
			c := data[0]
			data = data[1:]
			typ := allTypes[int(c)%len(allTypes)]
			types = append(types, typ)
			if c&0x80 != 0 {
				vals = append(vals, row.Null())
				continue
			}
			take := func(n int) []byte {
				if n > len(data) {
					n = len(data)
				}
				b := data[:n]
				data = data[n:]
				return b
			}
			u := binary.LittleEndian.Uint64(append(take(8), make([]byte, 8)...))
			switch typ {
			case row.TypeInt32:
				vals = append(vals, row.Int32(int32(u)))
			case row.TypeInt64:
				vals = append(vals, row.Int64(int64(u)))
			case row.TypeFloat64:
				vals = append(vals, row.Float64(math.Float64frombits(u)))
			case row.TypeBool:
				vals = append(vals, row.Bool(u&1 == 1))
			case row.TypeString:
				vals = append(vals, row.String(string(take(int(u%40)))))
			case row.TypeBytes:
				vals = append(vals, row.Bytes(take(int(u%40))))
			case row.TypeTimestamp:
				vals = append(vals, row.TimestampMicros(int64(u)))
			}
		}
		in := row.Row{Seq: seq, Updated: ^seq, Deleted: deleted, Values: vals}
		enc, err := row.Encode(nil, &in, types)
		if err != nil {
			t.Fatal(err)
		}
		var out row.Row
		if err := row.Decode(enc, types, &out); err != nil {
			t.Fatal(err)
		}
		if out.Seq != in.Seq || out.Updated != in.Updated || out.Deleted != in.Deleted || len(out.Values) != len(in.Values) {
			t.Fatalf("system columns or width differ: %+v vs %+v", out, in)
		}
		for i := range in.Values {
			if !in.Values[i].Equal(out.Values[i]) {
				t.Fatalf("column %d: %v != %v", i, out.Values[i], in.Values[i])
			}
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the decoder: it must never panic, and
// a row it accepts must encode and decode to the same row.
func FuzzDecode(f *testing.F) {
	types := []row.Type{row.TypeInt64, row.TypeString, row.TypeBool, row.TypeFloat64, row.TypeBytes, row.TypeInt32, row.TypeTimestamp}
	good, _ := row.Encode(nil, &row.Row{Seq: 1, Values: []row.Value{row.Int64(1), row.String("a"), row.Bool(true), row.Null(), row.Bytes([]byte{0}), row.Int32(-2), row.TimestampMicros(3)}}, types)
	f.Add(good)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r row.Row
		if err := row.Decode(data, types, &r); err != nil {
			return
		}
		enc, err := row.Encode(nil, &r, types)
		if err != nil {
			t.Fatalf("decoded row does not encode: %v", err)
		}
		var again row.Row
		if err := row.Decode(enc, types, &again); err != nil {
			t.Fatalf("re-encoded row does not decode: %v", err)
		}
		assert.Equal(t, r, again)
	})
}

func benchRow() (row.Row, []row.Type) {
	types := []row.Type{row.TypeInt64, row.TypeString, row.TypeFloat64, row.TypeBool, row.TypeTimestamp, row.TypeBytes}
	return row.Row{Seq: 123456, Updated: 1_700_000_000_000_000, Values: []row.Value{
		row.Int64(42), row.String("user-name-0042"), row.Float64(3.25), row.Bool(true),
		row.TimestampMicros(1_700_000_000_000_000), row.Bytes(make([]byte, 64)),
	}}, types
}

func BenchmarkEncode(b *testing.B) {
	r, types := benchRow()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = row.Encode(buf[:0], &r, types); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	r, types := benchRow()
	enc, _ := row.Encode(nil, &r, types)
	var out row.Row
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := row.Decode(enc, types, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOwned(b *testing.B) {
	r, types := benchRow()
	enc, _ := row.Encode(nil, &r, types)
	var out row.Row
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := row.DecodeOwned(enc, types, &out); err != nil {
			b.Fatal(err)
		}
	}
}
