package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMarkdownShowsIssue14Rows: CPU seconds per GB appear beside a first
// sync's figures, and the targets of issue 14 (rsync --fsync, CPU per GB,
// the rebuilt binaries' bytes against rsync+zstd) get their verdicts.
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
	for tool, v := range map[string]float64{"blueshift": 400, "rsync+zstd": 1000} {
		add(scRebuilt, caseRebuiltTomljson, tool, "wall_s", 1)
		add(scRebuilt, caseRebuiltTomljson, tool, "wire_bytes", v)
	}
	md := markdown(cfg, nil, results{rows: rows}, []string{"blueshift", "rsync", "rsync+zstd", "rsync --fsync"}, nil, "n", "", "c", harness{total: time.Minute})
	for _, want := range []string{
		"cpu_s_per_gb 3.000",
		"| 1 loopback incompressible: wall time / rsync --fsync | 2.000 | 1 | MISSED |",
		"| 1 loopback incompressible: CPU s per GB, both ends / rsync | 1.500 | 2 | met |",
		"| 8 " + caseRebuiltTomljson + ": bytes / rsync+zstd | 0.400 | 0.5 | met |",
		"| 8 " + caseRebuiltBlueshift + ": bytes / rsync+zstd | - | 0.5 | not measured |",
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
