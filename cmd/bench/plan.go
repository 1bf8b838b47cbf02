package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The run plan and the harness clock. A full run should fit in a working
// session on a 2-core machine (it fit in an hour until the fan-out's random
// and multicast cases and scenarios 8-11 came; the last full run was stopped
// after 80 minutes, 38 of them in scenario 5), so each scenario has its own
// number of runs (the plan), and RESULTS.md shows both how many runs are
// behind each figure and how long each scenario took.

// plan maps a scenario number ("2") or a scenario number and case key
// ("2/incompressible", "4/200000") to its number of runs; the more specific
// key wins, and anything not listed runs once.
type plan map[string]int

// fullPlan is `make bench`'s: three runs where a run is cheap or noisy (on
// loopback, where CPU and the machine's neighbours decide); two (their mean)
// where the 100 Mbit/s link bounds most tools and a run costs minutes; one
// where the figure is bound by the link alone or made of many samples (the
// fan-outs of random data: 4 and 8 receivers, unicast and multicast).
func fullPlan() plan {
	return plan{
		"1": 3,
		"2": 2, "2/incompressible": 1, // every tool is link-bound there (~45 s each)
		"3": 3,
		"4": 3, "4/200000": 1, // the 200,000-file pair comes from scenario 7's one run
		"5": 2, "5/random": 1, // random data: link-bound, ~12 of its 38 minutes went to second runs
		"6": 1, // one series of N edits per tool: the N samples are the repetitions
		"7": 1,
		"8": 3, // byte counts: runs agree; three keep the ratio's median honest
		"9": 1, // 1 GiB over 100 Mbit/s: ~90 s per transfer, four transfers

		"11": 3, // in-process Go benchmarks (vault.go), seconds each
	}
}

// parsePlan reads "-plan 2/incompressible=3,5=1" into p (over its entries).
func parsePlan(p plan, s string) error {
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 || k == "" || k[0] < '1' || k[0] > '9' {
			return fmt.Errorf("parse -plan entry %q: want SCENARIO[/CASE]=RUNS with RUNS >= 1, e.g. 2/incompressible=3", kv)
		}
		p[k] = n
	}
	return nil
}

// scNum is a scenario's number: its name starts with it.
func scNum(scenario string) string { n, _, _ := strings.Cut(scenario, " "); return n }

// runsFor is the number of runs of one case of a scenario: -runs when given,
// else the plan's.
func (c config) runsFor(scenario, key string) int {
	if c.Runs > 0 {
		return c.Runs
	}
	if n, ok := c.Plan[scNum(scenario)+"/"+key]; ok {
		return n
	}
	if n, ok := c.Plan[scNum(scenario)]; ok {
		return n
	}
	return 1
}

// planText describes a scenario's runs for RESULTS.md: "3 (incompressible: 1)".
func (c config) planText(scenario string) string {
	if c.Runs > 0 {
		return strconv.Itoa(c.Runs)
	}
	base := c.runsFor(scenario, "")
	var extra []string
	for k, n := range c.Plan {
		if cas, ok := strings.CutPrefix(k, scNum(scenario)+"/"); ok && n != base {
			extra = append(extra, fmt.Sprintf("%s: %d", cas, n))
		}
	}
	slices.Sort(extra)
	if len(extra) == 0 {
		return strconv.Itoa(base)
	}
	return fmt.Sprintf("%d (%s)", base, strings.Join(extra, ", "))
}

// partSetup is the harness time outside the scenarios: installing packages,
// building Blueshift, generating the shared corpora, writing reports.
const partSetup = "setup"

// stopwatch charges the harness's time to the part of the run under way
// (partSetup or a scenario number). It is used by the main goroutine only.
type stopwatch struct {
	start time.Time
	cur   string
	since time.Time
	spent map[string]time.Duration
}

func newStopwatch(now time.Time) *stopwatch {
	return &stopwatch{start: now, cur: partSetup, since: now, spent: map[string]time.Duration{}}
}

// enter charges the time since the last switch to the current part, makes
// part current and returns the part it replaced (to enter it again after a
// scenario measured inside another, as scenario 4 is inside 1 and 7).
func (s *stopwatch) enter(part string, now time.Time) string {
	prev := s.cur
	s.spent[s.cur] += now.Sub(s.since)
	s.cur, s.since = part, now
	return prev
}

// spentOn is the time charged to part so far, the current stretch included.
func (s *stopwatch) spentOn(part string, now time.Time) time.Duration {
	d := s.spent[part]
	if part == s.cur {
		d += now.Sub(s.since)
	}
	return d
}

// fmtDur writes a duration as minutes and seconds: "12:05".
func fmtDur(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
