package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The harness starts processes and goroutines that watch them: none may
// outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
