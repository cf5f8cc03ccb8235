package flush

import (
	"context"
	"errors"
	"time"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
)

// The scheduler flushes every user and shared table whose flush policy is
// due, then compacts it when CompactSegments says so, in rounds every
// CheckInterval of the DB's clock. It reads no buffer to decide: the table
// stores count the versions they write (tables.Buffer.Written), and a
// flush subtracts what it moved. A table whose last flush or compaction
// failed, whoever ran it, is retried, due or not, once its backoff allows,
// and not before (Backoff, from RetryFirst doubling up to RetryMax). Every
// flush and compaction, of the scheduler or not, is reported to
// Options.OnEvent, and the failing tables are in Health.

// Triggers of flushes and compactions, in Events.
const (
	// TriggerManual is a call of Flush, FlushAll, Compact or MajorCompact.
	TriggerManual = "manual"
	// TriggerPolicy is the scheduler's.
	TriggerPolicy = "policy"
	// TriggerShutdown is Close's final flush.
	TriggerShutdown = "shutdown"
)

// The operations of Events.
const (
	OpFlush      = "flush"
	OpCompaction = "compaction"
)

// Backoff of a table whose flushes (or compactions) fail.
const (
	RetryFirst = 2 * time.Second
	RetryMax   = 5 * time.Minute
)

// Event reports one flush or compaction of one table.
type Event struct {
	// Table is the table's definition.
	Table *catalog.Table
	// Op is OpFlush or OpCompaction, Trigger who asked for it.
	Op, Trigger string
	// Flush is what a flush did, Compaction what a compaction did.
	Flush      Result
	Compaction CompactResult
	// Duration is how long it took.
	Duration time.Duration
	// Err is why it failed, nil when it did not. A failure of a dropped
	// table, or of cancelled work, does not count as a failure of the cold
	// tier (Failures stays as it was).
	Err error
	// Failures counts the table's failures in a row, this one included;
	// 0 after a success.
	Failures int
	// Since is the first failure of the run; RetryIn the wait before the
	// scheduler's next attempt.
	Since   time.Time
	RetryIn time.Duration
	// Recovered, on a success, is the number of failures in a row that it
	// ends (0 when the table was not failing).
	Recovered int
}

// Health is what is known of the cold tier's failures.
type Health struct {
	// Failing are the tables whose last flush or compaction failed,
	// oldest failure first.
	Failing []Failing
	// LastFailure is the time of the latest failure since Open (zero:
	// none).
	LastFailure time.Time
}

// Failing is one failing table.
type Failing struct {
	Table    string
	Failures int
	// Since is the first failure of the run, Last the latest.
	Since, Last time.Time
	// Err is the latest error.
	Err error
}

// Health returns the failing tables.
func (m *Manager) Health() Health {
	fs := m.health.Failures()
	h := Health{Failing: make([]Failing, 0, len(fs))}
	m.healthMu.Lock()
	for id, st := range fs {
		h.Failing = append(h.Failing, Failing{Table: m.failing[id].name, Failures: st.Failures, Since: st.Since, Last: st.Last, Err: st.Err})
	}
	h.LastFailure = m.lastFailure
	m.healthMu.Unlock()
	sortFailing(h.Failing)
	return h
}

func sortFailing(fs []Failing) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Since.Before(fs[j-1].Since); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// record notes the outcome of a flush or compaction of t that began at
// start, and reports it to Options.OnEvent.
func (m *Manager) record(e Event, start time.Time) {
	if errors.Is(e.Err, lease.ErrHeld) {
		// Another server is doing this work: no event, no failure.
		return
	}
	now := m.clock.Now()
	e.Duration = now.Sub(start)
	id := e.Table.ID
	switch {
	case e.Err == nil:
		// Only a success of the operation that failed last ends the run: a
		// compaction with nothing to merge says nothing of a failing flush.
		m.healthMu.Lock()
		if f, ok := m.failing[id]; !ok || f.op == e.Op {
			if was, failing := m.health.Succeeded(id); failing {
				e.Recovered = was.Failures
				delete(m.failing, id)
			}
		}
		m.healthMu.Unlock()
	case errors.Is(e.Err, core.ErrTableNotFound):
		m.forgetHealth(id)
	case errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded):
		// Cancelled work says nothing about the cold tier.
	default:
		st := m.health.Failed(id, now, e.Err)
		e.Failures, e.Since, e.RetryIn = st.Failures, st.Since, st.Delay()
		m.healthMu.Lock()
		m.failing[id] = failingTable{name: e.Table.FullName(), op: e.Op}
		m.lastFailure = now
		m.healthMu.Unlock()
	}
	if m.opts.OnEvent != nil {
		guard.Callback("flush: OnEvent", func() { m.opts.OnEvent(e) })
	}
}

// forgetHealth drops what is known of table id (it was dropped).
func (m *Manager) forgetHealth(id uint64) {
	m.health.Forget(id)
	m.healthMu.Lock()
	delete(m.failing, id)
	m.healthMu.Unlock()
}

// failingTable is a failing table's name and the operation (OpFlush or
// OpCompaction) whose failure is its latest.
type failingTable struct{ name, op string }

// failingOp returns the operation of table id's latest failure, "" when
// the table is not failing.
func (m *Manager) failingOp(id uint64) string {
	m.healthMu.Lock()
	defer m.healthMu.Unlock()
	return m.failing[id].op
}

// Due reports whether table ns.name's flush policy asks for a flush now:
// Flush.RowLimit versions or more were written since its last flush, or
// Flush.Interval has passed since its last flush (or since the Manager
// opened) and something was written. It reads no buffer.
func (m *Manager) Due(ctx context.Context, ns, name string) (bool, error) {
	t, buf, err := m.buffer(ctx, ns, name)
	if errors.Is(err, core.ErrWrongTableType) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.due(t, buf.Written()), nil
}

func (m *Manager) due(t *catalog.Table, written int64) bool {
	if written <= 0 {
		return false
	}
	if t.Flush.RowLimit > 0 && written >= t.Flush.RowLimit {
		return true
	}
	tr := m.tier(t)
	tr.mu.RLock()
	last := tr.lastFlush
	tr.mu.RUnlock()
	return t.Flush.Interval > 0 && m.clock.Now().Sub(last) >= t.Flush.Interval
}

// CheckPolicies runs one round of the scheduler: every user and shared
// table whose policy is due, or whose last flush or compaction failed, is
// flushed, and every one is compacted when due (CompactDue), one table
// after the other; a failing table is tried only once its backoff allows. It goes on after a failure, a
// panic included (it becomes a *guard.PanicError), stops early when ctx is
// done, and returns the first error.
func (m *Manager) CheckPolicies(ctx context.Context) (Result, error) {
	ts, err := m.db.Catalog().Tables("")
	if err != nil {
		return Result{}, err
	}
	var total Result
	var first error
	for _, t := range ts {
		if ctx.Err() != nil {
			break
		}
		if t.Type == catalog.StreamTable || !m.health.Ready(t.ID, m.clock.Now()) {
			continue
		}
		err := guard.Run("flush: scheduled flush of "+t.FullName(), func() error {
			_, buf, err := m.buffer(ctx, t.Namespace, t.Name)
			if err != nil {
				return err
			}
			if m.health.Failing(t.ID) || m.due(t, buf.Written()) {
				res, err := m.flushTable(ctx, t, TriggerPolicy)
				total.add(res)
				if errors.Is(err, lease.ErrHeld) {
					// Another server flushes the table; the next round
					// decides again.
					return nil
				}
				if err != nil {
					return err
				}
			}
			cres, err := m.compactDue(ctx, t, TriggerPolicy)
			total.Compacted.add(cres)
			if errors.Is(err, lease.ErrHeld) {
				return nil
			}
			return err
		})
		if err != nil && !errors.Is(err, core.ErrTableNotFound) && first == nil {
			first = err
		}
	}
	return total, first
}

// Start starts the scheduler: every CheckInterval (on the DB's clock) it
// runs CheckPolicies, on a context that Stop cancels, so that a flush in
// progress is abandoned (crash-safe: it is redone later) rather than
// awaited. A panic of a round is contained (see package guard): it is the
// round's error, and the next round runs as usual. Starting a running
// scheduler does nothing.
func (m *Manager) Start() {
	m.sched.Lock()
	defer m.sched.Unlock()
	if m.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	m.cancel, m.stopped = cancel, stopped
	tick := m.clock.NewTicker(m.opts.CheckInterval)
	go func() {
		defer close(stopped)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C():
				_ = guard.Run("flush: scheduler round", func() error {
					_, err := m.CheckPolicies(ctx)
					return err
				})
				_ = guard.Run("flush: garbage collection", func() error {
					m.collectDue(ctx)
					return nil
				})
			}
		}
	}()
}

// Stop stops the scheduler, cancelling a round in progress, and waits for
// it to end. Stopping a stopped scheduler does nothing.
func (m *Manager) Stop() {
	m.sched.Lock()
	cancel, stopped := m.cancel, m.stopped
	m.cancel, m.stopped = nil, nil
	m.sched.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-stopped
}

// Close shuts the cold tier down gracefully: it stops the scheduler,
// flushes every user and shared table (TriggerShutdown), and closes the DB,
// even when the flush failed (the rows it did not move stay in the
// StorageBackend, which Close does not close). The Result is the final
// flush's.
func (m *Manager) Close(ctx context.Context) (Result, error) {
	m.Stop()
	res, err := m.flushAll(ctx, TriggerShutdown)
	if cerr := m.db.Close(); err == nil {
		err = cerr
	}
	return res, err
}
