package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ---- scenario 8: a rebuilt program replaces its previous build
//
// A program rebuilt after a small source change differs from its previous
// build nearly everywhere by a few bytes (addresses move), so chunks find
// little to reuse: the case for a delta against the receiver's previous
// version of the same path. Two real pairs, built by this harness:
//   - Blueshift itself at the measured commit and before the last commit
//     that changed its Go code;
//   - go-toml's tomljson (from the module cache, the version go.mod names)
//     before and after a one-line change to its source.

// The scenario's cases: the measured commit is named under Machine.
const (
	caseRebuiltBlueshift = "blueshift: before its last code change -> measured commit"
	caseRebuiltTomljson  = "go-toml tomljson: one-line change"
)

// binaryPair is one program built twice: old, then after a small change.
type binaryPair struct {
	name     string
	old, new string // the two builds
}

// rebuiltPairs builds the scenario's programs into work. rev is the
// Blueshift revision measured ("" = the working tree: its HEAD is used).
func (b *bench) rebuiltPairs(ctx context.Context, rev, work string) ([]binaryPair, error) {
	var pairs []binaryPair
	bs, err := b.blueshiftPair(ctx, rev, work)
	if err != nil {
		// A checkout without history (a shallow clone) cannot build an
		// older commit: the scenario goes on with the other pair.
		b.log.Warn("rebuilt binary: no blueshift pair; measuring the other pair only", "err", err)
	} else {
		pairs = append(pairs, bs)
	}
	tj, err := buildTomljson(ctx, filepath.Join(work, "rebuilt"))
	if err != nil {
		return nil, err
	}
	return append(pairs, tj), nil
}

// blueshiftPair builds Blueshift at rev and at the parent of the last
// commit that changed its Go code.
func (b *bench) blueshiftPair(ctx context.Context, rev, work string) (binaryPair, error) {
	if rev == "" {
		rev = "HEAD"
	}
	commit, err := run(ctx, exec.CommandContext(ctx, "git", "rev-parse", "--short", rev+"^{commit}"))
	if err != nil {
		return binaryPair{}, fmt.Errorf("resolve blueshift revision %q: %w", rev, err)
	}
	commit = firstLine(commit)
	// The old build is from before the last commit that changed the
	// program's Go code (a commit of docs or tests alone rebuilds the same
	// binary).
	changed, err := run(ctx, exec.CommandContext(ctx, "git", "log", "-n1", "--format=%h", commit, "--", "*.go", ":!*_test.go", ":!cmd/bench"))
	if err != nil || firstLine(changed) == "" {
		return binaryPair{}, fmt.Errorf("find the last commit changing Go code up to %s: %w", commit, err)
	}
	parent, err := run(ctx, exec.CommandContext(ctx, "git", "rev-parse", "--short", firstLine(changed)+"^"))
	if err != nil {
		return binaryPair{}, fmt.Errorf("resolve the parent of %s: %w", firstLine(changed), err)
	}
	parent = firstLine(parent)
	if b.cfg.RebuiltPair != "" {
		if parent, commit, err = revPair(ctx, b.cfg.RebuiltPair); err != nil {
			return binaryPair{}, err
		}
	}
	bs := binaryPair{name: caseRebuiltBlueshift}
	b.log.Info("rebuilt binary: blueshift builds", "old", parent, "new", commit)
	for _, c := range []struct {
		commit string
		out    *string
	}{{parent, &bs.old}, {commit, &bs.new}} {
		*c.out = filepath.Join(work, "rebuilt", "blueshift-"+c.commit)
		// Both in one directory, as a developer rebuilds in one checkout:
		// the source paths a build embeds are then the same.
		if err := buildAt(ctx, c.commit, filepath.Join(work, "rebuilt", "src"), *c.out); err != nil {
			return binaryPair{}, err
		}
	}
	return bs, nil
}

// buildAt builds cmd/blueshift of commit (exported to src, removed after)
// into out, as buildBlueshift does.
func buildAt(ctx context.Context, commit, src, out string) error {
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(src)
	export := exec.CommandContext(ctx, "sh", "-c", `git archive --format=tar "$1" | tar -x -C "$2"`, "sh", commit, src)
	if _, err := run(ctx, export); err != nil {
		return fmt.Errorf("export blueshift %s: %w", commit, err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/blueshift")
	build.Dir = src
	if _, err := run(ctx, build); err != nil {
		return fmt.Errorf("build blueshift %s: %w", commit, err)
	}
	return nil
}

// tomljsonChange is the one-line source change between the two builds.
const (
	tomljsonAnchor = `e.SetIndent("", "  ")`
	tomljsonChange = tomljsonAnchor + "\n\te.SetEscapeHTML(false)"
)

// buildTomljson copies go-toml (the version go.mod requires) from the
// module cache and builds its tomljson command before and after a one-line
// change, offline.
func buildTomljson(ctx context.Context, dir string) (binaryPair, error) {
	modDir, err := run(ctx, exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/pelletier/go-toml/v2"))
	if err != nil || firstLine(modDir) == "" {
		return binaryPair{}, fmt.Errorf("find go-toml in the module cache (go mod download github.com/pelletier/go-toml/v2): %w", err)
	}
	src := filepath.Join(dir, "go-toml")
	defer os.RemoveAll(src)
	if _, err := run(ctx, exec.CommandContext(ctx, "cp", "-r", firstLine(modDir), src)); err != nil {
		return binaryPair{}, err
	}
	if _, err := run(ctx, exec.CommandContext(ctx, "chmod", "-R", "u+w", src)); err != nil {
		return binaryPair{}, err
	}
	p := binaryPair{name: caseRebuiltTomljson, old: filepath.Join(dir, "tomljson-old"), new: filepath.Join(dir, "tomljson-new")}
	build := func(out string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/tomljson")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		_, err := run(ctx, cmd)
		return err
	}
	if err := build(p.old); err != nil {
		return binaryPair{}, fmt.Errorf("build tomljson: %w", err)
	}
	main := filepath.Join(src, "cmd", "tomljson", "main.go")
	code, err := os.ReadFile(main)
	if err != nil {
		return binaryPair{}, err
	}
	if !strings.Contains(string(code), tomljsonAnchor) {
		return binaryPair{}, fmt.Errorf("change tomljson: %q not found in %s", tomljsonAnchor, main)
	}
	changed := strings.Replace(string(code), tomljsonAnchor, tomljsonChange, 1)
	if err := os.WriteFile(main, []byte(changed), 0o644); err != nil {
		return binaryPair{}, err
	}
	if err := build(p.new); err != nil {
		return binaryPair{}, fmt.Errorf("build tomljson after the change: %w", err)
	}
	return p, nil
}

// rebuilt measures each tool syncing, for each pair, the old build (as
// bin/prog) and then the new build put in its place: the figures are the
// second step's.
func (b *bench) rebuilt(ctx context.Context, scenario string, pairs []binaryPair, tools []string, runs int) {
	for r := range runs {
		for _, p := range pairs {
			for _, tool := range tools {
				if ctx.Err() != nil {
					return // interrupted: what was measured is reported
				}
				ops := []editOp{
					{"old build arrives", func(a string) error { return b.putFile(p.old, filepath.Join(a, "bin", "prog")) }, ""},
					{"rebuilt", func(a string) error { return b.putFile(p.new, filepath.Join(a, "bin", "prog")) }, ""},
				}
				// On the shaped link: bytes are the figure, and a peer on
				// loopback is sent blocks uncompressed (loopback outruns zstd).
				ms, err := b.editsOnce(ctx, tool, true, ops)
				if err != nil {
					b.fail(scenario, p.name, tool, err)
					continue
				}
				m := ms[1]
				if fi, err := os.Stat(p.new); err == nil {
					m.extra = map[string]float64{"file_mb": float64(fi.Size()) / 1e6}
				}
				b.add(scenario, p.name, tool, r, m)
				b.log.Info("measured", "scenario", scenario, "case", p.name, "tool", tool, "run", r, "wire", m.wire)
			}
		}
	}
}

// putFile copies src to dst by way of a file outside the folder renamed in
// (as a build tool installs a program): the op itself is instant.
func (b *bench) putFile(src, dst string) error {
	tmp := filepath.Join(b.work, b.uniq("bin"))
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// treeBytes is the size of the regular files under dir (0 if unreadable).
func treeBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// revPair resolves OLD..NEW to two short commit hashes.
func revPair(ctx context.Context, pair string) (old, nw string, err error) {
	revs := strings.Split(pair, "..")
	if len(revs) != 2 {
		return "", "", fmt.Errorf("rebuilt pair %q: want OLD..NEW", pair)
	}
	var out [2]string
	for i, r := range revs {
		c, err := run(ctx, exec.CommandContext(ctx, "git", "rev-parse", "--short", r+"^{commit}"))
		if err != nil {
			return "", "", fmt.Errorf("resolve %q of the rebuilt pair: %w", r, err)
		}
		out[i] = firstLine(c)
	}
	return out[0], out[1], nil
}
