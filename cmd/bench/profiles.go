package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CPU profiles of scenario 1 (-profiles DIR; issue 14 asks for profiles of
// the loopback first syncs before and after its work). Each Blueshift
// daemon of a profiled run writes a CPU profile of its whole life (run
// --cpu-profile): start-up and the second before the timed part are in it
// too, a few percent of a first sync's samples. Next to each profile the
// bench leaves its `go tool pprof -top -cum` text, so a reader needs no
// binary; the binary (DIR/blueshift) is kept for reading the profile
// further (go tool pprof DIR/blueshift FILE).

// profileDir checks that bin can write CPU profiles, makes dir and copies
// bin into it, and returns dir as an absolute path (the daemons run with
// other working directories).
func profileDir(ctx context.Context, bin, dir string) (string, error) {
	if !strings.Contains(runHelp(ctx, bin), "--cpu-profile") {
		return "", fmt.Errorf("-profiles: this build of blueshift has no `run --cpu-profile`: measure a later revision, or profile by hand with `run --pprof`")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("-profiles %s: %w", dir, err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	return abs, os.WriteFile(filepath.Join(abs, "blueshift"), data, 0o755)
}

// profileStem names the profiles of one run of one case.
func profileStem(dir, cas string, run int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-run%d", strings.ReplaceAll(cas, " ", "-"), run+1))
}

// profilePath is device i's profile of the run stem names.
func profilePath(stem string, i int) string {
	return fmt.Sprintf("%s-dev%d.pprof", stem, i)
}

// renderProfiles writes the text summary beside each of n devices'
// profiles of the run stem names (after the daemons stopped and wrote
// them). A profile that is missing or unreadable is logged, not fatal:
// the run's figures stand without it.
func (b *bench) renderProfiles(ctx context.Context, stem string, n int) {
	bin := filepath.Join(filepath.Dir(stem), "blueshift")
	for i := range n {
		p := profilePath(stem, i)
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=60", bin, p).Output()
		if err != nil {
			b.log.Warn("CPU profile not rendered", "profile", p, "err", err)
			continue
		}
		if err := os.WriteFile(strings.TrimSuffix(p, ".pprof")+".txt", out, 0o644); err != nil {
			b.log.Warn("CPU profile not rendered", "profile", p, "err", err)
		}
	}
}
