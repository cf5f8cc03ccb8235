//go:build !linux

package tablestest

import "time"

// threadCPU is only available on Linux; elsewhere the paired benchmarks
// report wall-clock figures alone.
func threadCPU() (time.Duration, bool) { return 0, false }
