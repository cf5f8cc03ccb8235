//go:build !linux

package bbolt

import "time"

// threadCPU is not available here; paired reports wall time only.
func threadCPU() time.Duration { return 0 }
