//go:build race

package main

// raceBuild: under -race the end-to-end binary is built with the race
// detector too, so the daemon's own races fail the suite.
var raceBuild = []string{"-race"}
