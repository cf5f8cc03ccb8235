package keylock

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockAllExcludesEveryKey(t *testing.T) {
	s := New()
	g := s.LockAll()
	require.Len(t, g.stripes, Stripes)
	acquired := make(chan int, 8)
	for i := range 8 {
		go func() {
			keys := [][]byte{[]byte(fmt.Sprintf("k%d", i)), []byte(fmt.Sprintf("other%d", i))}
			if i%2 == 0 {
				st := s.Lock(keys[0])
				s.Unlock(st)
			} else {
				s.LockKeys(keys).Unlock()
			}
			acquired <- i
		}()
	}
	select {
	case i := <-acquired:
		t.Fatalf("locker %d got a lock while LockAll held them all", i)
	default:
	}
	g.Unlock()
	seen := map[int]bool{}
	for range 8 {
		seen[<-acquired] = true
	}
	assert.Len(t, seen, 8, "every locker proceeds after the unlock")
	// LockAll and LockKeys in any interleaving do not deadlock.
	done := make(chan struct{})
	go func() {
		for range 100 {
			s.LockAll().Unlock()
		}
		close(done)
	}()
	for i := range 100 {
		s.LockKeys([][]byte{[]byte(fmt.Sprint(i)), []byte(fmt.Sprint(i * 7))}).Unlock()
	}
	<-done
}
