// Command bench is Blueshift's whole-system benchmark (issue 8): it runs the
// same scenarios with Blueshift, rsync (daemon over TCP, with and without
// zstd) and Syncthing, and writes bench/results/RESULTS.md, results.tsv and
// one PNG per scenario family.
//
// Every figure is measured at the edges a user sees: wall time from the first
// command to byte-identical trees (compared by this program), IP bytes on the
// wire from nftables counters, CPU seconds and peak RSS of every process from
// /proc or wait4. Shaped links live in network namespaces the program
// creates and deletes; nothing leaves loopback or those namespaces.
// rsync reads the corpus itself; Blueshift and Syncthing each get a
// hard-link clone of it, a second old when the timed part starts, as a
// folder a user shares is (cloneAge).
//
// It needs root (nftables, namespaces) and installs what it lacks with
// apt-get. -blueshift=false leaves Blueshift out. The exit status is
// non-zero if any tool failed to converge or verify, never for a missed target.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

const (
	scLoop      = "1 initial sync, loopback"
	scShaped    = "2 initial sync, 100 Mbit/s"
	scEdits     = "3 small edits to one file"
	scReconnect = "4 reconnect after restart"
	scFanout    = "5 fan-out to three devices" // and to 4 and 8, random data (the swarm)
	scLatency   = "6 change-to-synced latency"
	scScale     = "7 scale: many tiny files"
	scRebuilt   = "8 rebuilt binary replaces its old build"
	scSend      = "9 one-off send of a file"
)

var scenarioOrder = []string{scLoop, scShaped, scEdits, scReconnect, scFanout, scLatency, scScale, scRebuilt, scSend, scPunched, scVault}

// config is every size and knob; quick and full differ only here.
type config struct {
	Quick          bool
	Runs           int  // -runs: runs of every figure; 0 = as Plan says
	Plan           plan // runs per scenario (and case); nil = one run each
	Seed           uint64
	Small          smallSpec
	LargeCount     int
	LargeSize      int64
	IncompSize     int64
	ShapedCases    []string // corpora run over the shaped link
	EditSize       int64
	ReconnectFiles []int    // Small.Files, then ScaleFiles when that is set
	Tools          []string // when set, the only tools scenarios 1-4, 6 and 7 measure
	FanoutSize     int64    // 0 = skip
	// FanoutReceivers: the receivers of scenario 5's random-data cases.
	FanoutReceivers []int
	LatencyEdits    int
	LatencyQuiet    time.Duration // the link is quiet this long before each edit
	ScaleFiles      int           // Syncthing vs Blueshift; 0 = skip
	HugeFiles       int           // Blueshift alone; 0 = skip
	SendSize        int64         // scenario 9's file
	// RebuiltPair is scenario 8's Blueshift pair as OLD..NEW (-rebuilt-pair);
	// "" = the measured commit and the parent of its last code change.
	RebuiltPair string
	// Profiles, when set, is a directory where scenario 1's Blueshift runs
	// leave each daemon's CPU profile of its whole run (-profiles).
	Profiles string
	Link     netns.Link
	Timeout  time.Duration
}

func quickConfig() config {
	return config{Quick: true, Seed: 1, Small: smallSpec{2000, 1 << 10, 64 << 10},
		LargeCount: 3, LargeSize: 32 << 20, IncompSize: 32 << 20, ShapedCases: []string{"compressible"},
		EditSize: 10 << 20, FanoutSize: 8 << 20, FanoutReceivers: []int{4}, LatencyEdits: 10, LatencyQuiet: 300 * time.Millisecond,
		SendSize: 32 << 20, Link: netns.Link{RateMbit: 100, DelayMs: 2}, Timeout: 3 * time.Minute}
}

func fullConfig() config {
	return config{Plan: fullPlan(), Seed: 1, Small: smallSpec{20000, 1 << 10, 64 << 10},
		LargeCount: 3, LargeSize: 256 << 20, IncompSize: 512 << 20,
		ShapedCases: []string{"small files", "compressible", "incompressible"},
		EditSize:    100 << 20, FanoutSize: 256 << 20, FanoutReceivers: []int{4, 8},
		LatencyEdits: 100, LatencyQuiet: 300 * time.Millisecond, ScaleFiles: 200000, HugeFiles: 1000000, SendSize: 1 << 30,
		Link: netns.Link{RateMbit: 100, DelayMs: 2}, Timeout: 15 * time.Minute}
}

// withReconnectCounts sets the reconnect scenario's file counts: the small
// corpus's, and the scale run's (whose synced pair it reuses).
func (c config) withReconnectCounts() config {
	c.ReconnectFiles = []int{c.Small.Files}
	if c.ScaleFiles > 0 && c.ScaleFiles != c.Small.Files {
		c.ReconnectFiles = append(c.ReconnectFiles, c.ScaleFiles)
	}
	return c
}

func main() {
	quick := flag.Bool("quick", false, "small data, one run (CI)")
	runs := flag.Int("runs", 0, "runs of every figure (default: 1 quick; full: the plan, see -plan)")
	planFlag := flag.String("plan", "", "change the full run's plan: SCENARIO[/CASE]=RUNS,... (e.g. 2/incompressible=3,5=1)")
	scale := flag.String("scale", "", "scenario 7's file counts SCALE,HUGE (for testing the harness at smaller sizes, e.g. 20000,50000; 0 skips one)")
	sendMiB := flag.Int64("send-size", 0, "scenario 9's file in MiB (default: 1024; 32 with -quick)")
	withBS := flag.Bool("blueshift", true, "measure Blueshift (builds ./cmd/blueshift into bin/blueshift); -blueshift=false measures the baselines alone")
	rev := flag.String("blueshift-rev", "HEAD", "git revision of Blueshift to build and measure (\"\" = the working tree, uncommitted changes included)")
	rebuiltPair := flag.String("rebuilt-pair", "", "scenario 8's Blueshift builds as OLD..NEW git revisions (default: the parent of the measured commit's last code change..the measured commit), to compare two commits' figures on one pair")
	tools := flag.String("tools", "", "comma-separated tools of scenarios 1-4, 6 and 7 to measure (default: all; e.g. -tools blueshift to bisect a regression)")
	only := flag.String("scenarios", "1,2,3,4,5,6,7,8,9,10,11", "comma-separated scenario numbers to run")
	profiles := flag.String("profiles", "", "directory for CPU profiles of both Blueshift daemons in each run of scenario 1 (run --cpu-profile; a profiled run costs ~1-3% more CPU)")
	out := flag.String("out", "bench/results", "directory for RESULTS.md, results.tsv and plots")
	workRoot := flag.String("work", "", "scratch directory (default: a new one under $TMPDIR)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	if *runs > 0 {
		cfg.Runs = *runs
	}
	cfg.RebuiltPair = *rebuiltPair
	cfg.Profiles = *profiles
	if *planFlag != "" {
		if cfg.Plan == nil {
			cfg.Plan = plan{}
		}
		if err := parsePlan(cfg.Plan, *planFlag); err != nil {
			log.Error("bad flag", "err", err)
			os.Exit(2)
		}
	}
	if *scale != "" {
		if _, err := fmt.Sscanf(*scale, "%d,%d", &cfg.ScaleFiles, &cfg.HugeFiles); err != nil {
			log.Error("bad flag", "err", fmt.Errorf("parse -scale %q: want SCALE,HUGE file counts: %w", *scale, err))
			os.Exit(2)
		}
	}
	if *sendMiB > 0 {
		cfg.SendSize = *sendMiB << 20
	}
	cfg = cfg.withReconnectCounts()
	if *tools != "" {
		cfg.Tools = strings.Split(*tools, ",")
	}
	code, err := mainErr(ctx, log, cfg, *withBS, *rev, *only, *out, *workRoot)
	if err != nil {
		log.Error("bench failed", "err", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func mainErr(ctx context.Context, log *slog.Logger, cfg config, withBS bool, rev, only, out, workRoot string) (int, error) {
	clock := newStopwatch(time.Now())
	if os.Geteuid() != 0 {
		return 0, fmt.Errorf("bench needs root for nftables counters and network namespaces: run it with sudo")
	}
	want := func(n string) bool { return strings.Contains(","+only+",", ","+n+",") }
	if want("7") && withBS && cfg.HugeFiles > 0 {
		// Checked first, so a full run does not stop at minute 45 for want of disk.
		if err := checkRoom(workRoot, cfg.HugeFiles); err != nil {
			return 0, err
		}
	}
	if err := ensurePackages(ctx, log); err != nil {
		return 0, err
	}
	work, err := os.MkdirTemp(workRoot, "blueshift-bench-")
	if err != nil {
		return 0, err
	}
	b := &bench{cfg: cfg, log: log, work: work, rsyncBin: "rsync", clusters: map[string]newCluster{}, clock: clock,
		interrupted: func() bool { return ctx.Err() != nil }}
	defer func() {
		if len(b.failures) == 0 {
			os.RemoveAll(work)
			return
		}
		os.RemoveAll(filepath.Join(work, "corpus"))
		log.Warn("runs failed: their homes and logs are kept", "dir", work)
	}()
	b.rsyncs = []rsyncTool{{name: "rsync", bin: "rsync"}, {name: "rsync+zstd", bin: "rsync", opts: []string{"--compress", "--compress-choice=zstd"}},
		{name: "rsync --fsync", bin: "rsync", opts: []string{"--fsync"}}}
	stBin, _ := exec.LookPath("syncthing")
	b.clusters["syncthing"] = newSyncthing(stBin)
	b.order = []string{"syncthing"}
	bsNote := "not measured (run with -blueshift=false)"
	bsRun := ""
	bsBin := ""
	if withBS {
		bin, commit, err := buildBlueshift(ctx, rev, work)
		if err != nil {
			return 0, err
		}
		bsBin = bin
		runArgs := blueshiftRunArgs(ctx, bin)
		if cfg.Profiles != "" {
			if b.cfg.Profiles, err = profileDir(ctx, bin, cfg.Profiles); err != nil {
				return 0, err
			}
		}
		b.clusters["blueshift"] = newBlueshift(bin, runArgs)
		bsRun = "built from " + commit + "; run flags: --listen HOST:PORT " + strings.Join(runArgs, " ")
		if len(runArgs) == 0 {
			bsRun += "(this build has no --no-discovery flag: LAN discovery as the daemon defaults)"
		}
		b.order = append([]string{"blueshift"}, b.order...)
		bsNote = ""
	}
	all := append(append([]string{}, b.order...), "rsync", "rsync+zstd")
	daemons := b.order
	// rsync --fsync is the baseline of a first sync of large files on
	// loopback (issue 14): it makes its writes durable, as Blueshift does.
	largeTools := append(slices.Clone(all), "rsync --fsync")
	if len(cfg.Tools) > 0 {
		keep := func(ts []string) []string {
			return slices.DeleteFunc(slices.Clone(ts), func(t string) bool { return !slices.Contains(cfg.Tools, t) })
		}
		all, daemons, largeTools = keep(all), keep(daemons), keep(largeTools)
	}
	// croc takes part in scenario 9 only; the report lists it too.
	reported := append(slices.Clone(largeTools), "croc")
	if withBS {
		reported = b.addMulticast(ctx, bsBin, blueshiftRunArgs(ctx, bsBin), reported) // multicast.go
	}

	log.Info("generating corpora", "seed", cfg.Seed, "quick", cfg.Quick)
	corp := filepath.Join(work, "corpus")
	corpora := map[string]string{"small files": corp + "/small", "compressible": corp + "/large", "incompressible": corp + "/incomp"}
	if _, err := genSmall(corpora["small files"], cfg.Seed, cfg.Small); err != nil {
		return 0, err
	}
	if err := genMixed(corpora["compressible"], cfg.Seed, cfg.LargeCount, cfg.LargeSize); err != nil {
		return 0, err
	}
	if err := genRandomFile(corpora["incompressible"]+"/random.bin", cfg.Seed, 0, cfg.IncompSize); err != nil {
		return 0, err
	}
	b.netNote = "not run"
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	// The results are rewritten after every scenario, so an interrupted run
	// (SIGINT, a deadline) still leaves what it measured, saying what is missing.
	var ran []string
	report := func(n string) (results, string, error) {
		if n != "" {
			ran = append(ran, n)
		}
		res := results{rows: b.rows}
		if err := writeTSV(filepath.Join(out, "results.tsv"), b.rows); err != nil {
			return res, "", err
		}
		var missing []string
		for _, k := range strings.Split(only, ",") {
			if !slices.Contains(ran, k) {
				missing = append(missing, k)
			}
		}
		coverage := "scenarios run: " + strings.Join(ran, ", ")
		if len(missing) > 0 {
			coverage += "; **not run: " + strings.Join(missing, ", ") + "**"
			if ctx.Err() != nil {
				coverage += " (the run was interrupted)"
			}
		}
		now := time.Now()
		hz := harness{total: now.Sub(clock.start), parts: []harnessPart{{"setup: packages, build, corpora, reports", "-", clock.spentOn(partSetup, now)}}}
		for _, sc := range scenarioOrder {
			if d := clock.spentOn(scNum(sc), now); d > 0 {
				hz.parts = append(hz.parts, harnessPart{sc, cfg.planText(sc), d})
			}
		}
		md := markdown(cfg, machineInfo(context.Background(), bsRun), res, reported, b.failures, b.retried, b.netNote, bsNote, coverage, hz)
		return res, md, os.WriteFile(filepath.Join(out, "RESULTS.md"), []byte(md), 0o644)
	}
	done := func(n string) error {
		clock.enter(partSetup, time.Now())
		if ctx.Err() != nil {
			n = "" // cut short: not listed as run
		}
		log.Info("scenario done", "scenario", n, "harness_time", fmtDur(clock.spentOn(n, time.Now())), "total", fmtDur(time.Since(clock.start)))
		_, _, err := report(n)
		return err
	}
	// Scenario 4 reuses the synced pairs scenarios 1 and 7 leave (same
	// corpora), rather than syncing 20,000 and 200,000 files again.
	foldInto1 := want("4") && want("1")
	foldInto7 := want("4") && want("7") && cfg.ScaleFiles > 0 && cfg.ScaleFiles != cfg.Small.Files
	if want("1") && ctx.Err() == nil {
		clock.enter("1", time.Now())
		for _, cas := range []string{"small files", "compressible", "incompressible"} {
			o := initOpts{}
			if cas == "small files" && foldInto1 {
				o.after = b.reconnectAfter(cfg.Small.Files)
			}
			tools := all
			if cas != "small files" {
				tools = largeTools
			}
			b.initial(ctx, scLoop, cas, corpora[cas], tools, cfg.runsFor(scLoop, cas), o)
		}
		if err := done("1"); err != nil {
			return 0, err
		}
	}
	if want("2") && ctx.Err() == nil {
		clock.enter("2", time.Now())
		for _, cas := range cfg.ShapedCases {
			b.initial(ctx, scShaped, cas, corpora[cas], all, cfg.runsFor(scShaped, cas), initOpts{shaped: true})
		}
		if err := done("2"); err != nil {
			return 0, err
		}
	}
	if want("3") && ctx.Err() == nil {
		clock.enter("3", time.Now())
		b.edits(ctx, scEdits, all, cfg.runsFor(scEdits, ""))
		if err := done("3"); err != nil {
			return 0, err
		}
	}
	if want("4") && ctx.Err() == nil {
		clock.enter("4", time.Now())
		for _, n := range cfg.ReconnectFiles {
			if n == cfg.Small.Files && foldInto1 || n == cfg.ScaleFiles && foldInto7 {
				continue // measured on scenario 1's or 7's pairs
			}
			dir := corpora["small files"]
			if n != cfg.Small.Files {
				// Reconnecting is about the number of files, not their
				// bytes: larger counts use tiny files (64 B-1 KiB), so the
				// initial sync before it does not move 6 GB per tool.
				dir = filepath.Join(corp, fmt.Sprintf("reconnect-%d", n))
				if err := genTiny(dir, cfg.Seed, n); err != nil {
					return 0, err
				}
			}
			b.reconnect(ctx, scReconnect, dir, n, all, cfg.runsFor(scReconnect, fmt.Sprint(n)))
			os.RemoveAll(filepath.Join(corp, fmt.Sprintf("reconnect-%d", n)))
		}
		if !foldInto7 {
			if err := done("4"); err != nil {
				return 0, err
			}
		}
	}
	if want("5") && ctx.Err() == nil && cfg.FanoutSize > 0 {
		clock.enter("5", time.Now())
		dir := filepath.Join(corp, "fanout")
		if err := genMixed(dir, cfg.Seed+1, 1, cfg.FanoutSize); err != nil {
			return 0, err
		}
		b.fanout(ctx, scFanout, dir, cfg.FanoutSize, 3, "", all, cfg.runsFor(scFanout, ""))
		// The swarm: random data (nothing for compression to hide) to more
		// receivers, which fetch from each other what they already hold.
		rnd := filepath.Join(corp, "fanout-random")
		if err := genRandomFile(filepath.Join(rnd, "random.bin"), cfg.Seed+2, 0, cfg.FanoutSize); err != nil {
			return 0, err
		}
		for _, n := range cfg.FanoutReceivers {
			b.fanout(ctx, scFanout, rnd, cfg.FanoutSize, n, ", random data", all, cfg.runsFor(scFanout, "random"))
		}
		b.multicastFanout(ctx, rnd, cfg) // multicast.go
		if err := done("5"); err != nil {
			return 0, err
		}
	}
	if want("6") && ctx.Err() == nil {
		clock.enter("6", time.Now())
		b.latency(ctx, scLatency, daemons, cfg.runsFor(scLatency, ""))
		if err := done("6"); err != nil {
			return 0, err
		}
	}
	if want("7") && ctx.Err() == nil && cfg.ScaleFiles+cfg.HugeFiles > 0 {
		clock.enter("7", time.Now())
		if err := b.scale(ctx, corp, daemons, withBS, foldInto7); err != nil {
			return 0, err
		}
		if foldInto7 {
			if err := done("4"); err != nil {
				return 0, err
			}
		}
		if err := done("7"); err != nil {
			return 0, err
		}
	}
	if want("8") && ctx.Err() == nil {
		clock.enter("8", time.Now())
		if pairs, err := b.rebuiltPairs(ctx, rev, work); err != nil {
			b.fail(scRebuilt, "build the programs", "harness", err)
		} else {
			b.rebuilt(ctx, scRebuilt, pairs, all, cfg.runsFor(scRebuilt, ""))
		}
		if err := done("8"); err != nil {
			return 0, err
		}
	}
	if want("9") && ctx.Err() == nil {
		clock.enter("9", time.Now())
		var tools []sendTool
		if bsBin != "" {
			tools = append(tools, blueshiftSendTool(ctx, bsBin))
		}
		if croc, err := buildCroc(ctx, work); err != nil {
			b.fail(scSend, "build croc", "harness", err)
		} else {
			tools = append(tools, crocSendTool(croc))
		}
		file := filepath.Join(corp, "send", "random.bin")
		if err := genRandomFile(file, cfg.Seed+3, 0, cfg.SendSize); err != nil {
			return 0, err
		}
		b.sendScenario(ctx, scSend, file, tools, cfg.runsFor(scSend, ""))
		os.RemoveAll(filepath.Dir(file))
		if err := done("9"); err != nil {
			return 0, err
		}
	}
	if want("10") && ctx.Err() == nil && bsBin != "" { // punched.go
		clock.enter("10", time.Now())
		reported = append(reported, toolPunchTCP)
		b.punchedScenario(ctx, bsBin, blueshiftRunArgs(ctx, bsBin), cfg.runsFor(scPunched, ""))
		if err := done("10"); err != nil {
			return 0, err
		}
	}
	if want("11") && ctx.Err() == nil && withBS { // vault.go
		clock.enter("11", time.Now())
		reported = append(reported, toolVaultPlain, toolVerify10k)
		b.vaultScenario(ctx, cfg.runsFor(scVault, ""))
		if err := done("11"); err != nil {
			return 0, err
		}
	}
	res, md, err := report("")
	if err != nil {
		return 0, err
	}
	if err := plot(out, res, reported); err != nil {
		log.Warn("plots skipped", "err", err)
	}
	fmt.Print(md)
	if ctx.Err() != nil {
		log.Warn("interrupted: the results hold what was measured", "scenarios_run", ran)
		return 1, nil
	}
	if len(b.failures) > 0 {
		return 1, nil
	}
	return 0, nil
}

// buildBlueshift builds ./cmd/blueshift into bin/blueshift: from the
// committed revision rev (exported with git archive, so edits in progress in
// the checkout do not leak into the measurement), or from the working tree
// when rev is empty. It returns the binary and a description of its source.
func buildBlueshift(ctx context.Context, rev, work string) (bin, source string, err error) {
	bin, _ = filepath.Abs("bin/blueshift")
	if rev == "" {
		if _, err := run(ctx, exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/blueshift")); err != nil {
			return "", "", fmt.Errorf("build blueshift: %w", err)
		}
		desc, _ := run(ctx, exec.CommandContext(ctx, "git", "describe", "--always", "--dirty"))
		return bin, "the working tree at " + firstLine(desc), nil
	}
	commit, err := run(ctx, exec.CommandContext(ctx, "git", "rev-parse", "--short", rev+"^{commit}"))
	if err != nil {
		return "", "", fmt.Errorf("resolve blueshift revision %q: %w", rev, err)
	}
	commit = firstLine(commit)
	src := filepath.Join(work, "blueshift-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", "", err
	}
	export := exec.CommandContext(ctx, "sh", "-c", `git archive --format=tar "$1" | tar -x -C "$2"`, "sh", commit, src)
	if _, err := run(ctx, export); err != nil {
		return "", "", fmt.Errorf("export blueshift %s: %w", commit, err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/blueshift")
	build.Dir = src
	if _, err := run(ctx, build); err != nil {
		return "", "", fmt.Errorf("build blueshift %s: %w", commit, err)
	}
	os.RemoveAll(src)
	return bin, "commit " + commit, nil
}

// ensurePackages installs the Debian packages the harness drives.
func ensurePackages(ctx context.Context, log *slog.Logger) error {
	need := map[string]string{"rsync": "rsync", "syncthing": "syncthing", "nft": "nftables", "ip": "iproute2", "tc": "iproute2", "gnuplot": "gnuplot-nox", "time": "time"}
	var missing []string
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil && !strings.Contains(strings.Join(missing, " "), pkg) {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	log.Info("installing packages", "packages", missing)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	up := exec.CommandContext(ctx, "apt-get", "update", "-qq")
	up.Env = env
	if _, err := run(ctx, up); err != nil {
		return err
	}
	in := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-qq"}, missing...)...)
	in.Env = env
	_, err := run(ctx, in)
	return err
}

// machineInfo describes where the numbers came from.
func machineInfo(ctx context.Context, bsRun string) []string {
	first := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return "unknown"
		}
		return firstLine(string(out))
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Join(strings.Fields(firstLine(string(b)))[1:], " ")
	}
	info := []string{
		fmt.Sprintf("date: %s", time.Now().UTC().Format("2006-01-02 15:04 MST")),
		fmt.Sprintf("nproc: %d, memory: %s, kernel: %s", runtime.NumCPU(), mem, first("uname", "-r")),
		fmt.Sprintf("os: %s", first("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME")),
		fmt.Sprintf("rsync: %s", first("rsync", "--version")),
		fmt.Sprintf("syncthing: %s", first("syncthing", "--version")),
		fmt.Sprintf("go: %s", runtime.Version()),
	}
	if reportsFreePages() {
		info = append(info, fmt.Sprintf("free page reporting: on (freed memory goes back to the VM's host); every initial sync starts %s after the last run, on cold pages, whatever tool ran before it", reportSettle))
	}
	if bsRun != "" {
		info = append(info, "blueshift: "+bsRun)
	}
	return info
}
