package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMarkdownShowsIssue14Rows: CPU seconds per GB appear beside a first
// sync's figures, and the targets of issue 14 (rsync --fsync, CPU per GB,
// the rebuilt binaries' and small files' bytes against rsync+zstd, the
// tiny files' against Syncthing) get their verdicts.
func TestMarkdownShowsIssue14Rows(t *testing.T) {
	cfg := fullConfig().withReconnectCounts()
	var rows []row
	add := func(sc, cas, tool, metric string, v float64) {
		rows = append(rows, row{sc, cas, tool, 0, metric, v})
	}
	for tool, v := range map[string]float64{"blueshift": 2, "rsync --fsync": 1, "rsync": 0.5} {
		add(scLoop, "incompressible", tool, "wall_s", v)
	}
	add(scLoop, "incompressible", "blueshift", "cpu_s_per_gb", 3)
	add(scLoop, "incompressible", "rsync", "cpu_s_per_gb", 2)
	for tool, v := range map[string]float64{"blueshift": 175, "rsync+zstd": 165} {
		add(scShaped, "small files", tool, "wall_s", 1)
		add(scShaped, "small files", tool, "wire_bytes", v)
	}
	for tool, v := range map[string]float64{"blueshift": 114, "syncthing": 154} {
		add(scScale, fmt.Sprintf("%d tiny files", cfg.ScaleFiles), tool, "wall_s", 1)
		add(scScale, fmt.Sprintf("%d tiny files", cfg.ScaleFiles), tool, "wire_bytes", v)
	}
	for tool, v := range map[string]float64{"blueshift": 400, "rsync+zstd": 1000} {
		add(scRebuilt, caseRebuiltTomljson, tool, "wall_s", 1)
		add(scRebuilt, caseRebuiltTomljson, tool, "wire_bytes", v)
	}
	md := markdown(cfg, nil, results{rows: rows}, []string{"blueshift", "rsync", "rsync+zstd", "rsync --fsync"}, nil, nil, "n", "", "c", harness{total: time.Minute})
	for _, want := range []string{
		"cpu_s_per_gb 3.000",
		"| 1 loopback incompressible: wall time / rsync --fsync | 2.000 | 1 | MISSED |",
		"| 1 loopback incompressible: CPU s per GB, both ends / rsync | 1.500 | 2 | met |",
		"| 8 " + caseRebuiltTomljson + ": bytes / rsync+zstd | 0.400 | 0.5 | met |",
		"| 8 " + caseRebuiltBlueshift + ": bytes / rsync+zstd | - | 0.5 | not measured |",
		"| 2 100 Mbit/s small files: bytes / rsync+zstd | 1.061 | 0.9 | MISSED |",
		fmt.Sprintf("| 7 bytes at %d files / Syncthing | 0.740 | 0.8 | met |", cfg.ScaleFiles),
		"## " + scRebuilt,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
	if err := parsePlan(plan{}, "8=2"); err != nil {
		t.Errorf("-plan 8=2: %v", err)
	}
}

func TestTreeBytes(t *testing.T) {
	dir := t.TempDir()
	for p, n := range map[string]int{"a": 10, "d/b": 20, "d/e/c": 30} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got := treeBytes(dir); got != 60 {
		t.Errorf("treeBytes = %d, want 60 (regular files only)", got)
	}
}

// TestMarkdownShowsSendTargets: scenario 9's rows get their table, the
// ratios against croc and the verdicts of issue 19's three targets.
func TestMarkdownShowsSendTargets(t *testing.T) {
	cfg := quickConfig()
	var rows []row
	add := func(cas, tool, metric string, v float64) {
		rows = append(rows, row{scSend, cas, tool, 0, metric, v})
	}
	add(caseSendWhole, "blueshift", "wall_s", 3)
	add(caseSendWhole, "croc", "wall_s", 4)
	add(caseSendWhole, "blueshift", "wire_bytes", 110)
	add(caseSendWhole, "croc", "wire_bytes", 100)
	add(caseSendResume, "blueshift", "wall_s", 5)
	add(caseSendResume, "blueshift", "wire_x", 1.02)
	md := markdown(cfg, nil, results{rows: rows}, []string{"blueshift", "croc"}, nil, nil, "n", "", "c", harness{total: time.Minute})
	for _, want := range []string{
		"## " + scSend,
		"32 MiB incompressible file",
		"wire_x 1.020",
		"| 9 one-off send: wall time / croc | 0.750 | 1 | met |",
		"| 9 one-off send: bytes / croc | 1.100 | 1 | MISSED |",
		"| 9 receiver killed -9 at 50 %, run again: bytes / file size | 1.020 | 1.1 | met |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
	if err := parsePlan(plan{}, "9=2"); err != nil {
		t.Errorf("-plan 9=2: %v", err)
	}
}
