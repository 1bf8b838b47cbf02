//go:build !unix

package engine

import "time"

// processCPU is not measured here: benchmarks omit their CPU figure.
func processCPU() time.Duration { return 0 }
