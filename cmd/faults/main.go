// Command faults is Blueshift's fault suite (issue 13): it runs real daemons
// of bin/blueshift as processes, does to them what users' machines do to a
// sync tool (kill -9, full disks, cut and lossy links, a stalled peer, a
// hostile member, users editing during a pull), and checks that nothing is
// lost and nothing leaks. Each scenario prints what it did and what it
// checked (files, bytes compared, seconds to converge, runs); the exit
// status is 1 if any check failed, 2 if the harness itself could not run.
//
// Two tiers: the long one (`make faults`: 20+ kills per kind, larger data,
// long cuts) and -quick (`make faults-quick`, run by CI: a few runs of
// everything on small data, minutes on two cores).
//
// It needs root (nftables, network namespaces, a tmpfs mount). Everything it
// creates is named bsfault-*: namespaces, nftables tables, mounts under its
// scratch directory; all are removed at the end. Nothing talks to a real
// network interface: devices run on 127.0.0.1 or inside its namespaces, with
// LAN discovery off.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// tier is every size and count; quick and long differ only here.
type tier struct {
	name string
	// kill -9 scenarios: rounds per kind, kills per round, data per round.
	killRounds, killsPerRound int
	killData                  int64
	// disk full: the file system's size and the data pulled into it.
	diskSize, diskData int64
	// link faults: data per pull, the link's rate, how long a cut and a stall last.
	linkData       int64
	linkRateMbit   int
	cut, stall     time.Duration
	lossPercent    int
	hostileFlood   int // connections in the connection flood
	activityRounds int
	activityData   int64
	timeout        time.Duration // to converge, per pull
}

func quickTier() tier {
	return tier{name: "quick", killRounds: 2, killsPerRound: 2, killData: 96 << 20,
		diskSize: 96 << 20, diskData: 64 << 20,
		linkData: 24 << 20, linkRateMbit: 40, cut: 45 * time.Second, stall: 20 * time.Second, lossPercent: 10,
		hostileFlood: 200, activityRounds: 1, activityData: 64 << 20, timeout: 3 * time.Minute}
}

func longTier() tier {
	return tier{name: "long", killRounds: 5, killsPerRound: 4, killData: 512 << 20,
		diskSize: 320 << 20, diskData: 256 << 20,
		linkData: 96 << 20, linkRateMbit: 100, cut: 90 * time.Second, stall: 90 * time.Second, lossPercent: 10,
		hostileFlood: 1000, activityRounds: 3, activityData: 256 << 20, timeout: 10 * time.Minute}
}

// scenarioFunc runs one scenario, recording what it did and checked in s.
type scenarioFunc func(ctx context.Context, s *scenario) error

type scenarioDef struct {
	name, what string
	run        scenarioFunc
}

func scenarios() []scenarioDef {
	return []scenarioDef{
		{"kill-receiver", "kill -9 of the receiver at random points of a large pull", killScenario(killReceiver)},
		{"kill-sender", "kill -9 of the sender at random points of a large pull", killScenario(killSender)},
		{"kill-both", "kill -9 of both devices at once at random points of a large pull", killScenario(killBoth)},
		{"disk-full", "a pull into a small file system that fills up, then space comes back", diskFull},
		{"link", "a lossy, delayed, cut link between namespaces, and a stalled sender", linkFaults},
		{"hostile", "a member of one share attacks over the wire while an honest peer syncs", hostile},
		{"activity", "users edit, append, rename, touch and chmod during a pull", activity},
	}
}

func main() {
	quick := flag.Bool("quick", false, "the quick tier (CI): few runs, small data")
	only := flag.String("scenarios", "", "comma-separated scenario names to run (default: all): "+names())
	bin := flag.String("bin", "bin/blueshift", "the blueshift binary to test (build it with `go build -o bin/blueshift ./cmd/blueshift`)")
	workRoot := flag.String("work", "", "scratch directory (default: a new one under $TMPDIR)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of every random choice (data, kill points); printed, so a run can be repeated")
	keep := flag.Bool("keep", false, "keep the scratch directory (homes, logs) even when everything passed")
	flag.Parse()
	t := longTier()
	if *quick {
		t = quickTier()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := mainErr(ctx, t, *only, *bin, *workRoot, *seed, *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func names() string {
	var ns []string
	for _, d := range scenarios() {
		ns = append(ns, d.name)
	}
	return strings.Join(ns, ",")
}

func mainErr(ctx context.Context, t tier, only, bin, workRoot string, seed uint64, keep bool) (int, error) {
	if os.Geteuid() != 0 {
		return 0, fmt.Errorf("the fault suite needs root (nftables, network namespaces, a tmpfs mount): run it with sudo")
	}
	for _, tool := range []string{"ip", "nft", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 0, fmt.Errorf("%s not found: apt-get install -y iproute2 nftables mount", tool)
		}
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(abs); err != nil {
		return 0, fmt.Errorf("blueshift binary: %w (build it with `go build -o %s ./cmd/blueshift`)", err, bin)
	}
	work, err := os.MkdirTemp(workRoot, "bsfault-")
	if err != nil {
		return 0, err
	}
	cleanStale(ctx)
	fmt.Printf("fault suite, %s tier, seed %d, binary %s, scratch %s\n", t.name, seed, abs, work)
	var results []*scenario
	start := time.Now()
	for i, d := range scenarios() {
		if only != "" && !strings.Contains(","+only+",", ","+d.name+",") {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		s := newScenario(d.name, d.what, t, abs, filepath.Join(work, d.name), seed+uint64(i)*1000003)
		results = append(results, s)
		fmt.Printf("\n== %s: %s\n", d.name, d.what)
		if err := os.MkdirAll(s.work, 0o755); err != nil {
			return 0, err
		}
		t0 := time.Now()
		err := d.run(ctx, s)
		if err == nil {
			s.stopDevices()
		}
		s.closeAll()
		if err != nil {
			s.fail("scenario ran to the end", "%v", err)
		}
		s.took = time.Since(t0)
		switch {
		case keep:
		case len(s.failures) == 0:
			os.RemoveAll(s.work)
		default:
			s.removeData() // the logs and homes stay, to read; the data would fill the disk
		}
		fmt.Printf("   %s: %d checks, %d failed, %.0f s\n", d.name, s.checks, len(s.failures), s.took.Seconds())
	}
	fmt.Printf("\n== summary (%s tier, seed %d, %.0f s)\n", t.name, seed, time.Since(start).Seconds())
	fmt.Printf("%-14s %6s %7s %7s %8s  %s\n", "scenario", "runs", "checks", "failed", "seconds", "first failure")
	failed := 0
	for _, s := range results {
		first := ""
		if len(s.failures) > 0 {
			first = s.failures[0]
			failed++
		}
		fmt.Printf("%-14s %6d %7d %7d %8.0f  %s\n", s.name, s.runs, s.checks, len(s.failures), s.took.Seconds(), first)
	}
	if failed == 0 && !keep {
		os.RemoveAll(work)
	} else {
		fmt.Printf("homes and logs are kept in %s\n", work)
	}
	if ctx.Err() != nil {
		fmt.Println("interrupted")
		return 1, nil
	}
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

// cleanStale removes what an interrupted earlier run may have left: our
// namespaces (a crashed harness cannot delete them).
func cleanStale(ctx context.Context) {
	out, _ := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "bsfault-") {
			_ = exec.CommandContext(ctx, "ip", "netns", "del", f[0]).Run()
		}
	}
}
