// Package keylock serialises check-then-act sequences on backend keys. The
// storage contract has no compare-and-swap, so the table stores take the
// lock of a key before they read it and hold it until their write is
// applied: an insert's uniqueness check, an update, a delete, and a flush's
// delete-if-unchanged.
//
// A Set is a fixed array of mutexes (stripes); a key locks the stripe its
// hash selects. Two keys may share a stripe (they then wait for one
// another), but one key always maps to the same stripe. Several keys are
// locked in ascending stripe order, so two lockers of overlapping key sets
// never deadlock.
package keylock

import (
	"hash/maphash"
	"slices"
	"sync"
)

// Stripes is the number of mutexes in a Set.
const Stripes = 1024

// Set is a striped lock over byte-string keys. The zero Set is not usable;
// make one with New.
type Set struct {
	seed    maphash.Seed
	stripes [Stripes]sync.Mutex
}

// New returns a Set.
func New() *Set { return &Set{seed: maphash.MakeSeed()} }

// Stripe returns the stripe key maps to.
func (s *Set) Stripe(key []byte) int {
	return int(maphash.Bytes(s.seed, key) % Stripes)
}

// Lock locks key's stripe and returns it, for Unlock.
func (s *Set) Lock(key []byte) int {
	i := s.Stripe(key)
	s.stripes[i].Lock()
	return i
}

// Unlock unlocks a stripe returned by Lock.
func (s *Set) Unlock(stripe int) { s.stripes[stripe].Unlock() }

// Guard holds the stripes of several keys.
type Guard struct {
	s       *Set
	stripes []int
}

// LockKeys locks the stripes of every key, in ascending stripe order and
// each once, and returns the Guard that unlocks them.
func (s *Set) LockKeys(keys [][]byte) Guard {
	stripes := make([]int, len(keys))
	for i, k := range keys {
		stripes[i] = s.Stripe(k)
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.stripes[i].Lock()
	}
	return Guard{s: s, stripes: stripes}
}

// LockAll locks every stripe, in ascending order (the order LockKeys uses,
// so the two never deadlock), and returns the Guard that unlocks them.
func (s *Set) LockAll() Guard {
	stripes := make([]int, Stripes)
	for i := range stripes {
		stripes[i] = i
		s.stripes[i].Lock()
	}
	return Guard{s: s, stripes: stripes}
}

// Unlock releases every stripe of g. It must be called exactly once.
func (g Guard) Unlock() {
	for j := len(g.stripes) - 1; j >= 0; j-- {
		g.s.stripes[g.stripes[j]].Unlock()
	}
}
