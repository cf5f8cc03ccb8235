// Package keys is the one key encoding of kalamdb-core: every table store
// builds its backend keys with it.
//
// Each Append function writes one component whose encoding is
//
//   - order-preserving: for two values of the same type, bytes.Compare of
//     the encodings equals the logical order of the values; so a key built by
//     appending components in a fixed order sorts like the tuple of its
//     components;
//   - self-delimiting and collision-free: the encoding of a value is never a
//     prefix of the encoding of another value of its type, for any bytes
//     (0x00, 0xFF and ':' included). A key prefix made of whole components
//     therefore selects exactly the keys whose leading components are equal,
//     which is how a user's rows are kept apart from every other user's.
//
// Variable-length values (bytes, strings) escape 0x00 as 0x00 0xFF and end
// with the terminator 0x00 0x01. Integers are big-endian with the sign bit
// flipped; floats use the IEEE 754 total order. The Decode functions read a
// component back and return the rest of the key; they fail on malformed
// input, never panic.
package keys

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrMalformed reports a key component that cannot be decoded.
var ErrMalformed = errors.New("keys: malformed key")

const (
	escape     = 0x00
	escaped00  = 0xFF
	terminator = 0x01
)

// AppendBytes appends the encoding of b to dst and returns the extended
// slice.
func AppendBytes(dst, b []byte) []byte {
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			break
		}
		dst = append(dst, b[:i]...)
		dst = append(dst, escape, escaped00)
		b = b[i+1:]
	}
	dst = append(dst, b...)
	return append(dst, escape, terminator)
}

// AppendString appends the encoding of s, the same as AppendBytes of its
// bytes.
func AppendString(dst []byte, s string) []byte {
	for {
		i := indexZero(s)
		if i < 0 {
			break
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, escape, escaped00)
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, escape, terminator)
}

func indexZero(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

// BytesLen returns the length of the encoding of a value of n bytes of
// which z are 0x00.
func BytesLen(n, z int) int { return n + z + 2 }

// DecodeBytes decodes a bytes component from the front of src. It returns
// the value (a new slice) and the rest of src.
func DecodeBytes(src []byte) (value, rest []byte, err error) {
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != escape {
			out = append(out, c)
			continue
		}
		if i+1 >= len(src) {
			return nil, nil, fmt.Errorf("%w: bytes component has a dangling 0x00 at offset %d", ErrMalformed, i)
		}
		switch src[i+1] {
		case escaped00:
			out = append(out, 0)
			i++
		case terminator:
			return out, src[i+2:], nil
		default:
			return nil, nil, fmt.Errorf("%w: bytes component has 0x00 0x%02X at offset %d", ErrMalformed, src[i+1], i)
		}
	}
	return nil, nil, fmt.Errorf("%w: bytes component has no terminator", ErrMalformed)
}

// SkipBytes returns the rest of src after a bytes component, without
// decoding it.
func SkipBytes(src []byte) (rest []byte, err error) {
	off := 0
	for {
		i := bytes.IndexByte(src[off:], escape)
		if i < 0 || off+i+1 >= len(src) {
			return nil, fmt.Errorf("%w: bytes component has no terminator", ErrMalformed)
		}
		off += i
		switch src[off+1] {
		case escaped00:
			off += 2
		case terminator:
			return src[off+2:], nil
		default:
			return nil, fmt.Errorf("%w: bytes component has 0x00 0x%02X at offset %d", ErrMalformed, src[off+1], off)
		}
	}
}

// DecodeString decodes a component written by AppendString.
func DecodeString(src []byte) (value string, rest []byte, err error) {
	b, rest, err := DecodeBytes(src)
	if err != nil {
		return "", nil, err
	}
	return string(b), rest, nil
}

// AppendUint64 appends v as 8 big-endian bytes.
func AppendUint64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

// DecodeUint64 decodes a component written by AppendUint64.
func DecodeUint64(src []byte) (uint64, []byte, error) {
	if len(src) < 8 {
		return 0, nil, fmt.Errorf("%w: uint64 component needs 8 bytes, has %d", ErrMalformed, len(src))
	}
	return binary.BigEndian.Uint64(src), src[8:], nil
}

// AppendInt64 appends v as 8 big-endian bytes with the sign bit flipped, so
// that negative numbers sort before positive ones.
func AppendInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

// DecodeInt64 decodes a component written by AppendInt64.
func DecodeInt64(src []byte) (int64, []byte, error) {
	if len(src) < 8 {
		return 0, nil, fmt.Errorf("%w: int64 component needs 8 bytes, has %d", ErrMalformed, len(src))
	}
	return int64(binary.BigEndian.Uint64(src) ^ (1 << 63)), src[8:], nil
}

// AppendInt32 appends v as 4 big-endian bytes with the sign bit flipped.
func AppendInt32(dst []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(v)^(1<<31))
}

// DecodeInt32 decodes a component written by AppendInt32.
func DecodeInt32(src []byte) (int32, []byte, error) {
	if len(src) < 4 {
		return 0, nil, fmt.Errorf("%w: int32 component needs 4 bytes, has %d", ErrMalformed, len(src))
	}
	return int32(binary.BigEndian.Uint32(src) ^ (1 << 31)), src[4:], nil
}

// AppendFloat64 appends f so that the encodings sort in the IEEE 754 total
// order: -NaN < -Inf < … < -0 < +0 < … < +Inf < +NaN. Every bit pattern,
// NaN payloads included, round-trips exactly.
func AppendFloat64(dst []byte, f float64) []byte {
	u := math.Float64bits(f)
	if u&(1<<63) != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, u)
}

// DecodeFloat64 decodes a component written by AppendFloat64.
func DecodeFloat64(src []byte) (float64, []byte, error) {
	if len(src) < 8 {
		return 0, nil, fmt.Errorf("%w: float64 component needs 8 bytes, has %d", ErrMalformed, len(src))
	}
	u := binary.BigEndian.Uint64(src)
	if u&(1<<63) != 0 {
		u &^= 1 << 63
	} else {
		u = ^u
	}
	return math.Float64frombits(u), src[8:], nil
}

// AppendBool appends false as 0x00 and true as 0x01.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// DecodeBool decodes a component written by AppendBool.
func DecodeBool(src []byte) (bool, []byte, error) {
	if len(src) < 1 {
		return false, nil, fmt.Errorf("%w: bool component is missing", ErrMalformed)
	}
	switch src[0] {
	case 0:
		return false, src[1:], nil
	case 1:
		return true, src[1:], nil
	}
	return false, nil, fmt.Errorf("%w: bool component is 0x%02X", ErrMalformed, src[0])
}
