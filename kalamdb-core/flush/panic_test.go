package flush_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
)

// panicOn is a faultfs rule that panics on operations of kind op, like a
// bug below the flush.
func panicOn(op faultfs.Op) faultfs.Rule {
	return func(o faultfs.Op, name string) error {
		if o == op {
			panic("file system bug at " + string(o) + " " + name)
		}
		return nil
	}
}

// A panic during a scheduled flush is that table's failure (an Event with
// its stack, the table in Health), the scheduler keeps running, and once
// the backoff allows, a later round flushes the table.
func TestSchedulerSurvivesAPanic(t *testing.T) {
	events := make(chan flush.Event, 8)
	e := newEnv(t, func(o *flush.Options) {
		o.CheckInterval = time.Second
		o.OnEvent = func(ev flush.Event) { events <- ev }
	})
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{RowLimit: 2})
	s := e.store("items")
	require.NoError(t, s.insert(e.ctx, "", vals(1, 0), vals(2, 0)))
	e.fsys.SetRule(panicOn(faultfs.OpCreate))
	e.m.Start()
	defer e.m.Stop()

	e.clock.Advance(time.Second)
	ev := <-events
	var pe *guard.PanicError
	require.ErrorAs(t, ev.Err, &pe)
	assert.Equal(t, flush.OpFlush, ev.Op)
	assert.Equal(t, flush.TriggerPolicy, ev.Trigger)
	assert.Equal(t, 1, ev.Failures)
	assert.Equal(t, flush.RetryFirst, ev.RetryIn)
	assert.Contains(t, pe.Error(), "panic: file system bug at create")
	assert.Contains(t, string(pe.Stack), "faultfs", "the stack shows where it panicked")
	h := e.m.Health()
	require.Len(t, h.Failing, 1)
	assert.Equal(t, "app.items", h.Failing[0].Table)
	assert.Equal(t, 2, e.bufferLen("items"), "the rows stay buffered")
	e.check("items", model{"": {1: 0, 2: 0}}, []string{""}, nil)

	e.fsys.SetRule(nil)
	// The backoff holds the table back for RetryFirst: the rounds before
	// that do not touch it.
	e.clock.Advance(flush.RetryFirst)
	ev = <-events
	require.NoError(t, ev.Err)
	assert.Equal(t, 1, ev.Recovered, "the success ends a run of one failure")
	assert.EqualValues(t, 2, ev.Flush.Rows)
	assert.Zero(t, e.bufferLen("items"))
	assert.Empty(t, e.m.Health().Failing)
}

// A panicking OnEvent callback does not stop the scheduler.
func TestSchedulerSurvivesAPanickingCallback(t *testing.T) {
	events := make(chan struct{}, 4)
	e := newEnv(t, func(o *flush.Options) {
		o.CheckInterval = time.Second
		o.OnEvent = func(flush.Event) {
			events <- struct{}{}
			panic("callback bug")
		}
	})
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{RowLimit: 1})
	s := e.store("items")
	e.m.Start()
	defer e.m.Stop()
	require.NoError(t, s.insert(e.ctx, "", vals(1, 0)))
	e.clock.Advance(time.Second)
	<-events
	require.NoError(t, s.insert(e.ctx, "", vals(2, 0)))
	e.clock.Advance(time.Second)
	<-events
}

// A scan that decodes several segments in parallel turns a panic on one
// of its goroutines into the scan's error.
func TestParallelReadSurvivesAPanic(t *testing.T) {
	e, s, _ := itemsTable(t, catalog.SharedTable)
	require.NoError(t, s.insert(e.ctx, "", vals(1, 0), vals(2, 0), vals(3, 0)))
	for gen := range 3 {
		if gen > 0 {
			for id := int64(1); id <= 3; id++ {
				require.NoError(t, s.update(e.ctx, "", id, gen))
			}
		}
		_, err := e.m.Flush(e.ctx, ns, "items")
		require.NoError(t, err)
	}
	e.reopen() // nothing cached
	s = e.store("items")
	// The scan reads the three footers first, then the three segments'
	// first row groups on parallel goroutines: those opens panic.
	opens := 0
	e.fsys.SetRule(func(op faultfs.Op, name string) error {
		if op == faultfs.OpOpen {
			if opens++; opens > 3 {
				panic("file system bug at open " + name)
			}
		}
		return nil
	})
	_, err := s.count(e.ctx, "")
	require.Error(t, err)
	assert.NotNil(t, guard.Stack(err), "%v", err)
	assert.Contains(t, err.Error(), "file system bug at open")

	e.fsys.SetRule(nil)
	e.check("items", model{"": {1: 2, 2: 2, 3: 2}}, []string{""}, nil)
}

// A compaction that succeeds, with nothing to merge, while the table's
// flush fails does not end the run of failures: the table stays in
// Health (the scheduler goes on retrying its flush) until a flush
// succeeds.
func TestCompactionDoesNotEndAFlushFailure(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{RowLimit: 1000})
	require.NoError(t, e.store("items").insert(e.ctx, "", vals(1, 0), vals(2, 0)))
	e.fsys.SetRule(func(op faultfs.Op, _ string) error {
		if op == faultfs.OpCreate {
			return errors.New("disk gone")
		}
		return nil
	})
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.Error(t, err)
	require.Len(t, e.m.Health().Failing, 1)

	res, err := e.m.Compact(e.ctx, ns, "items")
	require.NoError(t, err)
	require.Zero(t, res.Merged)
	h := e.m.Health()
	require.Len(t, h.Failing, 1, "the flush still fails")
	assert.Equal(t, "app.items", h.Failing[0].Table)

	e.fsys.SetRule(nil)
	_, err = e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.Empty(t, e.m.Health().Failing)
	assert.Zero(t, e.bufferLen("items"))
}
