package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// LAN multicast of blocks (issue 18), measured in scenario 5's random-data
// fan-out cases: the same corpus and receivers, with the tool
// "blueshift+multicast", whose daemons run LAN discovery and multicast on
// the namespaces' links (eth0; nothing leaves the harness's namespaces).
// The "blueshift" rows of the same cases, measured in the same run with
// discovery and so multicast off, are the unicast swarm: the baseline.

// toolMulticast names Blueshift with LAN multicast on.
const toolMulticast = "blueshift+multicast"

// multicastRunArgs returns the run flags of the multicast tool: runArgs
// with LAN discovery on eth0 instead of off, and false when the binary has
// no multicast (no --no-multicast flag).
func multicastRunArgs(ctx context.Context, bin string, runArgs []string) ([]string, bool) {
	help, _ := exec.CommandContext(ctx, bin, "run", "--help").CombinedOutput()
	if !strings.Contains(string(help), "--no-multicast") || !strings.Contains(string(help), "--discovery-interfaces") {
		return nil, false
	}
	var args []string
	for i := 0; i < len(runArgs); i++ {
		switch runArgs[i] {
		case "--no-discovery":
		case "--discovery-interfaces":
			i++ // its value
		default:
			args = append(args, runArgs[i])
		}
	}
	return append(args, "--discovery-interfaces", "eth0"), true
}

// addMulticast registers the multicast tool when the binary has it; the
// report lists it after the others.
func (b *bench) addMulticast(ctx context.Context, bin string, runArgs []string, reported []string) []string {
	args, ok := multicastRunArgs(ctx, bin, runArgs)
	if !ok {
		return reported
	}
	b.clusters[toolMulticast] = newBlueshift(bin, args)
	return append(reported, toolMulticast)
}

// multicastFanout measures the multicast tool on scenario 5's random-data
// cases (shaped network only: multicast needs the namespaces' bridge).
func (b *bench) multicastFanout(ctx context.Context, rnd string, cfg config) {
	if b.clusters[toolMulticast] == nil {
		return
	}
	for _, n := range cfg.FanoutReceivers {
		b.fanout(ctx, scFanout, rnd, cfg.FanoutSize, n, ", random data", []string{toolMulticast}, cfg.runsFor(scFanout, ""))
	}
}

// multicastTargets are issue 18's rows: the seeder's upload over the data
// size with multicast (<= 1.1x to 4 receivers, <= 1.15x to 8), and its
// ratio to the unicast swarm of the same run.
func multicastTargets(cfg config) []target {
	var ts []target
	for _, n := range cfg.FanoutReceivers {
		cas := fanoutCase(n, ", random data")
		limit := 1.1
		if n >= 8 {
			limit = 1.15
		}
		ts = append(ts,
			target{fmt.Sprintf("5 LAN multicast 1 -> %d, random data: seeder upload / data size", n), func(res results) float64 {
				return res.med(scFanout, cas, toolMulticast, "seeder_up_x")
			}, limit},
			target{fmt.Sprintf("5 LAN multicast 1 -> %d, random data: seeder upload / unicast swarm", n), func(res results) float64 {
				return res.ratio(scFanout, cas, toolMulticast, "blueshift", "seeder_up_bytes")
			}, 1.0})
	}
	return slices.Clip(ts)
}
