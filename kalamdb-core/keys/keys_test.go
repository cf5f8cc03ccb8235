package keys_test

import (
	"bytes"
	"cmp"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
)

var tricky = [][]byte{
	{}, {0}, {0, 0}, {0, 1}, {0, 0xFF}, {1}, {0xFF}, {0xFF, 0}, {0xFF, 0xFF},
	[]byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("a:"), []byte("a:b"), []byte("ab"),
	[]byte("user:1"), []byte("user\x001"), []byte("user"), []byte("b"),
}

func TestBytesOrderAndRoundTrip(t *testing.T) {
	for _, a := range tricky {
		ea := keys.AppendBytes(nil, a)
		got, rest, err := keys.DecodeBytes(ea)
		require.NoError(t, err)
		assert.Equal(t, a, got)
		assert.Empty(t, rest)
		for _, b := range tricky {
			eb := keys.AppendBytes(nil, b)
			assert.Equal(t, bytes.Compare(a, b), bytes.Compare(ea, eb), "order of %q and %q", a, b)
			if !bytes.Equal(a, b) {
				assert.False(t, bytes.HasPrefix(eb, ea), "%q encodes to a prefix of %q", a, b)
			}
		}
	}
}

func TestStringMatchesBytes(t *testing.T) {
	for _, a := range tricky {
		assert.Equal(t, keys.AppendBytes(nil, a), keys.AppendString(nil, string(a)))
		s, rest, err := keys.DecodeString(keys.AppendString([]byte("x"), string(a))[1:])
		require.NoError(t, err)
		assert.Equal(t, string(a), s)
		assert.Empty(t, rest)
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, src := range [][]byte{nil, {}, {'a'}, {0}, {'a', 0}, {0, 2}, {0, 0}, {'x', 0, 0xFF}} {
		_, _, err := keys.DecodeBytes(src)
		assert.ErrorIs(t, err, keys.ErrMalformed, "%q", src)
		_, err = keys.SkipBytes(src)
		assert.ErrorIs(t, err, keys.ErrMalformed, "%q", src)
	}
	_, _, err := keys.DecodeInt64([]byte{1, 2, 3})
	assert.ErrorIs(t, err, keys.ErrMalformed)
	_, _, err = keys.DecodeInt32([]byte{1, 2, 3})
	assert.ErrorIs(t, err, keys.ErrMalformed)
	_, _, err = keys.DecodeUint64(nil)
	assert.ErrorIs(t, err, keys.ErrMalformed)
	_, _, err = keys.DecodeFloat64([]byte{1})
	assert.ErrorIs(t, err, keys.ErrMalformed)
	_, _, err = keys.DecodeBool([]byte{2})
	assert.ErrorIs(t, err, keys.ErrMalformed)
	_, _, err = keys.DecodeBool(nil)
	assert.ErrorIs(t, err, keys.ErrMalformed)
}

func TestIntegersOrder(t *testing.T) {
	vals := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 32, -2, -1, 0, 1, 2, 1 << 32, math.MaxInt64 - 1, math.MaxInt64}
	for i := 1; i < len(vals); i++ {
		assert.Negative(t, bytes.Compare(keys.AppendInt64(nil, vals[i-1]), keys.AppendInt64(nil, vals[i])))
	}
	v32 := []int32{math.MinInt32, -1, 0, 1, math.MaxInt32}
	for i := 1; i < len(v32); i++ {
		assert.Negative(t, bytes.Compare(keys.AppendInt32(nil, v32[i-1]), keys.AppendInt32(nil, v32[i])))
	}
	assert.Negative(t, bytes.Compare(keys.AppendBool(nil, false), keys.AppendBool(nil, true)))
	b, rest, err := keys.DecodeBool(keys.AppendBool(nil, true))
	require.NoError(t, err)
	assert.True(t, b)
	assert.Empty(t, rest)
}

func TestFloatTotalOrder(t *testing.T) {
	negNaN := math.Float64frombits(0xFFF8000000000001)
	vals := []float64{negNaN, math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64,
		math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, 1, math.MaxFloat64, math.Inf(1), math.NaN()}
	for i := 1; i < len(vals); i++ {
		assert.Negative(t, bytes.Compare(keys.AppendFloat64(nil, vals[i-1]), keys.AppendFloat64(nil, vals[i])),
			"%v < %v", vals[i-1], vals[i])
	}
}

// totalOrder is the IEEE 754 totalOrder predicate as a three-way compare,
// written independently of the encoding.
func totalOrder(a, b float64) int {
	sa, sb := math.Signbit(a), math.Signbit(b)
	if sa != sb {
		if sa {
			return -1
		}
		return 1
	}
	ua, ub := math.Float64bits(a)&^(1<<63), math.Float64bits(b)&^(1<<63)
	// Magnitude bits order non-negative floats (NaNs above Inf); a negative
	// sign reverses the order.
	if sa {
		return cmp.Compare(ub, ua)
	}
	return cmp.Compare(ua, ub)
}

func FuzzBytes(f *testing.F) {
	for i, a := range tricky {
		f.Add(a, tricky[(i+3)%len(tricky)])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ea, eb := keys.AppendBytes(nil, a), keys.AppendBytes(nil, b)
		if got, want := bytes.Compare(ea, eb), bytes.Compare(a, b); got != want {
			t.Fatalf("order of %q, %q: encoded %d, logical %d", a, b, got, want)
		}
		if !bytes.Equal(a, b) && (bytes.HasPrefix(ea, eb) || bytes.HasPrefix(eb, ea)) {
			t.Fatalf("encodings of %q and %q are prefixes of one another", a, b)
		}
		joined := append(append([]byte(nil), ea...), eb...)
		da, rest, err := keys.DecodeBytes(joined)
		if err != nil || !bytes.Equal(da, a) {
			t.Fatalf("decode %q: %q, %v", a, da, err)
		}
		skipped, err := keys.SkipBytes(joined)
		if err != nil || !bytes.Equal(skipped, rest) {
			t.Fatalf("skip %q: %v", a, err)
		}
		db, rest, err := keys.DecodeBytes(rest)
		if err != nil || !bytes.Equal(db, b) || len(rest) != 0 {
			t.Fatalf("decode %q: %q, %q, %v", b, db, rest, err)
		}
	})
}

// FuzzTuple checks that keys made of a bytes component followed by an int64
// (the shape of a user-table key) sort as the tuples do.
func FuzzTuple(f *testing.F) {
	f.Add([]byte("u"), int64(1), []byte("u\x00"), int64(-1))
	f.Add([]byte("a:b"), int64(5), []byte("a"), int64(7))
	f.Fuzz(func(t *testing.T, a []byte, i int64, b []byte, j int64) {
		ka := keys.AppendInt64(keys.AppendBytes(nil, a), i)
		kb := keys.AppendInt64(keys.AppendBytes(nil, b), j)
		want := bytes.Compare(a, b)
		if want == 0 {
			want = cmp.Compare(i, j)
		}
		if got := bytes.Compare(ka, kb); got != want {
			t.Fatalf("(%q,%d) vs (%q,%d): encoded %d, logical %d", a, i, b, j, got, want)
		}
		rest, err := keys.SkipBytes(ka)
		if err != nil {
			t.Fatal(err)
		}
		if gi, rest, err := keys.DecodeInt64(rest); err != nil || gi != i || len(rest) != 0 {
			t.Fatalf("int64 %d: got %d, %v", i, gi, err)
		}
	})
}

func FuzzNumbers(f *testing.F) {
	f.Add(int64(0), int64(-1), uint64(0), uint64(1<<63))
	f.Add(int64(math.MinInt64), int64(math.MaxInt64), math.Float64bits(math.NaN()), math.Float64bits(math.Inf(-1)))
	f.Fuzz(func(t *testing.T, i, j int64, fa, fb uint64) {
		if got, want := bytes.Compare(keys.AppendInt64(nil, i), keys.AppendInt64(nil, j)), cmp.Compare(i, j); got != want {
			t.Fatalf("int64 %d vs %d: %d, want %d", i, j, got, want)
		}
		i32, j32 := int32(i), int32(j)
		if got, want := bytes.Compare(keys.AppendInt32(nil, i32), keys.AppendInt32(nil, j32)), cmp.Compare(i32, j32); got != want {
			t.Fatalf("int32 %d vs %d: %d, want %d", i32, j32, got, want)
		}
		if got, _, err := keys.DecodeInt32(keys.AppendInt32(nil, i32)); err != nil || got != i32 {
			t.Fatalf("int32 %d round trip: %d, %v", i32, got, err)
		}
		if got, _, err := keys.DecodeUint64(keys.AppendUint64(nil, fa)); err != nil || got != fa {
			t.Fatalf("uint64 %d round trip: %d, %v", fa, got, err)
		}
		if got, want := bytes.Compare(keys.AppendUint64(nil, fa), keys.AppendUint64(nil, fb)), cmp.Compare(fa, fb); got != want {
			t.Fatalf("uint64 %d vs %d: %d, want %d", fa, fb, got, want)
		}
		a, b := math.Float64frombits(fa), math.Float64frombits(fb)
		if got, want := bytes.Compare(keys.AppendFloat64(nil, a), keys.AppendFloat64(nil, b)), totalOrder(a, b); got != want {
			t.Fatalf("float %v (%#x) vs %v (%#x): %d, want %d", a, fa, b, fb, got, want)
		}
		if got, _, err := keys.DecodeFloat64(keys.AppendFloat64(nil, a)); err != nil || math.Float64bits(got) != fa {
			t.Fatalf("float %#x round trip: %#x, %v", fa, math.Float64bits(got), err)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the decoders: they must not panic, and
// what they accept must re-encode to the bytes they consumed.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 1})
	f.Add([]byte{'a', 0, 0xFF, 0, 1, 9})
	f.Add([]byte{0, 7})
	f.Fuzz(func(t *testing.T, src []byte) {
		v, rest, err := keys.DecodeBytes(src)
		srest, serr := keys.SkipBytes(src)
		if (err == nil) != (serr == nil) {
			t.Fatalf("DecodeBytes and SkipBytes disagree on %q: %v vs %v", src, err, serr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(rest, srest) {
			t.Fatalf("rest differs: %q vs %q", rest, srest)
		}
		consumed := src[:len(src)-len(rest)]
		if re := keys.AppendBytes(nil, v); !bytes.Equal(re, consumed) {
			t.Fatalf("%q decodes to %q which encodes to %q", consumed, v, re)
		}
	})
}
