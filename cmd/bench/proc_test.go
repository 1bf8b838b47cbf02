package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

func TestParseTimeOutput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t")
	os.WriteFile(p, []byte("Command exited with non-zero status 23\nrusage 8123 0.50 0.25\n"), 0o644)
	u, err := parseTimeOutput(p)
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS != 8123*1024 || u.CPU != 0.75 {
		t.Fatalf("got %+v, want 8123 KiB and 0.75 s", u)
	}
	os.WriteFile(p, []byte("Command terminated by signal 15\n"), 0o644)
	if _, err := parseTimeOutput(p); err == nil {
		t.Fatal("no rusage line: want an error")
	}
}

// TestStartTimedReportsTheProgram runs a short program under GNU time and
// expects its rusage from time's report, not from wait4.
func TestStartTimedReportsTheProgram(t *testing.T) {
	if _, err := os.Stat(timeBin); err != nil {
		t.Skip("GNU time not installed")
	}
	dir := t.TempDir()
	p, err := startTimed(context.Background(), "true", netns.Endpoint{}, filepath.Join(dir, "log"), filepath.Join(dir, "time"), "true")
	if err != nil {
		t.Fatal(err)
	}
	u := p.finalUsage()
	if _, err := parseTimeOutput(filepath.Join(dir, "time")); err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 {
		t.Fatalf("peak RSS %d: want the program's", u.RSS)
	}
}
