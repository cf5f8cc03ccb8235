//go:build !linux

package storetest

import "time"

// threadCPU is not available here; paired runs report wall time only.
func threadCPU() time.Duration { return 0 }

// processCPU is not available here; cpu-ns/op reads 0.
func processCPU() time.Duration { return 0 }
