package flush

import (
	"context"
	"errors"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
)

// Due reports whether table ns.name's flush policy asks for a flush now:
// at least Flush.RowLimit versions are buffered, or Flush.Interval has
// passed since its last flush (or since the Manager opened) and the buffer
// is not empty. Counting stops at RowLimit, so the check costs at most
// that many keys of the buffer.
func (m *Manager) Due(ctx context.Context, ns, name string) (bool, error) {
	t, err := m.db.Catalog().Table(ns, name)
	if err != nil {
		return false, err
	}
	if t.Type == catalog.StreamTable {
		return false, nil
	}
	tr := m.tier(t)
	limit := t.Flush.RowLimit
	scanLimit := 1
	if limit > 0 {
		scanLimit = int(min(limit, 1<<30))
	}
	it, err := m.b.Scan(ctx, t.Partition(), store.ScanOptions{Limit: scanLimit})
	if err != nil {
		if errors.Is(err, store.ErrPartitionNotFound) {
			return false, fmt.Errorf("%w: %s", core.ErrTableNotFound, t.FullName())
		}
		return false, err
	}
	var n int64
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	if limit > 0 && n >= limit {
		return true, nil
	}
	tr.mu.RLock()
	last := tr.lastFlush
	tr.mu.RUnlock()
	return t.Flush.Interval > 0 && m.clock.Now().Sub(last) >= t.Flush.Interval, nil
}

// CheckPolicies runs one round of the scheduler: it flushes every user and
// shared table whose policy is due (see Due), one after the other, and
// compacts the users (or shared tables) that have CompactSegments small
// segments or more (see Compact). It goes on after a failure, a panic
// included (it becomes a *guard.PanicError), and returns the first error.
func (m *Manager) CheckPolicies(ctx context.Context) (Result, error) {
	ts, err := m.db.Catalog().Tables("")
	if err != nil {
		return Result{}, err
	}
	var total Result
	var first error
	for _, t := range ts {
		if t.Type == catalog.StreamTable {
			continue
		}
		err := guard.Run("flush: scheduled flush of "+t.FullName(), func() error {
			due, err := m.Due(ctx, t.Namespace, t.Name)
			if err == nil && due {
				var res Result
				res, err = m.Flush(ctx, t.Namespace, t.Name)
				total.add(res)
			}
			if err == nil {
				var res CompactResult
				res, err = m.CompactDue(ctx, t.Namespace, t.Name)
				total.Compacted.add(res)
			}
			return err
		})
		if err != nil && !errors.Is(err, core.ErrTableNotFound) {
			if m.opts.OnError != nil {
				guard.Callback("flush: OnError", func() { m.opts.OnError(t.FullName(), err) })
			}
			if first == nil {
				first = err
			}
		}
	}
	return total, first
}

// Start starts the scheduler: every CheckInterval (on the DB's clock) it
// runs CheckPolicies. A panic of a round is contained (see package guard):
// it is the round's error, and the next round runs as usual. Starting a
// running scheduler does nothing.
func (m *Manager) Start() {
	m.sched.Lock()
	defer m.sched.Unlock()
	if m.stop != nil {
		return
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	m.stop, m.stopped = stop, stopped
	tick := m.clock.NewTicker(m.opts.CheckInterval)
	go func() {
		defer close(stopped)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C():
				var res Result
				err := guard.Run("flush: scheduler round", func() error {
					var err error
					res, err = m.CheckPolicies(context.Background())
					return err
				})
				m.sched.Lock()
				m.lastErr = err
				m.sched.Unlock()
				if m.opts.OnRound != nil {
					guard.Callback("flush: OnRound", func() { m.opts.OnRound(res, err) })
				}
			}
		}
	}()
}

// Stop stops the scheduler and waits for a round in progress to finish.
// Stopping a stopped scheduler does nothing.
func (m *Manager) Stop() {
	m.sched.Lock()
	stop, stopped := m.stop, m.stopped
	m.stop, m.stopped = nil, nil
	m.sched.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-stopped
}

// LastError returns the error of the scheduler's last round (nil when it
// succeeded or never ran).
func (m *Manager) LastError() error {
	m.sched.Lock()
	defer m.sched.Unlock()
	return m.lastErr
}

// Close shuts the cold tier down gracefully: it stops the scheduler,
// flushes every user and shared table, and closes the DB. It does not close
// the StorageBackend. The Result is the final flush's.
func (m *Manager) Close(ctx context.Context) (Result, error) {
	m.Stop()
	res, err := m.FlushAll(ctx)
	if cerr := m.db.Close(); err == nil {
		err = cerr
	}
	return res, err
}
