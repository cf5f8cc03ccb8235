// Package clock is the time source of the table stores: the real clock in
// production and a Fake that tests advance by hand, so that time-driven
// behaviour (stream TTLs, eviction timers) is tested without sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes tickers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a ticker that delivers a tick on its channel every
	// d (d > 0), dropping ticks that the reader is too slow to take, like
	// time.Ticker.
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks until it is stopped.
type Ticker interface {
	// C returns the channel the ticks are delivered on.
	C() <-chan time.Time
	// Stop turns the ticker off; no tick is delivered after Stop returns.
	Stop()
}

// Real returns the system clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Fake is a Clock that only moves when told to. Its tickers fire during
// Advance and Set. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers map[*fakeTicker]struct{}
}

// NewFake returns a Fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, tickers: make(map[*fakeTicker]struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d and fires every ticker whose next
// tick is due. Like a time.Ticker, a ticker whose channel is full drops the
// tick, and a ticker several periods behind delivers one tick, not many.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the clock to t (which must not be before the current time; an
// earlier t is ignored) and fires the tickers that are due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Before(f.now) {
		return
	}
	f.now = t
	for tk := range f.tickers {
		if t.Before(tk.next) {
			continue
		}
		select {
		case tk.c <- t:
		default:
		}
		// The next tick is the first period boundary after t.
		periods := t.Sub(tk.next)/tk.d + 1
		tk.next = tk.next.Add(periods * tk.d)
	}
}

// Tickers returns the number of tickers that are running.
func (f *Fake) Tickers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tickers)
}

// NewTicker returns a ticker whose first tick is due d after now.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tk := &fakeTicker{f: f, d: d, next: f.now.Add(d), c: make(chan time.Time, 1)}
	f.tickers[tk] = struct{}{}
	return tk
}

type fakeTicker struct {
	f    *Fake
	d    time.Duration
	next time.Time
	c    chan time.Time
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	delete(t.f.tickers, t)
}
