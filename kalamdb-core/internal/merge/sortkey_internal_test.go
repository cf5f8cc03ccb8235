package merge

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestSortKeyOrdersAsBytes compares sortKey's order and equality with
// bytes.Compare on keys that share a prefix and then differ anywhere in the
// first 16 bytes, just past them, or only by trailing zero bytes (which the
// zero-padded integers alone cannot tell apart).
func TestSortKeyOrdersAsBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	key := func(prefix []byte) []byte {
		b := append([]byte(nil), prefix...)
		for range r.IntN(24) {
			b = append(b, []byte{0, 0, 1, 0xff}[r.IntN(4)])
		}
		return b
	}
	for _, prefix := range [][]byte{nil, []byte("user\x00\x01")} {
		keys := [][]byte{append([]byte(nil), prefix...)}
		for range 300 {
			keys = append(keys, key(prefix))
		}
		// Keys that share their first 8 or 16 bytes and differ after.
		for _, stem := range []int{8, 16} {
			base := append(append([]byte(nil), prefix...), bytes.Repeat([]byte{7}, stem)...)
			for _, tail := range []string{"", "\x00", "\x01", "\xff", "\x00\x00", "\x00\x01", "\x01\x00", "\xff\xff\x00"} {
				keys = append(keys, append(append([]byte(nil), base...), tail...))
			}
		}
		// Keys equal but for trailing zeros, at every length around 8 and 16.
		for n := 0; n <= 20; n++ {
			keys = append(keys, append(append([]byte(nil), prefix...), make([]byte, n)...))
		}
		for _, a := range keys {
			for _, b := range keys {
				var ka, kb sortKey
				ka.set(a, len(prefix))
				kb.set(b, len(prefix))
				want := bytes.Compare(a, b)
				if got := ka.compare(&kb); got != want {
					t.Fatalf("compare(%x, %x) = %d, want %d", a, b, got, want)
				}
				if got := ka.equal(&kb); got != (want == 0) {
					t.Fatalf("equal(%x, %x) = %v, want %v", a, b, got, want == 0)
				}
			}
		}
	}
}
