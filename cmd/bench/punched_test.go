package main

import (
	"strings"
	"testing"
)

// TestCheckReachRefusesOtherPaths: a punched run that reached b any other
// way than a QUIC connection punched via P to b's router fails, and so does
// a TCP run that is not direct TCP to b's router.
func TestCheckReachRefusesOtherPaths(t *testing.T) {
	const p, wan = "PPPPPPPPID", "203.0.113.2"
	punched := punchPeer{Transport: "quic", Reach: "punched", Via: p, Address: wan + ":22100"}
	tcp := punchPeer{Transport: "tcp", Reach: "direct", Address: wan + ":22100"}
	if err := checkReach(true, punched, p, wan); err != nil {
		t.Errorf("punched run, punched QUIC: %v", err)
	}
	if err := checkReach(false, tcp, p, wan); err != nil {
		t.Errorf("TCP run, direct TCP: %v", err)
	}
	bad := []struct {
		punched bool
		got     punchPeer
	}{
		{true, tcp},
		{true, punchPeer{Transport: "quic", Reach: "relayed", Via: p, Address: "203.0.113.10:22100"}},
		{true, punchPeer{Transport: "quic", Reach: "direct", Address: wan + ":22100"}},
		{true, punchPeer{Transport: "quic", Reach: "punched", Via: "someone else", Address: wan + ":22100"}},
		{true, punchPeer{Transport: "quic", Reach: "punched", Via: p, Address: "203.0.113.20:22100"}},
		{false, punched},
		{false, punchPeer{Transport: "tcp", Reach: "relayed", Via: p, Address: "203.0.113.10:22100"}},
	}
	for _, c := range bad {
		if err := checkReach(c.punched, c.got, p, wan); err == nil {
			t.Errorf("punched run %v accepted a reaching b as %s", c.punched, c.got)
		}
	}
}

// TestPunchedScenarioNumberAndTable: scenario 10 has its own number (its
// plan entry is not scenario 1's) and RESULTS.md shows its rows, its note
// and the punched ÷ TCP ratios.
func TestPunchedScenarioNumberAndTable(t *testing.T) {
	if got := scNum(scPunched); got != "10" {
		t.Fatalf("scNum(%q) = %q, want 10", scPunched, got)
	}
	cfg := fullConfig()
	cfg.Plan = plan{"1": 3, "10": 2}
	if n := cfg.runsFor(scPunched, ""); n != 2 {
		t.Errorf("scenario 10 runs %d times, want its plan entry's 2 (not scenario 1's 3)", n)
	}
	cas := "first sync, 256 MiB random"
	res := results{rows: []row{
		{scPunched, cas, "blueshift", 0, "wall_s", 3}, {scPunched, cas, toolPunchTCP, 0, "wall_s", 2},
	}}
	hz := harness{total: 1, parts: nil}
	md := markdown(cfg, nil, res, []string{"blueshift", toolPunchTCP}, nil, nil, "n", "", "c", hz)
	for _, want := range []string{
		"## " + scPunched,
		"| " + cas + " | " + toolPunchTCP + " | 1 | 2.000 |",
		"| " + cas + " | 1.50 |",
		"punched ÷ TCP",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
}
