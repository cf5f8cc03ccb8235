package keylock_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/keylock"
)

func TestStripeIsStable(t *testing.T) {
	s := keylock.New()
	for i := range 100 {
		k := []byte(fmt.Sprint("key", i))
		st := s.Stripe(k)
		assert.Equal(t, st, s.Stripe(append([]byte(nil), k...)))
		assert.GreaterOrEqual(t, st, 0)
		assert.Less(t, st, keylock.Stripes)
	}
}

// TestMutualExclusion increments unsynchronised counters under the locks of
// overlapping key sets from many goroutines: -race reports any gap, and the
// totals must add up.
func TestMutualExclusion(t *testing.T) {
	s := keylock.New()
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
	counters := make([]int, len(keys))
	const workers, rounds = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i, j := (w+r)%len(keys), (w+2*r+1)%len(keys)
				if i == j {
					st := s.Lock(keys[i])
					counters[i]++
					s.Unlock(st)
					continue
				}
				// Reverse order on odd workers: LockKeys must still not deadlock.
				set := [][]byte{keys[i], keys[j]}
				if w%2 == 1 {
					set = [][]byte{keys[j], keys[i], keys[j]}
				}
				g := s.LockKeys(set)
				counters[i]++
				counters[j]++
				g.Unlock()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, c := range counters {
		total += c
	}
	want := 0
	for w := range workers {
		for r := range rounds {
			if (w+r)%len(keys) == (w+2*r+1)%len(keys) {
				want++
			} else {
				want += 2
			}
		}
	}
	assert.Equal(t, want, total)
}
