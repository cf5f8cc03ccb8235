//go:build !linux

package pebble

import "time"

// threadCPU is not available here; paired reports wall time only.
func threadCPU() time.Duration { return 0 }
