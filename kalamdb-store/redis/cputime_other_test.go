//go:build !linux

package redis

import "time"

// threadCPU is not available here; paired reports wall time only.
func threadCPU() time.Duration { return 0 }
