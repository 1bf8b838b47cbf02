package main

import (
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/cmd/internal/tree"
)

// treeHash hashes names, modes and contents, for determinism checks.
func treeHash(t *testing.T, root string) string {
	t.Helper()
	l, err := tree.List(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := range l {
		names = append(names, p)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, p := range names {
		fmt.Fprintf(h, "%s %v %d\n", p, l[p].Mode, l[p].Size)
		if l[p].Mode.IsRegular() {
			b, _ := os.ReadFile(filepath.Join(root, p))
			h.Write(b)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestCorpusIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := genSmall(d, 1, smallSpec{200, 1 << 10, 8 << 10}); err != nil {
			t.Fatal(err)
		}
		if err := genMixed(d, 1, 1, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if treeHash(t, a) != treeHash(t, b) {
		t.Fatal("same seed gave different trees")
	}
	c := t.TempDir()
	if _, err := genSmall(c, 2, smallSpec{200, 1 << 10, 8 << 10}); err != nil {
		t.Fatal(err)
	}
	if err := tree.Compare(a, c); err == nil {
		t.Fatal("different seeds gave identical trees")
	}
}

func TestEditsChangeWhatTheySay(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := genRandomFile(p, 1, 0, 64<<10); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(p)
	if err := insertAt(p, 1, 4096, 1); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if len(got) != len(orig)+1 || string(got[:4096]) != string(orig[:4096]) || string(got[4097:]) != string(orig[4096:]) {
		t.Fatal("insert did not shift the tail by one byte")
	}
	if err := overwriteAt(p, 1, 100, 4096); err != nil {
		t.Fatal(err)
	}
	if err := appendTo(p, 1, 1000); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Size() != int64(len(orig))+1+1000 {
		t.Fatalf("size after append = %d", st.Size())
	}
}

func TestRatiosArePairedPerRun(t *testing.T) {
	res := results{rows: []row{
		{"s", "c", "blueshift", 0, "wall_s", 1}, {"s", "c", "rsync", 0, "wall_s", 2},
		{"s", "c", "blueshift", 1, "wall_s", 4}, {"s", "c", "rsync", 1, "wall_s", 4},
		{"s", "c", "blueshift", 2, "wall_s", 3}, // no partner: left out
	}}
	if got := res.ratio("s", "c", "blueshift", "rsync", "wall_s"); got != 0.75 {
		t.Fatalf("ratio = %v, want median(0.5, 1) = 0.75", got)
	}
	if got := res.med("s", "c", "blueshift", "wall_s"); got != 3 {
		t.Fatalf("median = %v", got)
	}
	if !math.IsNaN(res.ratio("s", "c", "blueshift", "syncthing", "wall_s")) {
		t.Fatal("ratio without partner should be NaN")
	}
	if p := percentile([]float64{5, 1, 2, 3, 4}, 0.99); p != 5 {
		t.Fatalf("p99 = %v", p)
	}
}

func TestParseNftCounters(t *testing.T) {
	in, out, err := netns.ParseCounters(`{"nftables":[{"metainfo":{}},{"rule":{"chain":"in","expr":[{"match":{}},{"counter":{"packets":2,"bytes":100}},{"accept":null}]}},{"rule":{"chain":"out","expr":[{"counter":{"packets":1,"bytes":40}}]}}]}`)
	if err != nil || in != 100 || out != 40 {
		t.Fatalf("got %d %d %v", in, out, err)
	}
	if _, _, err := netns.ParseCounters("{"); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestPlanRunsFor(t *testing.T) {
	cfg := fullConfig()
	for _, c := range []struct {
		sc, key string
		want    int
	}{
		{scLoop, "small files", 3}, {scShaped, "compressible", 2}, {scShaped, "incompressible", 1},
		{scReconnect, "20000", 3}, {scReconnect, "200000", 1}, {scLatency, "", 1}, {scScale, "1000000", 1},
		{scFanout, "", 2}, {scFanout, "random", 1},
	} {
		if got := cfg.runsFor(c.sc, c.key); got != c.want {
			t.Errorf("runsFor(%q, %q) = %d, want %d", c.sc, c.key, got, c.want)
		}
	}
	if got := cfg.planText(scShaped); got != "2 (incompressible: 1)" {
		t.Errorf("planText = %q", got)
	}
	if err := parsePlan(cfg.Plan, "2/incompressible=3, 5=1"); err != nil {
		t.Fatal(err)
	}
	if cfg.runsFor(scShaped, "incompressible") != 3 || cfg.runsFor(scFanout, "") != 1 {
		t.Error("-plan entries not applied")
	}
	for _, bad := range []string{"2", "0=1", "2=0", "=3", "2=x"} {
		if err := parsePlan(plan{}, bad); err == nil {
			t.Errorf("parsePlan(%q) accepted", bad)
		}
	}
	cfg.Runs = 2 // -runs overrides everything
	if cfg.runsFor(scShaped, "incompressible") != 2 || cfg.planText(scShaped) != "2" {
		t.Error("-runs does not override the plan")
	}
	if q := quickConfig(); q.runsFor(scLoop, "small files") != 1 || q.runsFor(scFanout, "") != 1 {
		t.Error("quick run is not one run per figure")
	}
}

func TestReconnectCountsFollowCorpora(t *testing.T) {
	if got := fullConfig().withReconnectCounts().ReconnectFiles; !slices.Equal(got, []int{20000, 200000}) {
		t.Errorf("full: %v", got)
	}
	if got := quickConfig().withReconnectCounts().ReconnectFiles; !slices.Equal(got, []int{2000}) {
		t.Errorf("quick: %v", got)
	}
}

func TestStopwatchChargesTheCurrentPart(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStopwatch(t0)
	s.enter("1", t0.Add(10*time.Second)) // setup: 10 s
	prev := s.enter("4", t0.Add(70*time.Second))
	s.enter(prev, t0.Add(100*time.Second)) // 4 inside 1: 30 s
	now := t0.Add(130 * time.Second)
	if got := []time.Duration{s.spentOn(partSetup, now), s.spentOn("1", now), s.spentOn("4", now)}; !slices.Equal(got,
		[]time.Duration{10 * time.Second, 90 * time.Second, 30 * time.Second}) {
		t.Fatalf("spent = %v", got)
	}
	if fmtDur(61500*time.Millisecond) != "1:02" {
		t.Fatalf("fmtDur = %q", fmtDur(61500*time.Millisecond))
	}
}

func TestGenTiny(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := genTiny(d, 1, 2500); err != nil {
			t.Fatal(err)
		}
	}
	if treeHash(t, a) != treeHash(t, b) {
		t.Fatal("same seed gave different trees")
	}
	l, err := tree.List(a)
	if err != nil {
		t.Fatal(err)
	}
	files, perDir := 0, map[string]int{}
	for p, e := range l {
		if e.Mode.IsRegular() {
			files++
			perDir[filepath.Dir(p)]++
			if e.Size < 64 || e.Size > 1024 {
				t.Fatalf("%s is %d bytes", p, e.Size)
			}
		}
	}
	if files != 2500 || len(perDir) != 3 || perDir["d0000"] != tinyPerDir || perDir["d0002"] != 500 {
		t.Fatalf("%d files in %v", files, perDir)
	}
	removeTree(a)
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Fatalf("removeTree left %q: %v", a, err)
	}
}

func TestMarkdownShowsRunsAndHarnessTime(t *testing.T) {
	cfg := fullConfig().withReconnectCounts()
	res := results{rows: []row{
		{scShaped, "incompressible", "blueshift", 0, "wall_s", 45}, {scShaped, "incompressible", "rsync", 0, "wall_s", 45},
		{scShaped, "compressible", "blueshift", 0, "wall_s", 30}, {scShaped, "compressible", "blueshift", 1, "wall_s", 32},
		{scScale, "1000000 tiny files", "blueshift", 0, "wall_s", 600}, {scScale, "1000000 tiny files", "blueshift", 0, "rss_mb", 280},
		{scScale, "1000000 tiny files", "blueshift", 0, "rss_dev1_mb", 250},
	}}
	hz := harness{total: 52 * time.Minute, parts: []harnessPart{{scShaped, cfg.planText(scShaped), 19 * time.Minute}}}
	md := markdown(cfg, nil, res, []string{"blueshift", "rsync"}, nil, nil, "n", "", "c", hz)
	for _, want := range []string{
		"| incompressible | blueshift | 1 | 45.000 |",
		"| compressible | blueshift | 2 | 31.000 |",
		"| " + scShaped + " | 2 (incompressible: 1) | 19:00 |",
		"| **total** | | **52:00** |",
		"peak RSS device 1: 250.0 MB",
		"| 7 peak RSS of each daemon at 1000000 files (MB) | 280.000 | 300 | met |",
		"Incompressible data runs 1 time(s)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
}
