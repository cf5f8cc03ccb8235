package flush_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestBackoffDoublesUpToTheCapAndResetsOnSuccess(t *testing.T) {
	b := flush.NewBackoff[uint64](2*time.Second, 30*time.Second)
	full := errors.New("disk full")
	assert.True(t, b.Ready(1, t0), "a key that never failed")
	assert.False(t, b.Failing(1))

	now := t0
	var delays []time.Duration
	for i := 1; i <= 7; i++ {
		st := b.Failed(1, now, full)
		assert.Equal(t, i, st.Failures)
		assert.Equal(t, t0, st.Since, "the run started at the first failure")
		assert.Equal(t, now, st.Last)
		assert.Same(t, full, st.Err)
		delays = append(delays, st.Delay())
		assert.False(t, b.Ready(1, st.Next.Add(-time.Nanosecond)), "failure %d: not before the wait", i)
		assert.True(t, b.Ready(1, st.Next), "failure %d: once the wait has passed", i)
		now = st.Next
	}
	assert.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		30 * time.Second, 30 * time.Second, 30 * time.Second}, delays)
	assert.True(t, b.Ready(2, t0), "keys are independent")
	assert.Len(t, b.Failures(), 1)

	was, failing := b.Succeeded(1)
	assert.True(t, failing)
	assert.Equal(t, 7, was.Failures)
	assert.True(t, b.Ready(1, t0))
	assert.Empty(t, b.Failures())
	st := b.Failed(1, now, full)
	assert.Equal(t, 1, st.Failures, "a success starts the count again")
	assert.Equal(t, 2*time.Second, st.Delay())

	_, failing = b.Succeeded(2)
	assert.False(t, failing)
	b.Forget(1)
	assert.False(t, b.Failing(1))
}

func TestBackoffDefaultsAndNoOverflow(t *testing.T) {
	b := flush.NewBackoff[string](0, 0)
	assert.Equal(t, time.Second, b.Failed("a", t0, nil).Delay(), "the default first wait")
	assert.Equal(t, time.Second, b.Failed("a", t0, nil).Delay(), "max below initial is initial")

	b = flush.NewBackoff[string](time.Second, 1<<62)
	var st flush.BackoffState
	for range 200 {
		st = b.Failed("a", t0, nil)
	}
	require.Positive(t, st.Delay())
	assert.Equal(t, time.Duration(1<<62), st.Delay())
}
