package api

import (
	"encoding/base64"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Rows are written straight to JSON, column by column in schema order and
// then the system columns _seq and _updated, without building a map per
// row: a listing of a thousand rows costs a few allocations, not thousands.

// appendRow appends the JSON object of r, a row of t.
func appendRow(dst []byte, t *catalog.Table, r *row.Row) []byte {
	dst = append(dst, '{')
	for i := range t.Columns {
		dst = appendString(dst, t.Columns[i].Name)
		dst = append(dst, ':')
		var v row.Value
		if i < len(r.Values) {
			v = r.Values[i]
		}
		dst = appendValue(dst, v)
		dst = append(dst, ',')
	}
	dst = append(dst, `"`+catalog.ColumnSeq+`":`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `,"`+catalog.ColumnUpdated+`":"`...)
	dst = r.UpdatedTime().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"', '}')
}

// appendValue appends v as JSON: numbers, booleans, strings, bytes as
// standard base64, timestamps as RFC 3339, null.
func appendValue(dst []byte, v row.Value) []byte {
	switch v.Type() {
	case row.TypeInt32:
		return strconv.AppendInt(dst, int64(v.Int32()), 10)
	case row.TypeInt64:
		return strconv.AppendInt(dst, v.Int64(), 10)
	case row.TypeFloat64:
		return appendFloat(dst, v.Float64())
	case row.TypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case row.TypeString:
		return appendString(dst, v.Str())
	case row.TypeBytes:
		b := v.Bytes()
		dst = append(dst, '"')
		n := len(dst)
		dst = append(dst, make([]byte, base64.StdEncoding.EncodedLen(len(b)))...)
		base64.StdEncoding.Encode(dst[n:], b)
		return append(dst, '"')
	case row.TypeTimestamp:
		dst = append(dst, '"')
		dst = v.Timestamp().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	return append(dst, "null"...)
}

// appendFloat formats f as encoding/json does. JSON has no NaN or
// infinity; they come out as null (the API never stores them: JSON input
// cannot express them).
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json does with
// SetEscapeHTML(false): invalid UTF-8 (which stored values never hold) is
// replaced by U+FFFD, and the line separators U+2028 and U+2029 are
// escaped. '<', '>' and '&' are not: they only matter for JSON embedded in
// HTML, and escaping them would make a row of them six times larger.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeRaw writes a JSON body built by the append functions.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeRow answers with one row.
func writeRow(w http.ResponseWriter, status int, t *catalog.Table, r *row.Row) {
	bp := bufPool.Get().(*[]byte)
	buf := appendRow((*bp)[:0], t, r)
	buf = append(buf, '\n')
	writeRaw(w, status, buf)
	*bp = buf
	bufPool.Put(bp)
}

// writeRows answers a listing: {"rows":[…],"next":"…"}, next left out
// when nil.
func writeRows(w http.ResponseWriter, t *catalog.Table, rows []row.Row, next *string) {
	bp := bufPool.Get().(*[]byte)
	buf := append((*bp)[:0], `{"rows":[`...)
	for i := range rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendRow(buf, t, &rows[i])
	}
	buf = append(buf, ']')
	if next != nil {
		buf = append(buf, `,"next":`...)
		buf = appendString(buf, *next)
	}
	buf = append(buf, '}', '\n')
	writeRaw(w, http.StatusOK, buf)
	if cap(buf) <= 1<<20 { // do not keep huge buffers
		*bp = buf
		bufPool.Put(bp)
	}
}
