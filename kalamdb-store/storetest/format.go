package storetest

import (
	"fmt"
	"hash/crc32"
	"reflect"
	"strconv"
	"strings"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// showLimit is the longest byte string that failure messages print whole;
// a longer one is shown by its ends, its length and a checksum.
const showLimit = 40

// show prints b for a failure message: quoted when short, otherwise its
// first and last bytes quoted with its length and a CRC-32, so that two long
// keys that differ anywhere print differently.
func show[T ~string | ~[]byte](b T) string {
	s := string(b)
	if len(s) <= showLimit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q…%q (%d bytes, crc32 %08x)", s[:8], s[len(s)-8:], len(s), crc32.ChecksumIEEE([]byte(s)))
}

// describe prints scan options for a failure message: each field by name,
// byte slices through show, the other fields as plain values (so a false
// flag reads false and a zero limit 0). It walks the struct, so a field
// added to ScanOptions is printed without a change here.
func describe(o store.ScanOptions) string {
	v := reflect.ValueOf(o)
	var b strings.Builder
	b.WriteByte('{')
	for i := range v.NumField() {
		if i > 0 {
			b.WriteByte(' ')
		}
		f := v.Field(i)
		b.WriteString(v.Type().Field(i).Name)
		b.WriteByte(':')
		if bs, ok := f.Interface().([]byte); ok {
			b.WriteString(show(bs))
		} else {
			fmt.Fprint(&b, f.Interface())
		}
	}
	b.WriteByte('}')
	return b.String()
}

// showKVs prints pairs for a failure message, each key and value through
// show.
func showKVs(kvs []kv) []string {
	out := make([]string, len(kvs))
	for i, x := range kvs {
		out[i] = show(x.K) + "=" + show(x.V)
	}
	return out
}

// showKeys prints keys for a failure message, each through show.
func showKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = show(k)
	}
	return out
}
