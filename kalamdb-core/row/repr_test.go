package row

import (
	"math"
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Value's representation: the type comes from the tag's address for
// fixed-width values and from n for payloads, so every constructor must
// give back its type, and no payload may be mistaken for a tag.
func TestValueRepresentation(t *testing.T) {
	require.EqualValues(t, 24, unsafe.Sizeof(Value{}), "a Value is a string and a word")
	cases := []struct {
		v    Value
		typ  Type
		size int
	}{
		{Null(), 0, 0},
		{Int32(math.MinInt32), TypeInt32, 0},
		{Int64(0), TypeInt64, 0},
		{Int64(int64(TypeString)), TypeInt64, 0},
		{Float64(math.Copysign(0, -1)), TypeFloat64, 0},
		{Bool(false), TypeBool, 0},
		{Bool(true), TypeBool, 0},
		{String(""), TypeString, 0},
		{String("abc"), TypeString, 3},
		{Bytes(nil), TypeBytes, 0},
		{BytesString("xy"), TypeBytes, 2},
		{TimestampMicros(0), TypeTimestamp, 0},
	}
	for _, c := range cases {
		assert.Equal(t, c.typ, c.v.Type(), "%v", c.v)
		assert.Equal(t, c.typ == 0, c.v.IsNull(), "%v", c.v)
		assert.Equal(t, c.size, c.v.Len(), "%v", c.v)
		assert.True(t, c.v.Equal(c.v), "%v", c.v)
		for _, d := range cases {
			if c != d {
				assert.False(t, c.v.Equal(d.v), "%v equals %v", c.v, d.v)
			}
		}
	}
	// A payload whose bytes are a tag's, even of the same length and with
	// n equal to the fixed value's bits, keeps its own type.
	for typ := range TypeTimestamp + 1 {
		tag := string(tags[int(typ)*tagLen : int(typ+1)*tagLen])
		for _, p := range []Value{String(tag), BytesString(tag), Bytes([]byte(tag))} {
			assert.Equal(t, Type(p.n), p.Type(), "payload %q", tag)
			assert.Equal(t, tagLen, p.Len())
			f := fixed(typ, p.n)
			if typ.fixedWidth() > 0 {
				assert.False(t, p.Equal(f), "%v equals %v", p, f)
			}
		}
	}
}

// Rows compared by reflect.DeepEqual (require.Equal) compare payloads by
// content, wherever their bytes live.
func TestValueDeepEqualComparesContent(t *testing.T) {
	a := []Value{String(string([]byte("payload"))), Bytes([]byte{1, 2}), Int64(7), Null()}
	b := []Value{String(string([]byte("payload"))), BytesString("\x01\x02"), Int64(7), Null()}
	require.NotSame(t, unsafe.StringData(a[0].s), unsafe.StringData(b[0].s))
	assert.True(t, reflect.DeepEqual(a, b))
	b[0] = String("payloaD")
	assert.False(t, reflect.DeepEqual(a, b))
	assert.False(t, reflect.DeepEqual([]Value{Int64(7)}, []Value{TimestampMicros(7)}))
	assert.False(t, reflect.DeepEqual([]Value{String("a")}, []Value{BytesString("a")}))
}

func TestRowFill(t *testing.T) {
	r := Row{Values: []Value{Int64(1), String("a")}}
	r.Fill(4)
	require.Len(t, r.Values, 4)
	assert.True(t, r.Values[2].IsNull() && r.Values[3].IsNull())
	assert.Equal(t, int64(1), r.Values[0].Int64())

	// In place when the capacity allows, clearing what the slice held.
	backing := []Value{Int64(1), String("stale"), Bool(true)}
	r = Row{Values: backing[:1]}
	r.Fill(3)
	require.Len(t, r.Values, 3)
	assert.Same(t, &backing[0], &r.Values[0])
	assert.True(t, r.Values[1].IsNull() && r.Values[2].IsNull(), "old values beyond the length are cleared")

	r.Fill(2)
	assert.Len(t, r.Values, 3, "never shortened")
}
