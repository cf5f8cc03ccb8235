package clock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
)

func TestFakeTicker(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := clock.NewFake(t0)
	tk := f.NewTicker(10 * time.Second)
	assert.Equal(t, 1, f.Tickers())

	f.Advance(9 * time.Second)
	assert.Empty(t, tk.C(), "not due yet")
	f.Advance(time.Second)
	require.Len(t, tk.C(), 1)
	assert.Equal(t, t0.Add(10*time.Second), <-tk.C())

	// Far behind: one tick, and the next is due at the following boundary.
	f.Advance(35 * time.Second) // now t0+45s
	require.Len(t, tk.C(), 1)
	<-tk.C()
	f.Advance(4 * time.Second) // t0+49s
	assert.Empty(t, tk.C())
	f.Advance(time.Second) // t0+50s
	assert.Len(t, tk.C(), 1)

	// A full channel drops ticks.
	f.Advance(10 * time.Second)
	assert.Len(t, tk.C(), 1)

	tk.Stop()
	<-tk.C()
	f.Advance(time.Hour)
	assert.Empty(t, tk.C())
	assert.Equal(t, 0, f.Tickers())

	f.Set(t0) // backwards is ignored
	assert.Equal(t, t0.Add(50*time.Second+10*time.Second+time.Hour), f.Now())
	assert.Panics(t, func() { f.NewTicker(0) })
}

func TestReal(t *testing.T) {
	c := clock.Real()
	before := time.Now()
	assert.False(t, c.Now().Before(before))
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
}
