package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func backend(t *testing.T) store.StorageBackend {
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.CreatePartition(context.Background(), layout.Leases))
	return b
}

func leases(t *testing.T, b store.StorageBackend, owner string, c clock.Clock) *lease.Leases {
	ls, err := lease.New(b, lease.Options{Owner: owner, TTL: 15 * time.Second, Clock: c})
	require.NoError(t, err)
	return ls
}

var probe = store.MustPartition("probe")

// twoOwners returns a backend with the probe partition, a fake clock at
// t0, and the leases of owners a and z on them.
func twoOwners(t *testing.T, a, z string) (store.StorageBackend, *clock.Fake, *lease.Leases, *lease.Leases) {
	b := backend(t)
	require.NoError(t, b.CreatePartition(context.Background(), probe))
	fk := clock.NewFake(t0)
	return b, fk, leases(t, b, a, fk), leases(t, b, z, fk)
}

// commitProbe commits a write fenced by l and reports whether it applied.
func commitProbe(t *testing.T, b store.StorageBackend, l *lease.Lease, v string) error {
	return l.Commit(func(check store.Operation) error {
		return b.Batch(context.Background(), []store.Operation{check, store.PutOp(probe, []byte("k"), []byte(v))})
	})
}

// A lease is one owner's until it expires; then another takes it over,
// and the first one's commits and renewals fail: nothing it writes
// applies.
func TestTakeoverFencesTheOldHolder(t *testing.T) {
	ctx := context.Background()
	b, fk, a, z := twoOwners(t, "server-a", "server-z")

	la, err := a.Acquire(ctx, "flush/7")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), la.Epoch())
	require.NoError(t, commitProbe(t, b, la, "a1"))

	_, err = z.Acquire(ctx, "flush/7")
	require.ErrorIs(t, err, lease.ErrHeld)
	assert.ErrorContains(t, err, "held by server-a until 2026-01-02T03:04:20Z")

	fk.Advance(10 * time.Second)
	require.NoError(t, la.Renew(ctx))
	fk.Advance(10 * time.Second)
	_, err = z.Acquire(ctx, "flush/7")
	require.ErrorIs(t, err, lease.ErrHeld, "renewed: still a's")

	fk.Advance(6 * time.Second) // past a's expiry
	lz, err := z.Acquire(ctx, "flush/7")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), lz.Epoch(), "a takeover is a new epoch")

	err = commitProbe(t, b, la, "a2")
	require.ErrorIs(t, err, store.ErrConditionFailed, "the old holder cannot commit")
	require.ErrorIs(t, la.Renew(ctx), lease.ErrLost)
	require.NoError(t, commitProbe(t, b, lz, "z1"))
	v, err := b.Get(ctx, probe, []byte("k"))
	require.NoError(t, err)
	assert.Equal(t, "z1", string(v))

	owner, until, err := a.Holder(ctx, "flush/7")
	require.NoError(t, err)
	assert.Equal(t, "server-z", owner)
	assert.Equal(t, fk.Now().Add(15*time.Second), until)
}

func TestReacquireAndRelease(t *testing.T) {
	ctx := context.Background()
	b, _, a, z := twoOwners(t, "a", "z")
	la, err := a.Acquire(ctx, "evict/3")
	require.NoError(t, err)
	again, err := a.Acquire(ctx, "evict/3")
	require.NoError(t, err, "the holder acquires its own lease again")
	assert.Equal(t, la.Epoch(), again.Epoch())

	require.NoError(t, again.Release(ctx))
	require.ErrorIs(t, commitProbe(t, b, again, "x"), lease.ErrLost)
	require.NoError(t, la.Release(ctx), "releasing a lease already gone is not an error")
	lz, err := z.Acquire(ctx, "evict/3")
	require.NoError(t, err, "a released lease is free at once")
	owner, _, err := z.Holder(ctx, "evict/3")
	require.NoError(t, err)
	assert.Equal(t, "z", owner)
	require.NoError(t, lz.Release(ctx))
	owner, _, err = z.Holder(ctx, "evict/3")
	require.NoError(t, err)
	assert.Empty(t, owner)
}

// Valid turns false a third of the TTL before the expiry.
func TestValid(t *testing.T) {
	fk := clock.NewFake(t0)
	l, err := leases(t, backend(t), "a", fk).Acquire(context.Background(), "x")
	require.NoError(t, err)
	assert.True(t, l.Valid())
	fk.Advance(9 * time.Second)
	assert.True(t, l.Valid())
	fk.Advance(1 * time.Second)
	assert.False(t, l.Valid(), "5 s left of 15: too late to start a commit")
}

// Owners acquiring one lease at once: exactly one gets it.
func TestOneWinnerAmongConcurrentAcquires(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	fk := clock.NewFake(t0)
	for round := range 20 {
		name := fmt.Sprintf("compact/%d", round)
		var wins int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for o := range 8 {
			ls := leases(t, b, fmt.Sprintf("s%d", o), fk)
			wg.Go(func() {
				_, err := ls.Acquire(ctx, name)
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
					return
				}
				assert.True(t, errors.Is(err, lease.ErrHeld), "%v", err)
			})
		}
		wg.Wait()
		require.Equal(t, 1, wins, "round %d", round)
	}
}

func TestOptions(t *testing.T) {
	_, err := lease.New(backend(t), lease.Options{})
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	_, err = lease.New(backend(t), lease.Options{Owner: "a", TTL: -time.Second})
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
}

// commitCalled runs Commit of l with a commit that writes nothing and
// reports whether it ran: whether a batch would have been sent.
func commitCalled(l *lease.Lease) (bool, error) {
	called := false
	err := l.Commit(func(store.Operation) error {
		called = true
		return nil
	})
	return called, err
}

// Keep renews the lease every third of its TTL, so work that outlasts
// the TTL still commits; stop ends the renewals.
func TestKeepRenews(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	require.NoError(t, b.CreatePartition(ctx, probe))
	fk := clock.NewFake(t0)
	a := leases(t, b, "a", fk)
	l, err := a.Acquire(ctx, "flush/1")
	require.NoError(t, err)
	stop := l.Keep(ctx, fk)
	for range 4 {
		fk.Advance(5 * time.Second)
		want := fk.Now().Add(15 * time.Second)
		require.Eventually(t, func() bool {
			_, until, err := a.Holder(ctx, "flush/1")
			return err == nil && until.Equal(want)
		}, 10*time.Second, time.Millisecond, "renewed to %s", want)
	}
	require.NoError(t, commitProbe(t, b, l, "after 20 s"), "20 s into a 15 s lease")
	stop()
	stop()
	assert.Zero(t, fk.Tickers(), "stop ends the renewals")
	fk.Advance(5 * time.Second)
	_, until, err := a.Holder(ctx, "flush/1")
	require.NoError(t, err)
	assert.Equal(t, t0.Add(35*time.Second), until, "no renewal after stop")
}

// A lease taken over while still valid on its holder's clock (another
// server's clock runs ahead): the backend's check refuses the holder's
// commit; once a renewal found the lease lost, the holder sends no
// commit at all.
func TestCommitRefusedOnceARenewalFoundTheLeaseLost(t *testing.T) {
	ctx := context.Background()
	b := backend(t)
	fk := clock.NewFake(t0)
	la, err := leases(t, b, "a", fk).Acquire(ctx, "flush/2")
	require.NoError(t, err)
	_, err = leases(t, b, "z", clock.NewFake(t0.Add(16*time.Second))).Acquire(ctx, "flush/2")
	require.NoError(t, err)

	called, err := commitCalled(la)
	assert.True(t, called, "valid on a's clock: the batch is sent")
	require.NoError(t, err, "the fake commit sends nothing")

	err = la.Renew(ctx)
	require.ErrorIs(t, err, lease.ErrLost)
	called, err = commitCalled(la)
	assert.False(t, called, "lost: no batch is sent")
	require.ErrorIs(t, err, lease.ErrLost)
	require.ErrorIs(t, err, store.ErrConditionFailed)
	require.ErrorIs(t, la.Renew(ctx), lease.ErrLost, "lost for good")
}

// A commit is not started within the margin: a third of the TTL before
// the lease expires.
func TestCommitRefusedWithinTheMargin(t *testing.T) {
	ctx := context.Background()
	fk := clock.NewFake(t0)
	l, err := leases(t, backend(t), "a", fk).Acquire(ctx, "flush/3")
	require.NoError(t, err)
	fk.Advance(9 * time.Second)
	called, err := commitCalled(l)
	require.NoError(t, err)
	assert.True(t, called, "6 s left of 15")
	fk.Advance(1 * time.Second)
	called, err = commitCalled(l)
	assert.False(t, called, "5 s left of 15: no batch is sent")
	require.ErrorIs(t, err, lease.ErrExpiring)
	require.ErrorIs(t, err, store.ErrConditionFailed)
	assert.ErrorContains(t, err, "flush/3 expires at 2026-01-02T03:04:20Z, 5s from now, within its margin of 5s")
}

// A table's lease keeps the name the flush gave it first: servers of
// different versions must take the same record to exclude one another.
func TestTableNameIsStable(t *testing.T) {
	assert.Equal(t, "flush/42", lease.TableName(42))
	assert.NotEqual(t, lease.TableName(4), lease.TableName(42))
}

// Finish gives the lease up, as Release does, and leaves when the work
// began for LastFinished, until the lease is acquired again; a lease
// already lost records nothing.
func TestFinishRecordsWhenTheWorkBegan(t *testing.T) {
	ctx := context.Background()
	b, fk, a, z := twoOwners(t, "a", "z")
	began, err := a.LastFinished(ctx, "evict/4")
	require.NoError(t, err)
	assert.True(t, began.IsZero(), "never finished")

	la, err := a.Acquire(ctx, "evict/4")
	require.NoError(t, err)
	fk.Advance(2 * time.Second)
	require.NoError(t, la.Finish(ctx, t0))
	require.ErrorIs(t, commitProbe(t, b, la, "x"), lease.ErrLost, "a finished lease commits nothing")
	began, err = z.LastFinished(ctx, "evict/4")
	require.NoError(t, err)
	assert.Equal(t, t0, began)
	owner, _, err := z.Holder(ctx, "evict/4")
	require.NoError(t, err)
	assert.Empty(t, owner, "nobody holds a finished lease")

	lz, err := z.Acquire(ctx, "evict/4")
	require.NoError(t, err, "a finished lease is free at once")
	assert.Equal(t, uint64(2), lz.Epoch(), "it changed owner")
	began, err = a.LastFinished(ctx, "evict/4")
	require.NoError(t, err)
	assert.True(t, began.IsZero(), "held again")
	require.NoError(t, la.Finish(ctx, t0), "finishing a lease already lost is not an error")
	owner, _, err = a.Holder(ctx, "evict/4")
	require.NoError(t, err)
	assert.Equal(t, "z", owner, "and leaves it to its holder")
	require.NoError(t, lz.Finish(ctx, t0.Add(time.Second)))
	began, err = a.LastFinished(ctx, "evict/4")
	require.NoError(t, err)
	assert.Equal(t, t0.Add(time.Second), began)
}
