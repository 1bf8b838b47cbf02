package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// row is one measured number: results.tsv holds exactly these.
type row struct {
	Scenario, Case, Tool string
	Run                  int
	Metric               string
	Value                float64
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// results indexes rows for lookups.
type results struct{ rows []row }

func (r results) values(scenario, cas, tool, metric string) map[int]float64 {
	out := map[int]float64{}
	for _, x := range r.rows {
		if x.Scenario == scenario && x.Case == cas && x.Tool == tool && x.Metric == metric {
			out[x.Run] = x.Value
		}
	}
	return out
}

// med is the median over runs, or NaN when nothing was measured.
func (r results) med(scenario, cas, tool, metric string) float64 {
	var xs []float64
	for _, v := range r.values(scenario, cas, tool, metric) {
		xs = append(xs, v)
	}
	return median(xs)
}

// ratio is the median of per-run ratios tool/other: each run's pair was
// measured back to back, so machine noise cancels better than in a ratio of
// medians.
func (r results) ratio(scenario, cas, tool, other, metric string) float64 {
	a, b := r.values(scenario, cas, tool, metric), r.values(scenario, cas, other, metric)
	var xs []float64
	for run, v := range a {
		if w, ok := b[run]; ok && w > 0 {
			xs = append(xs, v/w)
		}
	}
	return median(xs)
}

// target is one goal of issue 8, checked on the numbers of this run.
type target struct {
	what  string
	value func(results) float64 // NaN = not measured
	limit float64
}

func targets(cfg config) []target {
	r := func(sc, cas, other, metric string) func(results) float64 {
		return func(res results) float64 { return res.ratio(sc, cas, "blueshift", other, metric) }
	}
	abs := func(sc, cas, metric string, div float64) func(results) float64 {
		return func(res results) float64 { return res.med(sc, cas, "blueshift", metric) / div }
	}
	ts := []target{}
	for _, cas := range []string{"small files", "compressible", "incompressible"} {
		ts = append(ts, target{"1 loopback " + cas + ": wall time / rsync", r(scLoop, cas, "rsync", "wall_s"), 1.0})
	}
	ts = append(ts,
		target{"2 100 Mbit/s compressible: wall time / rsync", r(scShaped, "compressible", "rsync", "wall_s"), 0.5},
		target{"2 100 Mbit/s compressible: wall time / Syncthing", r(scShaped, "compressible", "syncthing", "wall_s"), 0.6},
		target{"3 small edits: total bytes / rsync", r(scEdits, "all edits (total)", "rsync", "wire_bytes"), 1.0},
		target{"3 rename: bytes / file size", abs(scEdits, "rename", "wire_bytes", float64(cfg.EditSize)), 0.01},
		target{"3 move: bytes / file size", abs(scEdits, "move to another directory", "wire_bytes", float64(cfg.EditSize)), 0.01},
	)
	for _, n := range cfg.ReconnectFiles {
		ts = append(ts, target{fmt.Sprintf("4 reconnect %d files, nothing changed: time / Syncthing", n),
			r(scReconnect, fmt.Sprintf("%d files, nothing changed", n), "syncthing", "wall_s"), 0.2})
	}
	if k := len(cfg.ReconnectFiles); k >= 2 {
		lo, hi := cfg.ReconnectFiles[0], cfg.ReconnectFiles[k-1]
		ts = append(ts, target{fmt.Sprintf("4 reconnect bytes flat: bytes(%d) / bytes(%d) files", hi, lo), func(res results) float64 {
			return res.med(scReconnect, fmt.Sprintf("%d files, nothing changed", hi), "blueshift", "wire_bytes") /
				res.med(scReconnect, fmt.Sprintf("%d files, nothing changed", lo), "blueshift", "wire_bytes")
		}, 2.0})
	}
	ts = append(ts,
		target{"5 fan-out: seeder upload / data size", abs(scFanout, fanoutCase(3, ""), "seeder_up_x", 1), 2.0},
	)
	// Issue 14: the first sync of large files, CPU per GB, bytes of new data.
	for _, cas := range []string{"compressible", "incompressible"} {
		ts = append(ts,
			target{"1 loopback " + cas + ": wall time / rsync --fsync", r(scLoop, cas, "rsync --fsync", "wall_s"), 1.0},
			target{"1 loopback " + cas + ": CPU s per GB, both ends / rsync", r(scLoop, cas, "rsync", "cpu_s_per_gb"), 2.0})
	}
	ts = append(ts,
		target{"2 100 Mbit/s compressible: bytes / rsync+zstd", r(scShaped, "compressible", "rsync+zstd", "wire_bytes"), 0.9},
		target{"2 100 Mbit/s small files: bytes / rsync+zstd", r(scShaped, "small files", "rsync+zstd", "wire_bytes"), 0.9})
	for _, cas := range []string{caseRebuiltBlueshift, caseRebuiltTomljson} {
		ts = append(ts, target{"8 " + cas + ": bytes / rsync+zstd", r(scRebuilt, cas, "rsync+zstd", "wire_bytes"), 0.5})
	}
	for _, n := range cfg.FanoutReceivers {
		ts = append(ts, target{fmt.Sprintf("5 swarm 1 -> %d, random data: seeder upload / data size", n),
			abs(scFanout, fanoutCase(n, ", random data"), "seeder_up_x", 1), 1.5})
	}
	ts = append(ts, multicastTargets(cfg)...) // multicast.go
	ts = append(ts,
		target{"9 one-off send: wall time / croc", r(scSend, caseSendWhole, "croc", "wall_s"), 1.0},
		target{"9 one-off send: bytes / croc", r(scSend, caseSendWhole, "croc", "wire_bytes"), 1.0},
		target{"9 receiver killed -9 at 50 %, run again: bytes / file size", abs(scSend, caseSendResume, "wire_x", 1), 1.1})
	if cfg.ScaleFiles > 0 {
		cas := fmt.Sprintf("%d tiny files", cfg.ScaleFiles)
		ts = append(ts, target{fmt.Sprintf("7 peak RSS at %d files / Syncthing", cfg.ScaleFiles), r(scScale, cas, "syncthing", "rss_mb"), 0.5},
			target{fmt.Sprintf("7 bytes at %d files / Syncthing", cfg.ScaleFiles), r(scScale, cas, "syncthing", "wire_bytes"), 0.8}) // issue 14
	}
	if cfg.HugeFiles > 0 {
		ts = append(ts, target{fmt.Sprintf("7 peak RSS of each daemon at %d files (MB)", cfg.HugeFiles),
			abs(scScale, fmt.Sprintf("%d tiny files", cfg.HugeFiles), "rss_mb", 1), 300})
	}
	return ts
}

func writeTSV(path string, rows []row) error {
	var sb strings.Builder
	sb.WriteString("scenario\tcase\ttool\trun\tmetric\tvalue\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%s\t%s\t%s\t%d\t%s\t%g\n", r.Scenario, r.Case, r.Tool, r.Run, r.Metric, r.Value)
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

func fmtNum(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// harness is how long the run took, per part (setup, each scenario).
type harness struct {
	parts []harnessPart
	total time.Duration
}

type harnessPart struct {
	name, runs string
	d          time.Duration
}

// markdown renders RESULTS.md: the machine, one table per scenario (medians,
// with the number of runs behind each), the targets with met/MISSED, and the
// harness time per scenario.
func markdown(cfg config, machine []string, res results, tools []string, failures, retried []string, netNote, blueshiftNote, coverage string, hz harness) string {
	var sb strings.Builder
	mode := "full"
	if cfg.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&sb, "# Benchmark results (%s run)\n\nGenerated by `make bench%s` (cmd/bench) in %s (min:s; per scenario under Harness time). "+
		"Each figure is the median of the runs in its row's `runs` column; ratios are medians of per-run ratios.\n\n",
		mode, map[bool]string{true: "-quick", false: ""}[cfg.Quick], fmtDur(hz.total))
	sb.WriteString("## Machine\n\n")
	for _, m := range machine {
		fmt.Fprintf(&sb, "- %s\n", m)
	}
	fmt.Fprintf(&sb, "- shaped link (scenarios 2, 5): %s\n", netNote)
	if blueshiftNote != "" {
		fmt.Fprintf(&sb, "- **Blueshift: %s**\n", blueshiftNote)
	}
	fmt.Fprintf(&sb, "- %s\n", coverage)
	sb.WriteString("\n")
	for _, sc := range scenarioOrder {
		var cases []string
		for _, r := range res.rows {
			if r.Scenario == sc && !slices.Contains(cases, r.Case) {
				cases = append(cases, r.Case)
			}
		}
		if len(cases) == 0 {
			continue
		}
		fmt.Fprintf(&sb, "## %s\n\n", sc)
		if note := scenarioNote(cfg, sc); note != "" {
			sb.WriteString(note + "\n\n")
		}
		sb.WriteString("| case | tool | runs | wall s | wire MB | CPU s | peak RSS MB | other |\n|---|---|---|---|---|---|---|---|\n")
		for _, cas := range cases {
			for _, tool := range tools {
				n := len(res.values(sc, cas, tool, "wall_s"))
				if n == 0 {
					continue
				}
				var other []string
				for _, k := range []string{"p50_s", "p99_s", "seeder_up_x", "seeder_sent_x", "cpu_s_per_gb", "file_mb", "wire_x", "killed_at_x", "others_done_s", "lossy_x", "stranger_sent", "refused", "forged_taken", "us_per_10k"} {
					if v := res.med(sc, cas, tool, k); !math.IsNaN(v) {
						other = append(other, fmt.Sprintf("%s %.3f", k, v))
					}
				}
				if sc == scScale {
					for i := range 2 {
						if v := res.med(sc, cas, tool, fmt.Sprintf("rss_dev%d_mb", i)); !math.IsNaN(v) {
							other = append(other, fmt.Sprintf("peak RSS device %d: %.1f MB", i, v))
						}
					}
				}
				rss := fmtNum(res.med(sc, cas, tool, "rss_mb"), 1)
				fmt.Fprintf(&sb, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", cas, tool, n,
					fmtNum(res.med(sc, cas, tool, "wall_s"), 3), fmtNum(res.med(sc, cas, tool, "wire_bytes")/1e6, 3),
					fmtNum(res.med(sc, cas, tool, "cpu_s"), 2), rss, strings.Join(other, ", "))
			}
		}
		sb.WriteString("\n")
		ratioTable(&sb, res, sc, cases, tools)
	}
	sb.WriteString("Peak RSS is the largest single process: for Syncthing and Blueshift, the daemons' VmHWM over the measured window; " +
		"for rsync, the larger of client and daemon (per-connection children included) from the rusage GNU time reports " +
		"(time forks rsync, so the figure is rsync's own, not inherited from the harness). CPU is the sum over all processes.\n\n")
	sb.WriteString("## Targets (issues 8 and 14)\n\n| target | measured | limit | verdict |\n|---|---|---|---|\n")
	for _, t := range targets(cfg) {
		v := t.value(res)
		verdict := "not measured"
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			v = math.NaN()
		case v <= t.limit:
			verdict = "met"
		default:
			verdict = "MISSED"
		}
		fmt.Fprintf(&sb, "| %s | %s | %g | %s |\n", t.what, fmtNum(v, 3), t.limit, verdict)
	}
	sb.WriteString("\n## Harness time\n\nHow long each part of this run took on this machine (min:s), with its planned runs per figure " +
		"(`-runs` overrides the plan; the `runs` columns above show what was measured). Scenario 4 is measured on the synced pairs " +
		"that scenario 1 (small files) and scenario 7 (the scale run) leave behind; that time is counted under scenario 4, not theirs.\n\n" +
		"| part | runs per figure | harness time |\n|---|---|---|\n")
	for _, p := range hz.parts {
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", p.name, p.runs, fmtDur(p.d))
	}
	fmt.Fprintf(&sb, "| **total** | | **%s** |\n", fmtDur(hz.total))
	if len(retried) > 0 {
		sb.WriteString("\n## Baseline runs run again\n\nThese runs of another tool failed once and were run again (a failure of Blueshift never is):\n\n")
		for _, f := range retried {
			fmt.Fprintf(&sb, "- %s\n", f)
		}
	}
	if len(failures) > 0 {
		sb.WriteString("\n## Failures\n\n")
		for _, f := range failures {
			fmt.Fprintf(&sb, "- %s\n", f)
		}
	}
	return sb.String()
}

// ratioTable writes, under a scenario's table, Blueshift's figures divided
// by each other tool's (median of per-run ratios; below 1 is better).
func ratioTable(sb *strings.Builder, res results, sc string, cases, tools []string) {
	var others []string
	for _, t := range tools {
		if t == "blueshift" {
			continue
		}
		for _, c := range cases {
			if len(res.values(sc, c, t, "wall_s")) > 0 && len(res.values(sc, c, "blueshift", "wall_s")) > 0 && !slices.Contains(others, t) {
				others = append(others, t)
			}
		}
	}
	if len(others) == 0 {
		return
	}
	metrics := []struct{ key, label string }{{"wall_s", "wall"}, {"wire_bytes", "wire"}, {"cpu_s", "CPU"}}
	sb.WriteString("Blueshift ÷ other tool (below 1: Blueshift is better)\n\n| case |")
	for _, m := range metrics {
		for _, t := range others {
			fmt.Fprintf(sb, " %s ÷ %s |", m.label, t)
		}
	}
	sb.WriteString("\n|---|" + strings.Repeat("---|", len(metrics)*len(others)) + "\n")
	for _, c := range cases {
		paired := false
		for _, t := range others {
			paired = paired || !math.IsNaN(res.ratio(sc, c, "blueshift", t, "wall_s"))
		}
		if !paired {
			continue // Blueshift alone (the 1,000,000-file run)
		}
		fmt.Fprintf(sb, "| %s |", c)
		for _, m := range metrics {
			for _, t := range others {
				fmt.Fprintf(sb, " %s |", fmtNum(res.ratio(sc, c, "blueshift", t, m.key), 2))
			}
		}
		sb.WriteString("\n")
	}
	sb.WriteString("\n")
}

// plot draws one clustered bar chart per scenario family (wall time per case
// and tool) with gnuplot; a missing gnuplot only skips the plots.
func plot(dir string, res results, tools []string) error {
	for i, sc := range scenarioOrder {
		var cases []string
		for _, r := range res.rows {
			if r.Scenario == sc && r.Metric == "wall_s" && !slices.Contains(cases, r.Case) {
				cases = append(cases, r.Case)
			}
		}
		if len(cases) == 0 {
			continue
		}
		var present []string
		for _, t := range tools {
			for _, c := range cases {
				if len(res.values(sc, c, t, "wall_s")) > 0 && !slices.Contains(present, t) {
					present = append(present, t)
				}
			}
		}
		var dat strings.Builder
		dat.WriteString("case")
		for _, t := range present {
			dat.WriteString("\t" + t)
		}
		dat.WriteString("\n")
		for _, c := range cases {
			fmt.Fprintf(&dat, "%q", c)
			for _, t := range present {
				v := res.med(sc, c, t, "wall_s")
				if math.IsNaN(v) {
					dat.WriteString("\t0")
				} else {
					fmt.Fprintf(&dat, "\t%g", v)
				}
			}
			dat.WriteString("\n")
		}
		base := filepath.Join(dir, fmt.Sprintf("scenario%d", i+1))
		if err := os.WriteFile(base+".dat", []byte(dat.String()), 0o644); err != nil {
			return err
		}
		var cols []string
		for k := range present {
			cols = append(cols, fmt.Sprintf("'%s.dat' using %d:xtic(1) title columnheader", base, k+2))
		}
		script := fmt.Sprintf(`set terminal pngcairo size 1000,500 noenhanced
set output '%s.png'
set title %q
set ylabel 'wall seconds (median)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set xtics rotate by -20
set yrange [0:*]
plot %s
`, base, sc, strings.Join(cols, ", "))
		cmd := exec.Command("gnuplot")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gnuplot for %s: %w: %s", sc, err, out)
		}
		os.Remove(base + ".dat")
	}
	return nil
}

// scenarioNote says, above a scenario's table, what its runs are made of
// where that is not plain.
func scenarioNote(cfg config, sc string) string {
	switch sc {
	case scShaped:
		var notes []string
		if n := cfg.runsFor(sc, "compressible"); cfg.Runs == 0 && n == 2 {
			notes = append(notes, "Small files and compressible data run twice (the median of two is their mean): a run of the four tools costs 2-5 minutes of link time, and three runs of scenarios 2 and 5 would take `make bench` past an hour.")
		}
		if cfg.Runs == 0 && cfg.runsFor(sc, "incompressible") < cfg.runsFor(sc, "compressible") {
			notes = append(notes, fmt.Sprintf("Incompressible data runs %d time(s): every tool is bound by the 100 Mbit/s link there (~45 s each at full size), so more runs would measure the link again.",
				cfg.runsFor(sc, "incompressible")))
		}
		return strings.Join(notes, " ")
	case scFanout:
		note := "Wire MB and seeder_up_x count the bytes that crossed each device's link, at the hub's end of its veth. " +
			"seeder_sent_x is the seeder's upload counted at its own output hook, before its qdisc: several TCP flows out of one device overflow that qdisc's queue, " +
			"and each packet it dropped and TCP sent again is counted there twice (the figure of this scenario before 2026-12-03)."
		if cfg.Runs == 0 && cfg.runsFor(sc, "") == 2 {
			note = "Two runs (the median of two is their mean): one run of the four tools costs ~3.5 minutes of link time. " + note
		}
		return note
	case scReconnect:
		return "Each pair is the one the initial sync of the same corpus left (scenario 1's small files; scenario 7's tiny files), " +
			"or one set up for this scenario when those did not run; rsync reconnects onto a tree an untimed push made."
	case scLatency:
		return fmt.Sprintf("One series of %d edits per tool: p50 and p99 are over the %d edits, which are the repetitions (`runs` counts series). "+
			"Each edit starts once the link has been quiet for %v.", cfg.LatencyEdits, cfg.LatencyEdits, cfg.LatencyQuiet)
	case scRebuilt:
		return "Each tool first syncs the old build as bin/prog, then the new build is renamed over it; the figures are that second step's. " +
			"Both run on the shaped link (scenario 2's): bytes are the figure, and Blueshift sends blocks to a peer on loopback uncompressed. " +
			"Blueshift's two builds are the measured commit and the parent of the last commit that changed its Go code; tomljson is go-toml's (the version go.mod requires), " +
			"built before and after one added line. file_mb is the new build's size."
	case scSend:
		return fmt.Sprintf("One %s incompressible file, `blueshift send` / `blueshift receive CODE DIR` (each with its in-process daemon; no discovery, DHT or QUIC) against croc "+
			"(built from %s; its own relay runs in the sender's namespace, --no-local), over the shaped link. Wall time is from the sender's first command to the verified file; "+
			"bytes are everything on the link. In the second case the receiver is killed with SIGKILL once half the file's bytes crossed and run again "+
			"(croc's sender too, whose offer ends with its receiver); wire_x is both attempts' bytes over the file size (1.0: nothing crossed twice).",
			fmt.Sprintf("%d MiB", cfg.SendSize>>20), crocModule)
	case scPunched:
		return punchedNote(cfg) // punched.go
	case scVault:
		return vaultNote() // vault.go
	case scScale:
		return "The tiny files (64 B-1 KiB, 1,000 to a directory) are made before the timed window and deleted after it. " +
			"Peak RSS of each device is shown under other; the target applies to each."
	}
	return ""
}
