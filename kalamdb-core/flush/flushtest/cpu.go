package flushtest

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports the process's CPU time per operation as cpu-ns/op, a
// figure that a busy machine distorts less than ns/op. Time spent while the
// benchmark timer is stopped is excluded by the caller (pause/resume).
type cpuMeter struct {
	total, start time.Duration
	running      bool
}

func (c *cpuMeter) resume() {
	if !c.running {
		c.start, c.running = cpuTime(), true
	}
}

func (c *cpuMeter) pause() {
	if c.running {
		c.total += cpuTime() - c.start
		c.running = false
	}
}

func (c *cpuMeter) report(b *testing.B) {
	c.pause()
	b.ReportMetric(float64(c.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
