package main

import (
	"context"
	"fmt"
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
	help := runHelp(ctx, bin)
	if !strings.Contains(help, "--no-multicast") || !strings.Contains(help, "--discovery-interfaces") {
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
// cases (shaped network only: multicast needs the namespaces' bridge): to
// each count of receivers the config names and to 8 (issue 18's rows, run
// even when the unicast swarm is not measured to 8), then to 4 with 1% of
// one receiver's datagrams dropped, then to 4 with a stranger forging
// datagrams on the bridge (multicast_faults.go).
func (b *bench) multicastFanout(ctx context.Context, rnd string, cfg config) {
	if b.clusters[toolMulticast] == nil {
		return
	}
	runs := cfg.runsFor(scFanout, "random") // every multicast case sends the random file
	for _, n := range multicastReceivers(cfg) {
		b.multicastRuns(ctx, rnd, cfg.FanoutSize, n, mcClean, runs)
	}
	b.multicastRuns(ctx, rnd, cfg.FanoutSize, mcFaultReceivers, mcLoss, runs)
	b.multicastRuns(ctx, rnd, cfg.FanoutSize, mcFaultReceivers, mcStranger, runs)
}

// multicastReceivers are the receiver counts of the clean multicast cases:
// the config's, and 8.
func multicastReceivers(cfg config) []int {
	ns := slices.Clone(cfg.FanoutReceivers)
	if !slices.Contains(ns, 8) {
		ns = append(ns, 8)
	}
	return ns
}

// multicastTargets are issue 18's rows: the seeder's upload over the data
// size with multicast (<= 1.1x to 4 receivers, <= 1.15x to 8), the bytes on
// every link against the unicast swarm of the same run (where that was
// measured; ours, not the issue's), the lossy
// receiver's completion time over the others' (<= 1.5x) and the others'
// over their time without loss (nobody else slowed: <= 1.2x, the noise of
// a few seconds' run on a shared machine), and the forged datagrams a
// receiver took (0, with the sync complete and the trees compared).
func multicastTargets(cfg config) []target {
	var ts []target
	for _, n := range multicastReceivers(cfg) {
		cas := fanoutCase(n, ", random data")
		limit := 1.1
		if n >= 8 {
			limit = 1.15
		}
		ts = append(ts, target{fmt.Sprintf("5 LAN multicast 1 -> %d, random data: seeder upload / data size", n), func(res results) float64 {
			return res.med(scFanout, cas, toolMulticast, "seeder_up_x")
		}, limit})
		if slices.Contains(cfg.FanoutReceivers, n) {
			// Counted where bytes cross the links, a unicast swarm's seeder
			// uploads about one copy too (1.02-1.03x): what multicast saves
			// is the copies every receiver uploads to the others, so the
			// row compares the bytes on every link (the LAN's airtime).
			ts = append(ts, target{fmt.Sprintf("5 LAN multicast 1 -> %d, random data: bytes on every link / unicast swarm's", n), func(res results) float64 {
				return res.ratio(scFanout, cas, toolMulticast, "blueshift", "wire_bytes")
			}, 1.0})
		}
	}
	clean, loss, stranger := mcCase(mcFaultReceivers, mcClean), mcCase(mcFaultReceivers, mcLoss), mcCase(mcFaultReceivers, mcStranger)
	ts = append(ts,
		target{fmt.Sprintf("5 LAN multicast 1 -> %d, 1%% loss on one receiver's link: its completion time / the others'", mcFaultReceivers), func(res results) float64 {
			return res.med(scFanout, loss, toolMulticast, "lossy_x")
		}, 1.5},
		target{fmt.Sprintf("5 LAN multicast 1 -> %d, 1%% loss on one receiver's link: the others' completion time / without loss", mcFaultReceivers), func(res results) float64 {
			return res.med(scFanout, loss, toolMulticast, "others_done_s") / res.med(scFanout, clean, toolMulticast, "others_done_s")
		}, 1.2},
		target{fmt.Sprintf("5 LAN multicast 1 -> %d, a stranger forging datagrams: forged datagrams taken (sync completes)", mcFaultReceivers), func(res results) float64 {
			return res.med(scFanout, stranger, toolMulticast, "forged_taken")
		}, 0})
	return slices.Clip(ts)
}
