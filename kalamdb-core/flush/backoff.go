package flush

import (
	"sync"
	"time"
)

// Backoff spaces out the retries of work that keeps failing, key by key (a
// table id, for a flush scheduler): after the n-th failure in a row a key
// waits initial·2^(n-1), at most maxDelay (see NewBackoff), before its
// next attempt, and a success resets it. There is no jitter: the keys that
// fail together are retried together, one after the other, by the
// scheduler's loop. It takes the time as an argument and reads no clock.
// It is safe for concurrent use.
type Backoff[K comparable] struct {
	initial, max time.Duration

	mu   sync.Mutex
	keys map[K]*BackoffState
}

// BackoffState is what a Backoff knows of a failing key.
type BackoffState struct {
	// Failures counts the failures in a row.
	Failures int
	// Since is the first failure of the run, Last the latest.
	Since, Last time.Time
	// Next is the earliest time of the next attempt.
	Next time.Time
	// Err is the latest failure's error.
	Err error
}

// Delay is the wait after Last.
func (s BackoffState) Delay() time.Duration { return s.Next.Sub(s.Last) }

// NewBackoff returns a Backoff that waits initial after a first failure,
// doubling with each further failure up to maxDelay. A non-positive
// initial means one second; a maxDelay below initial means initial.
func NewBackoff[K comparable](initial, maxDelay time.Duration) *Backoff[K] {
	if initial <= 0 {
		initial = time.Second
	}
	return &Backoff[K]{initial: initial, max: max(initial, maxDelay), keys: map[K]*BackoffState{}}
}

// delay is the wait after the n-th failure in a row (n >= 1).
func (b *Backoff[K]) delay(n int) time.Duration {
	d := b.initial
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// Ready reports whether k may be tried at now: it is not failing, or its
// wait has passed.
func (b *Backoff[K]) Ready(k K, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.keys[k]
	return s == nil || !now.Before(s.Next)
}

// Failed records a failure of k at now with err and returns k's state
// after it; Failures == 1 marks a key that was not failing before.
func (b *Backoff[K]) Failed(k K, now time.Time, err error) BackoffState {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.keys[k]
	if s == nil {
		s = &BackoffState{Since: now}
		b.keys[k] = s
	}
	s.Failures++
	s.Last, s.Err = now, err
	s.Next = now.Add(b.delay(s.Failures))
	return *s
}

// Succeeded records a success of k: k is no longer failing. It returns the
// state k had and whether it was failing.
func (b *Backoff[K]) Succeeded(k K) (BackoffState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.keys[k]
	if s == nil {
		return BackoffState{}, false
	}
	delete(b.keys, k)
	return *s, true
}

// Forget drops k (a table that was dropped) without it counting as a
// success.
func (b *Backoff[K]) Forget(k K) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.keys, k)
}

// Failing reports whether k is failing.
func (b *Backoff[K]) Failing(k K) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keys[k] != nil
}

// Failures returns the state of every failing key.
func (b *Backoff[K]) Failures() map[K]BackoffState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[K]BackoffState, len(b.keys))
	for k, s := range b.keys {
		out[k] = *s
	}
	return out
}
