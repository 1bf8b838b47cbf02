package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// scenario is one scenario's run: its sizes, its scratch directory, the
// devices and cleanups it owns, and the checks it made. Output goes to
// stdout as it happens: "did" lines say what was done, "ok"/"FAIL" lines
// what was checked.
type scenario struct {
	name, what string
	t          tier
	bin        string
	work       string
	seed       uint64
	rng        *rand.Rand

	runs     int // runs (rounds, pulls, attacks) made
	checks   int
	failures []string
	took     time.Duration

	devices []*device // every device made, for the SIGTERM check at the end

	mu       sync.Mutex // guards output, checks and failures (checks may come from helpers' goroutines)
	cleanups []func()   // run in reverse order by closeAll
}

func newScenario(name, what string, t tier, bin, work string, seed uint64) *scenario {
	return &scenario{name: name, what: what, t: t, bin: bin, work: work, seed: seed,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// did prints what the scenario did.
func (s *scenario) did(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Printf("   did  %s\n", fmt.Sprintf(format, args...))
}

// check records a check: ok, or a failure with its detail.
func (s *scenario) check(what string, ok bool, format string, args ...any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	detail := fmt.Sprintf(format, args...)
	if ok {
		fmt.Printf("   ok   %s: %s\n", what, detail)
		return true
	}
	s.failures = append(s.failures, what)
	fmt.Printf("   FAIL %s: %s\n", what, indent(detail))
	return false
}

// fail records a failed check.
func (s *scenario) fail(what, format string, args ...any) {
	s.check(what, false, format, args...)
}

// checkErr records a check that passes when err is nil.
func (s *scenario) checkErr(what string, err error, okDetail string) bool {
	if err != nil {
		return s.check(what, false, "%v", err)
	}
	return s.check(what, true, "%s", okDetail)
}

// defer_ registers a cleanup for closeAll.
func (s *scenario) cleanup(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

// stopBound is the bound on a daemon's exit after SIGTERM.
const stopBound = 5 * time.Second

// stopDevices stops every running daemon with SIGTERM and checks that each
// exits within stopBound, its database closed (the log says so).
func (s *scenario) stopDevices() {
	var slow []string
	n := 0
	var longest time.Duration
	for _, d := range s.devices {
		if d.p == nil {
			continue
		}
		n++
		took, killed := d.stop()
		longest = max(longest, took)
		if killed || took > stopBound {
			slow = append(slow, fmt.Sprintf("%s took %.1f s (killed: %v)", d.name, took.Seconds(), killed))
		}
	}
	if n > 0 {
		s.check("daemons exit within 5 s of SIGTERM", len(slow) == 0, "%d daemons stopped, the slowest in %.1f s%s", n, longest.Seconds(), listIf(slow))
	}
}

// removeData deletes the devices' synced folders and the staging areas.
func (s *scenario) removeData() {
	for _, d := range s.devices {
		os.RemoveAll(d.dir)
	}
	stages, _ := filepath.Glob(filepath.Join(s.work, "stage-*"))
	for _, p := range stages {
		os.RemoveAll(p)
	}
}

// closeAll runs the cleanups, last first.
func (s *scenario) closeAll() {
	s.mu.Lock()
	cs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n        ")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
