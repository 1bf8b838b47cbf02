package main

import (
	"context"
	"log/slog"
	"math"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := "goos: linux\n" +
		"BenchmarkEncryptedMember-2   \t       1\t 123456 ns/op\t  37.5 MB/s\t 1.40 time/plain\t 1.02 bytes/plain\t 0.5 sealed-s\t 0.25 plain-s\t 900 sealed-bytes\t 800 plain-bytes\t 1000 B/op\t 10 allocs/op\n" +
		"BenchmarkEncryptedMemberX-2 1 5 ns/op\n" +
		"BenchmarkEncryptedMember 1 99 ns/op\n" +
		"PASS\n"
	got := parseBench(out, "BenchmarkEncryptedMember")
	if len(got) != 2 || got[0]["sealed-s"] != 0.5 || got[0]["plain-bytes"] != 800 || got[0]["time/plain"] != 1.40 || got[1]["ns/op"] != 99 {
		t.Fatalf("parsed %v", got)
	}
}

// Scenario 11 runs the two Go benchmarks and turns them into rows of both
// tools in each case, whose ratios are the figures the issue asks for.
func TestVaultScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two Go benchmarks")
	}
	b := &bench{cfg: quickConfig(), log: slog.New(slog.DiscardHandler)}
	b.vaultScenario(context.Background(), 1)
	if len(b.failures) != 0 {
		t.Fatalf("failures: %v", b.failures)
	}
	res := results{rows: b.rows}
	sealed := res.ratio(scVault, caseVaultMember, "blueshift", toolVaultPlain, "wire_bytes")
	if math.IsNaN(sealed) || sealed < 1 || sealed > 2 {
		t.Fatalf("sealed ÷ plain bytes = %v; want a figure from 1 (sealing and padding add bytes) to 2", sealed)
	}
	if r := res.ratio(scVault, caseVaultMember, "blueshift", toolVaultPlain, "wall_s"); math.IsNaN(r) || r <= 0 {
		t.Fatalf("sealed ÷ plain time = %v", r)
	}
	if r := res.ratio(scVault, caseMembers10k, "blueshift", toolVerify10k, "wall_s"); math.IsNaN(r) || r <= 0 {
		t.Fatalf("check ÷ verify = %v", r)
	}
	if us := res.med(scVault, caseMembers10k, "blueshift", "us_per_10k"); math.IsNaN(us) || us <= 0 {
		t.Fatalf("µs per 10,000 checks: %v", us)
	}
}
