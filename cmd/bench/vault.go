package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Scenario 11 (issue 15): the cost of access by cryptography, in-process,
// each figure against a baseline measured in the same run.
//
//   - An encrypted member: a writer pushes 12 files (~4.6 MiB) sealed
//     (records, padded blocks) to an encrypted member's store over TLS on
//     loopback and a reader pulls and opens them all; the baseline moves
//     the same blocks in the clear through the same connection and store.
//     Rows: wall time and bytes carried and stored (sync/vault's
//     BenchmarkEncryptedMember).
//   - Membership checks: the log's check of 10,000 records of a share with
//     100 members; the baseline is what each record already costs a
//     receiver, one Ed25519 verification each (index/members'
//     BenchmarkMayWrite10k).
//
// Both are the packages' Go benchmarks, run by `go test -bench` on the
// source tree the harness runs from (the working tree), one count per run
// (of three iterations; one with -quick);
// their metrics become rows, so RESULTS.md shows them with the other
// scenarios and the ratio table gives sealed ÷ plain and check ÷ verify.

const (
	scVault = "11 encrypted member and membership checks (in-process)"
	// Baselines: the ratio table under the scenario is blueshift ÷ these.
	toolVaultPlain  = "plain path (same run)"
	toolVerify10k   = "10,000 Ed25519 verifies (same run)"
	caseVaultMember = "encrypted member: push + pull 12 files (~4.6 MiB), TLS loopback"
	caseMembers10k  = "membership checks, 10,000 records, 100 members"
)

// vaultBench is one Go benchmark the scenario runs and how its metrics
// become rows.
type vaultBench struct {
	pkg, name string
	rows      func(b *bench, run int, m map[string]float64) error
}

func vaultBenches() []vaultBench {
	return []vaultBench{
		{"./sync/vault", "BenchmarkEncryptedMember", func(b *bench, run int, m map[string]float64) error {
			ss, ps, sb, pb := m["sealed-s"], m["plain-s"], m["sealed-bytes"], m["plain-bytes"]
			if ss <= 0 || ps <= 0 || sb <= 0 || pb <= 0 {
				return fmt.Errorf("BenchmarkEncryptedMember reported %v: no sealed-s, plain-s, sealed-bytes or plain-bytes", m)
			}
			b.add(scVault, caseVaultMember, "blueshift", run, measure{wall: secs(ss), wire: int64(sb)})
			b.add(scVault, caseVaultMember, toolVaultPlain, run, measure{wall: secs(ps), wire: int64(pb)})
			return nil
		}},
		{"./index/members", "BenchmarkMayWrite10k", func(b *bench, run int, m map[string]float64) error {
			us, ratio := m["µs/10k-records"], m["check/verify"]
			if us <= 0 || ratio <= 0 {
				return fmt.Errorf("BenchmarkMayWrite10k reported %v: no µs/10k-records or check/verify", m)
			}
			b.add(scVault, caseMembers10k, "blueshift", run, measure{wall: secs(us / 1e6), extra: map[string]float64{"us_per_10k": us}})
			b.add(scVault, caseMembers10k, toolVerify10k, run, measure{wall: secs(us / 1e6 / ratio), extra: map[string]float64{"us_per_10k": us / ratio}})
			return nil
		}},
	}
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// vaultScenario runs each benchmark runs times (one go test -count each)
// and adds its rows.
func (b *bench) vaultScenario(ctx context.Context, runs int) {
	for _, vb := range vaultBenches() {
		if ctx.Err() != nil {
			return
		}
		root, err := run(ctx, exec.CommandContext(ctx, "go", "env", "GOMOD"))
		if err != nil || !strings.HasSuffix(firstLine(root), "go.mod") {
			b.fail(scVault, vb.name, "harness", fmt.Errorf("find the module (go env GOMOD: %q): %v: run the bench from the repository", firstLine(root), err))
			return
		}
		// Three iterations a count at full size (the figures are their mean:
		// one push and pull is half a second, noisy on a shared machine).
		iters := "3x"
		if b.cfg.Quick {
			iters = "1x"
		}
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+vb.name+"$", "-benchtime", iters,
			"-count", strconv.Itoa(runs), vb.pkg)
		cmd.Dir = filepath.Dir(firstLine(root))
		out, err := run(ctx, cmd)
		if err != nil {
			b.fail(scVault, vb.name, "blueshift", err)
			continue
		}
		results := parseBench(out, vb.name)
		if len(results) == 0 {
			b.fail(scVault, vb.name, "blueshift", fmt.Errorf("no result line for %s in:\n%s", vb.name, out))
			continue
		}
		for r, m := range results {
			if err := vb.rows(b, r, m); err != nil {
				b.fail(scVault, vb.name, "blueshift", err)
			}
		}
		b.log.Info("measured", "scenario", scVault, "benchmark", vb.name, "runs", len(results))
	}
}

// parseBench returns the metrics of each result line of benchmark name in
// go test -bench output, by unit ("ns/op", "time/plain", ...).
func parseBench(out, name string) []map[string]float64 {
	var res []map[string]float64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || (f[0] != name && !strings.HasPrefix(f[0], name+"-")) {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		res = append(res, m)
	}
	return res
}

// vaultNote is the scenario's note in RESULTS.md.
func vaultNote() string {
	return "In-process Go benchmarks (`go test -bench`, one count of three iterations per run, on the working tree), not daemons: " +
		"\"blueshift\" is the encrypted member's path (records and blocks sealed and padded, pushed, pulled and opened over TLS on loopback), " +
		"\"" + toolVaultPlain + "\" the same blocks in the clear through the same connection and store; wire MB is the bytes carried and stored. " +
		"For the membership checks, wall is the time of 10,000 checks (us_per_10k in µs) and the baseline 10,000 Ed25519 verifications, " +
		"the cost every received record already pays. The ratios below are sealed ÷ plain and check ÷ verify."
}
