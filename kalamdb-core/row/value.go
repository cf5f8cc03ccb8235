// Package row defines column types, typed values, rows with their system
// columns, and the row codec that stores rows as backend values.
//
// A Value is a small tagged union (24 bytes) that holds one cell of any
// column type, or null. A Row carries the values of a table's columns in
// schema order plus the system columns _seq, _updated and _deleted. See ADR-004 for the binary row encoding.
package row

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Type is a column type. The zero Type is not a valid column type; a Value
// of the zero Type is null.
type Type uint8

// The column types. Timestamps are microseconds since the Unix epoch, UTC.
const (
	TypeInt32 Type = iota + 1
	TypeInt64
	TypeFloat64
	TypeBool
	TypeString
	TypeBytes
	TypeTimestamp
)

var typeNames = [...]string{
	TypeInt32:     "int32",
	TypeInt64:     "int64",
	TypeFloat64:   "float64",
	TypeBool:      "bool",
	TypeString:    "string",
	TypeBytes:     "bytes",
	TypeTimestamp: "timestamp",
}

// Types lists every valid column type.
var Types = []Type{TypeInt32, TypeInt64, TypeFloat64, TypeBool, TypeString, TypeBytes, TypeTimestamp}

// Valid reports whether t is one of the column types.
func (t Type) Valid() bool { return t >= TypeInt32 && t <= TypeTimestamp }

// String returns the type's name ("int64", …), "null" for the zero Type and
// "Type(n)" for an unknown one.
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	if t == 0 {
		return "null"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// ParseType returns the type called name, one of int32, int64, float64,
// bool, string, bytes and timestamp.
func ParseType(name string) (Type, error) {
	for _, t := range Types {
		if typeNames[t] == name {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown column type %q; the types are int32, int64, float64, bool, string, bytes and timestamp", name)
}

// MarshalText encodes t as its name.
func (t Type) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("cannot encode invalid column type %d", uint8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes a type name.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// fixedWidth returns the encoded width of a fixed-width type, or 0.
func (t Type) fixedWidth() int {
	switch t {
	case TypeInt32:
		return 4
	case TypeInt64, TypeFloat64, TypeTimestamp:
		return 8
	case TypeBool:
		return 1
	}
	return 0
}

// Value is one cell: a value of a column type, or null (the zero Value).
// Build values with the constructors (Int64, String, Null, …). Accessors of
// another type than the value's return the zero value of their result.
//
// A Value is 24 bytes: a string and a word. A string or bytes value holds
// its payload in s and its type in n. A fixed-width value holds its bits in
// n and, in s, its type's tag: a string into the package's private tags
// array, whose address gives the type. So the type costs no field, a page
// of rows is a quarter smaller than with one, and reflect.DeepEqual (which
// tests use to compare rows) still compares payloads by content. Compare
// values with Equal: == compares fields, and a bytes value whose content
// is a tag could equal a fixed-width value under ==.
type Value struct {
	s string // string and bytes payloads; a fixed-width type's tag
	n uint64 // int32, int64, float64 bits, bool, timestamp micros; the type of a string or bytes value
}

// tagLen is the length of a tag: a power of two, so that Type divides by a
// shift.
const tagLen = 16

// tags holds one tag per type, tagLen bytes each. Only fixed-width values
// refer to it, and no accessor returns a fixed-width value's s, so no other
// string can point into it. Its content only makes a tag unlikely to equal
// a payload: the type comes from the address.
var tags = func() (a [(TypeTimestamp + 1) * tagLen]byte) {
	for t := range TypeTimestamp + 1 {
		copy(a[int(t)*tagLen:], "\x00\xffkalamdb:type:")
		a[int(t)*tagLen+tagLen-1] = byte(t)
	}
	return a
}()

// fixed returns the fixed-width value of type t with bits n.
func fixed(t Type, n uint64) Value {
	return Value{s: unsafe.String(&tags[int(t)*tagLen], tagLen), n: n}
}

// payload returns the string or bytes value of type t holding s.
func payload(t Type, s string) Value { return Value{s: s, n: uint64(t)} }

// Null returns the null value.
func Null() Value { return Value{} }

// Int32 returns an int32 value.
func Int32(v int32) Value { return fixed(TypeInt32, uint64(int64(v))) }

// Int64 returns an int64 value.
func Int64(v int64) Value { return fixed(TypeInt64, uint64(v)) }

// Float64 returns a float64 value; every bit pattern, NaN payloads and -0
// included, is kept exactly.
func Float64(v float64) Value { return fixed(TypeFloat64, math.Float64bits(v)) }

// Bool returns a bool value.
func Bool(v bool) Value {
	if v {
		return fixed(TypeBool, 1)
	}
	return fixed(TypeBool, 0)
}

// String returns a string value. Tables accept only valid UTF-8 in string
// columns; use Bytes for arbitrary bytes.
func String(v string) Value { return payload(TypeString, v) }

// Bytes returns a bytes value holding a copy of v.
func Bytes(v []byte) Value { return payload(TypeBytes, string(v)) }

// BytesString returns a bytes value holding the bytes of s, without a
// copy (strings are immutable, so the value stays valid).
func BytesString(s string) Value { return payload(TypeBytes, s) }

// Timestamp returns a timestamp value: t in microseconds since the Unix
// epoch (finer precision is truncated; the location is dropped, the value is
// UTC).
func Timestamp(t time.Time) Value { return TimestampMicros(t.UnixMicro()) }

// TimestampMicros returns a timestamp value of us microseconds since the
// Unix epoch.
func TimestampMicros(us int64) Value { return fixed(TypeTimestamp, uint64(us)) }

// Type returns the value's type, or 0 for null.
func (v Value) Type() Type {
	if d := uintptr(unsafe.Pointer(unsafe.StringData(v.s))) - uintptr(unsafe.Pointer(&tags)); d < uintptr(len(tags)) {
		return Type(d / tagLen)
	}
	return Type(v.n)
}

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.n == 0 && len(v.s) == 0 }

// Int32 returns the value of an int32 Value.
func (v Value) Int32() int32 {
	if v.Type() != TypeInt32 {
		return 0
	}
	return int32(int64(v.n))
}

// Int64 returns the value of an int64 Value.
func (v Value) Int64() int64 {
	if v.Type() != TypeInt64 {
		return 0
	}
	return int64(v.n)
}

// Float64 returns the value of a float64 Value.
func (v Value) Float64() float64 {
	if v.Type() != TypeFloat64 {
		return 0
	}
	return math.Float64frombits(v.n)
}

// Bool returns the value of a bool Value.
func (v Value) Bool() bool { return v.Type() == TypeBool && v.n != 0 }

// Str returns the value of a string Value.
func (v Value) Str() string {
	if v.Type() != TypeString {
		return ""
	}
	return v.s
}

// Bytes returns a copy of the value of a bytes Value (nil for other types).
func (v Value) Bytes() []byte {
	if v.Type() != TypeBytes {
		return nil
	}
	return []byte(v.s)
}

// BytesView returns the content of a bytes Value as a string, without the
// copy Bytes makes ("" for other types).
func (v Value) BytesView() string {
	if v.Type() != TypeBytes {
		return ""
	}
	return v.s
}

// Micros returns the microseconds of a timestamp Value.
func (v Value) Micros() int64 {
	if v.Type() != TypeTimestamp {
		return 0
	}
	return int64(v.n)
}

// Timestamp returns the time of a timestamp Value, in UTC.
func (v Value) Timestamp() time.Time {
	if v.Type() != TypeTimestamp {
		return time.Time{}
	}
	return time.UnixMicro(int64(v.n)).UTC()
}

// Len returns the payload length of a string or bytes Value, else 0.
func (v Value) Len() int {
	switch v.Type() {
	case TypeString, TypeBytes:
		return len(v.s)
	}
	return 0
}

// Equal reports whether v and w are the same value: same type and the same
// bits (so a NaN equals itself and -0 differs from +0).
func (v Value) Equal(w Value) bool { return v == w && v.Type() == w.Type() }

// Any returns v as a Go value: nil, int32, int64, float64, bool, string,
// []byte or time.Time (UTC).
func (v Value) Any() any {
	switch v.Type() {
	case TypeInt32:
		return v.Int32()
	case TypeInt64:
		return v.Int64()
	case TypeFloat64:
		return v.Float64()
	case TypeBool:
		return v.Bool()
	case TypeString:
		return v.s
	case TypeBytes:
		return v.Bytes()
	case TypeTimestamp:
		return v.Timestamp()
	}
	return nil
}

// String formats v for people: NULL, numbers, quoted strings, bytes in hex
// and timestamps in RFC 3339.
func (v Value) String() string {
	switch v.Type() {
	case 0:
		return "NULL"
	case TypeString:
		return strconv.Quote(v.s)
	case TypeBytes:
		return fmt.Sprintf("0x%x", v.s)
	case TypeTimestamp:
		return v.Timestamp().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v.Any())
}

// ValidUTF8 reports whether a string Value holds valid UTF-8 (true for other
// types).
func (v Value) ValidUTF8() bool { return v.Type() != TypeString || utf8.ValidString(v.s) }

// FromAny converts a Go value, such as one decoded from JSON with
// json.Decoder.UseNumber, to a Value of type t. nil gives null. Accepted
// inputs:
//
//   - int32, int64: any Go integer or json.Number in range, or a float64
//     with an integral value in range;
//   - float64: any Go number or json.Number; a json.Number too small to be
//     told from zero (1e-400) or too large (1e400) is refused, not rounded;
//   - bool: a bool;
//   - string: a string (it must be valid UTF-8);
//   - bytes: a []byte, or a string in standard, padded base64 (how
//     encoding/json writes []byte); non-canonical padding bits are refused;
//   - timestamp: a time.Time, an RFC 3339 string, or a Go integer of
//     microseconds since the Unix epoch. A json.Number is refused: a bare
//     number in JSON does not say its unit. Digits finer than a microsecond
//     are truncated, and the time must lie in the years 0000 to 9999 (see
//     CheckTimestamp).
//
// The error says, in words, what was expected and what was given, not
// which column it was for.
func FromAny(t Type, x any) (Value, error) {
	if x == nil {
		return Null(), nil
	}
	if v, ok := x.(Value); ok {
		if vt := v.Type(); vt != 0 && vt != t {
			return Value{}, fmt.Errorf("must be %s, got a %s value", want(t), vt)
		}
		return v, nil
	}
	switch t {
	case TypeInt32:
		i, err := toInt(x, math.MinInt32, math.MaxInt32)
		if err != nil {
			return Value{}, err
		}
		return Int32(int32(i)), nil
	case TypeInt64:
		i, err := toInt(x, math.MinInt64, math.MaxInt64)
		if err != nil {
			return Value{}, err
		}
		return Int64(i), nil
	case TypeFloat64:
		f, err := toFloat(x)
		if err != nil {
			return Value{}, err
		}
		return Float64(f), nil
	case TypeBool:
		b, ok := x.(bool)
		if !ok {
			return Value{}, fmt.Errorf("must be %s, got %s", want(t), describe(x))
		}
		return Bool(b), nil
	case TypeString:
		s, ok := x.(string)
		if !ok {
			return Value{}, fmt.Errorf("must be %s, got %s", want(t), describe(x))
		}
		if !utf8.ValidString(s) {
			return Value{}, fmt.Errorf("is not valid UTF-8")
		}
		return String(s), nil
	case TypeBytes:
		switch b := x.(type) {
		case []byte:
			return Bytes(b), nil
		case string:
			raw, err := base64.StdEncoding.Strict().DecodeString(b)
			if err != nil {
				return Value{}, fmt.Errorf("must be %s: %s", want(t), base64Problem(err))
			}
			return payload(TypeBytes, string(raw)), nil
		}
		return Value{}, fmt.Errorf("must be %s, got %s", want(t), describe(x))
	case TypeTimestamp:
		var v Value
		switch ts := x.(type) {
		case time.Time:
			if y := ts.UTC().Year(); y < 0 || y > 9999 {
				return Value{}, fmt.Errorf("is outside the years 0000 to 9999 (UTC) that an RFC 3339 timestamp can write")
			}
			v = Timestamp(ts)
		case string:
			parsed, err := time.Parse(time.RFC3339Nano, ts)
			if err == nil && parsed.UTC().Year() > 9999 {
				// 9999-12-31T23:00:00-05:00 is in year 10000 in UTC.
				return Value{}, fmt.Errorf("is outside the years 0000 to 9999 (UTC) that an RFC 3339 timestamp can write")
			}
			if err != nil {
				return Value{}, fmt.Errorf("must be %s, got %s", want(t), describe(x))
			}
			v = Timestamp(parsed)
		case json.Number, float32, float64:
			return Value{}, fmt.Errorf("must be %s, got %s: a number does not say its unit", want(t), describe(x))
		default:
			i, err := toInt(x, math.MinInt64, math.MaxInt64)
			if err != nil {
				return Value{}, fmt.Errorf("must be %s, got %s", want(t), describe(x))
			}
			v = TimestampMicros(i)
		}
		if err := CheckTimestamp(v); err != nil {
			return Value{}, err
		}
		return v, nil
	}
	return Value{}, fmt.Errorf("invalid column type %s", t)
}

// The range of timestamps, in microseconds since the Unix epoch: the years
// 0000 to 9999, all that RFC 3339 can write.
var (
	minTimestamp = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxTimestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() - 1
)

// CheckTimestamp reports a timestamp Value outside the years 0000 to 9999
// (UTC), which RFC 3339 cannot write; other values pass.
func CheckTimestamp(v Value) error {
	if v.Type() != TypeTimestamp {
		return nil
	}
	if us := int64(v.n); us < minTimestamp || us > maxTimestamp {
		return fmt.Errorf("is outside the years 0000 to 9999 (UTC) that an RFC 3339 timestamp can write")
	}
	return nil
}

// want says, in words, what a value of type t looks like in JSON.
func want(t Type) string {
	switch t {
	case TypeInt32:
		return "an integer from -2147483648 to 2147483647"
	case TypeInt64:
		return "an integer from -9223372036854775808 to 9223372036854775807"
	case TypeFloat64:
		return "a number"
	case TypeBool:
		return "true or false"
	case TypeString:
		return "a string"
	case TypeBytes:
		return "a string of standard base64 (A-Z a-z 0-9 + /, padded with =)"
	case TypeTimestamp:
		return `an RFC 3339 timestamp string such as "2026-01-02T03:04:05Z"`
	}
	return t.String()
}

// describe says, in words, what a Go value decoded from JSON is.
func describe(x any) string {
	switch v := x.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%t", v)
	case string:
		if len(v) > 40 {
			return fmt.Sprintf("the string %q…", truncateUTF8(v, 40))
		}
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case float32, float64, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("the number %v", v)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case []byte:
		return "bytes"
	case time.Time:
		return "a time"
	}
	return fmt.Sprintf("a value of Go type %T", x)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// base64Problem says what is wrong with a string that is not base64.
func base64Problem(err error) string {
	var bad base64.CorruptInputError
	if errors.As(err, &bad) {
		return fmt.Sprintf("the string is not valid at offset %d", int64(bad))
	}
	return "the string is not valid base64"
}

func toInt(x any, lo, hi int64) (int64, error) {
	var i int64
	rangeErr := func() error {
		if lo == math.MinInt32 {
			return fmt.Errorf("must be %s, got %s", want(TypeInt32), describe(x))
		}
		return fmt.Errorf("must be %s, got %s", want(TypeInt64), describe(x))
	}
	switch n := x.(type) {
	case int:
		i = int64(n)
	case int8:
		i = int64(n)
	case int16:
		i = int64(n)
	case int32:
		i = int64(n)
	case int64:
		i = n
	case uint:
		if uint64(n) > math.MaxInt64 {
			return 0, rangeErr()
		}
		i = int64(n)
	case uint8:
		i = int64(n)
	case uint16:
		i = int64(n)
	case uint32:
		i = int64(n)
	case uint64:
		if n > math.MaxInt64 {
			return 0, rangeErr()
		}
		i = int64(n)
	case float32:
		return floatToInt(float64(n), lo, hi, rangeErr)
	case float64:
		return floatToInt(n, lo, hi, rangeErr)
	case json.Number:
		v, err := n.Int64()
		if err != nil {
			return 0, rangeErr()
		}
		i = v
	default:
		return 0, rangeErr()
	}
	if i < lo || i > hi {
		return 0, rangeErr()
	}
	return i, nil
}

func floatToInt(f float64, lo, hi int64, rangeErr func() error) (int64, error) {
	// float64(hi) rounds MaxInt64 up to 2^63, so compare with >=.
	if f != math.Trunc(f) || math.IsInf(f, 0) || f < float64(lo) || f >= float64(hi)+1 {
		return 0, rangeErr()
	}
	return int64(f), nil
}

func toFloat(x any) (float64, error) {
	switch n := x.(type) {
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case int:
		return float64(n), nil
	case int8:
		return float64(n), nil
	case int16:
		return float64(n), nil
	case int32:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case uint:
		return float64(n), nil
	case uint8:
		return float64(n), nil
	case uint16:
		return float64(n), nil
	case uint32:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	case json.Number:
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return 0, fmt.Errorf("must be %s, got %s: it is beyond the range of a float64", want(TypeFloat64), describe(x))
		}
		if f == 0 && nonZeroMantissa(string(n)) {
			return 0, fmt.Errorf("must be %s, got %s: it is too small for a float64 and would be stored as 0", want(TypeFloat64), describe(x))
		}
		return f, nil
	}
	return 0, fmt.Errorf("must be %s, got %s", want(TypeFloat64), describe(x))
}

// nonZeroMantissa reports whether the number n (JSON syntax) has a non-zero
// digit before its exponent.
func nonZeroMantissa(n string) bool {
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case c == 'e' || c == 'E':
			return false
		case c >= '1' && c <= '9':
			return true
		}
	}
	return false
}
