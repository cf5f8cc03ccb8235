package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPeakRSSOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	n, err := peakRSS(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, n, int64(1<<20), "a Go test binary holds more than a MiB")
	assert.Equal(t, "3 MiB", mib(3<<20))
}
