//go:build race

package chunk

// raceEnabled shrinks the slowest property test under the race detector,
// which slows the byte loop of the cutter about tenfold.
const raceEnabled = true
