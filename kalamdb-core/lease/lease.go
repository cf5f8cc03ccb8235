// Package lease keeps leases in a StorageBackend: the right of one server
// to do a named piece of background work (flush a table, compact it, evict
// a stream) until the lease expires, when servers share the backend.
//
// A lease is a record {owner, epoch, expires} under its name in
// layout.Leases. Acquire writes it with a check that it is absent, expired,
// or already the caller's; Renew and Release check that it is unchanged.
// The holder puts Lease.Check in the batch of every commit of the work: a
// holder whose lease was taken over (it paused, was partitioned, or its
// clock ran slow) cannot commit, because the takeover rewrote the record.
// So safety rests on the backend's checks, not on clocks: clocks that
// disagree only make a lease change hands early or late.
//
// Work needed about once per interval among the servers (a stream's
// eviction) ends with Finish instead of Release: the record stays,
// expired, with when the finished work began, which LastFinished reads, so
// that the other servers skip their turn.
//
// Work that may outlast the TTL keeps its lease with Keep, which renews it
// every third of the TTL. Commit refuses, without sending anything, once a
// renewal found the lease taken over, and when the lease expires within a
// third of its TTL (Valid): the safety margin that lets a commit begun in
// time end before another server may take the lease over.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
)

// DefaultTTL is how long a lease lasts without renewal.
const DefaultTTL = 15 * time.Second

// TableName is the name of the lease of table tableID: the one lease of
// the table's background work, under which it is flushed and compacted
// (a user or shared table) or has its events evicted (a stream table), so
// that one server at a time works on a table. The name says "flush" for
// the work it first covered; servers of every version agree on it.
func TableName(tableID uint64) string { return "flush/" + strconv.FormatUint(tableID, 10) }

// ErrHeld reports a lease that another owner holds and that has not
// expired.
var ErrHeld = errors.New("lease: held by another server")

// ErrLost reports a lease that was taken over or removed since it was
// acquired: the work it covered must stop without committing.
var ErrLost = errors.New("lease: lost")

// ErrExpiring reports a commit refused because the lease expires within
// its safety margin (Valid is false): the holder sends nothing, as another
// server may take the lease over before the commit ends.
var ErrExpiring = errors.New("lease: too close to its expiry to commit")

// Options configure a Leases.
type Options struct {
	// Owner names this server in the records (a server id). Required.
	Owner string
	// TTL is how long a lease lasts without renewal; 0 means DefaultTTL.
	TTL time.Duration
	// Clock is the time source; nil means the real clock.
	Clock clock.Clock
}

// Leases takes and keeps the leases of one owner. It is safe for
// concurrent use.
type Leases struct {
	b    store.StorageBackend
	opts Options
}

// New returns the leases of opts.Owner in b.
func New(b store.StorageBackend, opts Options) (*Leases, error) {
	if opts.Owner == "" {
		return nil, fmt.Errorf("%w: lease: an owner is required", core.ErrInvalidArgument)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("%w: lease: TTL %v is negative", core.ErrInvalidArgument, opts.TTL)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	return &Leases{b: b, opts: opts}, nil
}

// record is what the backend holds for a lease.
type record struct {
	Owner   string `json:"owner"`
	Epoch   uint64 `json:"epoch"`
	Expires int64  `json:"expires_us"` // Unix microseconds
	// Began is when the work the record's owner finished began (Finish),
	// in Unix microseconds; 0 while the lease is held, or when released.
	Began int64 `json:"finished_began_us,omitempty"`
}

func (r record) expires() time.Time { return time.UnixMicro(r.Expires).UTC() }

// Lease is a lease held by this owner.
type Lease struct {
	ls   *Leases
	name string
	key  []byte

	mu       sync.Mutex
	raw      []byte
	rec      record
	released bool
	lost     error // set once a renewal found the lease taken over
}

// Acquire takes the lease name: when nobody holds it, when it expired, or
// when this owner already holds it (the epoch then stays). It fails with an
// error wrapping ErrHeld, naming the holder and the expiry, when another
// owner holds it.
func (ls *Leases) Acquire(ctx context.Context, name string) (*Lease, error) {
	key := []byte(name)
	for attempt := 0; attempt < 3; attempt++ {
		raw, cur, err := ls.read(ctx, key)
		if err != nil {
			return nil, err
		}
		now := ls.opts.Clock.Now()
		next := record{Owner: ls.opts.Owner, Epoch: 1, Expires: now.Add(ls.opts.TTL).UnixMicro()}
		if raw != nil {
			if cur.Owner != ls.opts.Owner && now.Before(cur.expires()) {
				return nil, fmt.Errorf("%w: %s is held by %s until %s", ErrHeld, name, cur.Owner, cur.expires().UTC().Format(time.RFC3339Nano))
			}
			next.Epoch = cur.Epoch
			if cur.Owner != ls.opts.Owner {
				next.Epoch++
			}
		}
		l := &Lease{ls: ls, name: name, key: key}
		err = l.write(ctx, raw, next)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, store.ErrConditionFailed) {
			return nil, err
		}
		// Another owner acquired or renewed meanwhile: judge again.
	}
	return nil, fmt.Errorf("%w: %s changed hands while it was being acquired", ErrHeld, name)
}

// read returns the stored record of key (nil raw when there is none).
func (ls *Leases) read(ctx context.Context, key []byte) ([]byte, record, error) {
	raw, err := ls.b.Get(ctx, layout.Leases, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, record{}, nil
	}
	if err != nil {
		return nil, record{}, fmt.Errorf("lease: reading %s: %w", key, err)
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, record{}, fmt.Errorf("%w: lease %s: %v", core.ErrCorrupt, key, err)
	}
	return raw, r, nil
}

// check is the condition that key still holds raw (or is still absent).
func check(key, raw []byte) store.Operation {
	if raw == nil {
		return store.CheckAbsentOp(layout.Leases, key)
	}
	return store.CheckValueOp(layout.Leases, key, raw)
}

// write replaces the record held as prev (nil: none) with next, and makes
// it the lease's.
func (l *Lease) write(ctx context.Context, prev []byte, next record) error {
	raw, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := l.ls.b.Batch(ctx, []store.Operation{check(l.key, prev), store.PutOp(layout.Leases, l.key, raw)}); err != nil {
		return fmt.Errorf("lease: %s: %w", l.name, err)
	}
	l.raw, l.rec = raw, next
	return nil
}

// Name returns the lease's name.
func (l *Lease) Name() string { return l.name }

// Epoch returns how many times the lease changed owner since it was first
// taken: a fencing token for logs.
func (l *Lease) Epoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.Epoch
}

// Expires returns when the lease ends unless renewed.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.expires()
}

// Valid reports whether the holder may still start a commit: the lease
// has more than a third of its TTL left, so that a commit begun now ends
// before another server may take it over (a commit after that fails its
// check anyway).
func (l *Lease) Valid() bool {
	return l.ls.opts.Clock.Now().Before(l.Expires().Add(-l.margin()))
}

// margin is how long before its expiry a lease stops its holder's commits.
func (l *Lease) margin() time.Duration { return l.ls.opts.TTL / 3 }

// Renew extends the lease by its TTL from now. It fails with an error
// wrapping ErrLost when the lease was taken over or removed; the lease is
// then lost for good, and Commit refuses.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("%w: %s was released", ErrLost, l.name)
	}
	if l.lost != nil {
		return l.lost
	}
	next := l.rec
	next.Expires = l.ls.opts.Clock.Now().Add(l.ls.opts.TTL).UnixMicro()
	err := l.write(ctx, l.raw, next)
	if errors.Is(err, store.ErrConditionFailed) {
		// Both kinds: the work stops as a lost lease, and commits
		// refused for it read as failed checks (nothing applied).
		l.lost = fmt.Errorf("%w: %s was taken over or removed: %w", ErrLost, l.name, err)
		return l.lost
	}
	return err
}

// Keep renews the lease every third of its TTL, timed by c, in a goroutine
// of its own, until stop is called (before Release) or ctx is done; stop
// returns once that goroutine has ended, and may be called more than once.
// A renewal that finds the lease taken over marks it lost and ends the
// renewals: Commit refuses from then on. A renewal that fails otherwise
// (the backend did not answer) is tried again at the next tick; should
// they all fail, the lease runs out and Commit refuses once it is within
// its margin (Valid).
func (l *Lease) Keep(ctx context.Context, c clock.Clock) (stop func()) {
	tick := c.NewTicker(l.ls.opts.TTL / 3)
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C():
				if err := l.Renew(ctx); errors.Is(err, ErrLost) {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-ended
	}
}

// Commit runs commit with the check that fences it: commit puts check in
// every batch it applies, and a batch whose check fails (the lease was
// taken over) applies nothing and fails with store.ErrConditionFailed. The
// lease is not renewed while commit runs, so the check stays the one the
// backend holds.
//
// Commit does not run commit at all, and fails with an error wrapping
// store.ErrConditionFailed, when the holder knows the check would fail or
// might by the time the batch lands: the lease was released or found lost
// by a renewal (ErrLost), or it expires within its safety margin, a third
// of its TTL (ErrExpiring). The backend's check stays the guarantee; these
// only spare a batch sent in vain or in a race with a takeover.
func (l *Lease) Commit(commit func(check store.Operation) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("%w: %s was released: %w", ErrLost, l.name, store.ErrConditionFailed)
	}
	if l.lost != nil {
		return l.lost
	}
	now, exp := l.ls.opts.Clock.Now(), l.rec.expires()
	if !now.Before(exp.Add(-l.margin())) {
		return fmt.Errorf("%w: %s expires at %s, %v from now, within its margin of %v: %w", ErrExpiring, l.name,
			exp.Format(time.RFC3339Nano), exp.Sub(now), l.margin(), store.ErrConditionFailed)
	}
	return commit(check(l.key, l.raw))
}

// Release gives the lease up, if it is still this owner's; a lease already
// lost is not an error.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.ls.b.Batch(ctx, []store.Operation{check(l.key, l.raw), store.DeleteOp(layout.Leases, l.key)})
	if err != nil && !errors.Is(err, store.ErrConditionFailed) {
		return fmt.Errorf("lease: releasing %s: %w", l.name, err)
	}
	l.released = true
	return nil
}

// Finish gives the lease up, as Release does, and records that its work,
// which began at began, is done: the record stays, expired, so that any
// owner may acquire it, and LastFinished returns began until then. A
// lease already lost is not an error, and records nothing.
func (l *Lease) Finish(ctx context.Context, began time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.rec
	next.Expires = l.ls.opts.Clock.Now().UnixMicro()
	next.Began = began.UnixMicro()
	raw, err := json.Marshal(next)
	if err != nil {
		return err
	}
	err = l.ls.b.Batch(ctx, []store.Operation{check(l.key, l.raw), store.PutOp(layout.Leases, l.key, raw)})
	if err != nil && !errors.Is(err, store.ErrConditionFailed) {
		return fmt.Errorf("lease: finishing %s: %w", l.name, err)
	}
	l.released = true
	return nil
}

// LastFinished returns when the work of lease name that was last finished
// (Finish) began, or the zero time when none was, or when the lease was
// acquired or released since.
func (ls *Leases) LastFinished(ctx context.Context, name string) (time.Time, error) {
	raw, r, err := ls.read(ctx, []byte(name))
	if err != nil || raw == nil || r.Began == 0 {
		return time.Time{}, err
	}
	return time.UnixMicro(r.Began).UTC(), nil
}

// Holder returns the owner of lease name and its expiry, or "" when nobody
// holds it (none did, or its holder released or finished it).
func (ls *Leases) Holder(ctx context.Context, name string) (string, time.Time, error) {
	raw, r, err := ls.read(ctx, []byte(name))
	if err != nil || raw == nil || r.Began != 0 {
		return "", time.Time{}, err
	}
	return r.Owner, r.expires(), nil
}
