package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// Disk full: the receiver's folder is on a size-limited tmpfs that a filler
// file has mostly used up, so the pull runs out of space. Checked: the error
// shows in `status --json` and the log; while files are missing, status
// never says in sync or 0 needed; once the filler is deleted, the pull
// completes on its own (same process, no restart) within a minute; and the
// file system then holds the data and little else (no temps left behind).

// resumeBound is the bound on resuming once space is back.
const resumeBound = time.Minute

func diskFull(ctx context.Context, s *scenario) error {
	mnt := filepath.Join(s.work, "small-fs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	size := s.t.diskSize
	if out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "bsfault-disk", mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("mount a %s tmpfs: %v: %s", mib(size), err, out)
	}
	s.cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	filler := filepath.Join(mnt, "filler")
	fill := size - s.t.diskData/2 // leaves half the data's size free
	if _, err := writeRandom(filler, s.rng, fill); err != nil {
		return fmt.Errorf("write the filler: %w", err)
	}
	s.did("mounted a %s tmpfs for the receiver's folder and filled %s of it (%s free; the pull needs %s)", mib(size), mib(fill), mib(size-fill), mib(s.t.diskData))

	ep := netns.Endpoint{IP: "127.0.0.1"}
	a, err := s.newDevice(ctx, "sender", ep, filepath.Join(s.work, "sender"))
	if err != nil {
		return err
	}
	b, err := s.newDevice(ctx, "receiver", ep, filepath.Join(mnt, "share"))
	if err != nil {
		return err
	}
	const files = 8
	for i := range files {
		if _, err := writeRandom(filepath.Join(a.dir, fmt.Sprintf("f%d.bin", i)), s.rng, s.t.diskData/files); err != nil {
			return err
		}
	}
	for _, d := range []*device{a, b} {
		if err := d.start(ctx); err != nil {
			return err
		}
	}
	if _, err := shareWith(ctx, a, "disk", b); err != nil {
		return err
	}
	s.runs++
	s.did("shared %d files (%s) into the full file system", files, mib(s.t.diskData))

	// The error must show in status while files are missing.
	var shown []string
	var lie string
	compared := false // the receiver has compared its tree with the sender's
	t0 := time.Now()
	for time.Since(t0) < 2*time.Minute && ctx.Err() == nil {
		if err := b.died(); err != nil {
			return err
		}
		st, err := b.status(ctx)
		if err == nil {
			// Before the first comparison the receiver cannot know what it
			// lacks (not in sync, nothing counted yet); from then on its
			// counts must never fall below what is missing.
			compared = compared || knowsNeeds(st, b.dir)
			missing := countMissing(a.dir, b.dir)
			if l := lies(st, b.dir, missing); compared && l != "" && lie == "" {
				lie = l
			}
			if errs := st.shareErrors(b.dir); len(errs) > 0 {
				shown = errs
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.check("disk full shows in status --json", len(shown) > 0, "after %.0f s: %s", time.Since(t0).Seconds(), short(shown))
	joined := strings.ToLower(strings.Join(shown, " "))
	s.check("status names the shortage", strings.Contains(joined, "space") && strings.Contains(joined, "free"), "share errors %s (want the path, the bytes needed and free)", short(shown))
	s.check("the log names the shortage", b.logCount("space") > 0, "%d log lines mention space", b.logCount("space"))
	// Counts that never lie: sample status a few times while stuck.
	for range 6 {
		st, err := b.status(ctx)
		if l := lies(st, b.dir, countMissing(a.dir, b.dir)); err == nil && l != "" && lie == "" {
			lie = l
		}
		time.Sleep(500 * time.Millisecond)
	}
	st, _ := b.status(ctx)
	missing := countMissing(a.dir, b.dir)
	s.check("needed counts never lie", lie == "", "while full: %d of %d files missing, status: %s%s", missing, files, shareLine(st, b.dir), ifLie(lie))
	var fs syscall.Statfs_t
	_ = syscall.Statfs(mnt, &fs)
	s.did("stuck: %d of %d files missing, %s free on the file system", missing, files, mib(int64(fs.Bavail)*int64(fs.Bsize)))

	pid := b.pid()
	if err := os.Remove(filler); err != nil {
		return err
	}
	s.did("deleted the filler: %s free", mib(s.t.diskSize))
	took, err := converge(ctx, a, a.dir, b, b.dir, resumeBound+s.t.timeout/3)
	s.checkErr("the pull completes once space is back, no restart", err, fmt.Sprintf("converged %.1f s after the space came back (%d files, %s compared)", took.Seconds(), files, mib(s.t.diskData)))
	if err == nil {
		s.check("resumed within a minute", took <= resumeBound, "%.1f s (bound %v)", took.Seconds(), resumeBound)
	}
	s.check("same daemon process", b.pid() == pid && pid != 0, "pid %d before, %d after", pid, b.pid())
	_ = syscall.Statfs(mnt, &fs)
	used := int64(fs.Blocks-fs.Bfree) * int64(fs.Bsize)
	if err == nil {
		s.check("no temps left taking space", used <= s.t.diskData+s.t.diskData/10+1<<20, "%s used on the file system for %s of data", mib(used), mib(s.t.diskData))
	}
	st, _ = b.status(ctx)
	s.check("errors cleared once in sync", len(st.shareErrors(b.dir)) == 0, "share errors now %s", short(st.shareErrors(b.dir)))
	return nil
}

// lies describes how status misstates what is needed while missing files
// are missing: in sync, or nothing needed.
func lies(st status, dir string, missing int) string {
	for _, sh := range st.Shares {
		if filepath.Clean(sh.Path) != filepath.Clean(dir) || missing == 0 {
			continue
		}
		if sh.InSync || sh.NeedItems < int64(missing) {
			return fmt.Sprintf("%d files missing while status says in_sync=%v need_items=%d need_bytes=%d", missing, sh.InSync, sh.NeedItems, sh.NeedBytes)
		}
	}
	return ""
}

// knowsNeeds reports whether dir's share has compared with a peer: it
// counts something needed, is in sync, or shows an error.
func knowsNeeds(st status, dir string) bool {
	for _, sh := range st.Shares {
		if filepath.Clean(sh.Path) == filepath.Clean(dir) && (sh.NeedItems > 0 || sh.InSync || len(sh.Errors) > 0) {
			return true
		}
	}
	return false
}

// short shows the first of a list of errors and how many more there are.
func short(errs []string) string {
	switch len(errs) {
	case 0:
		return "none"
	case 1:
		return fmt.Sprintf("%q", errs[0])
	}
	return fmt.Sprintf("%q (and %d more)", errs[0], len(errs)-1)
}

func ifLie(l string) string {
	if l == "" {
		return ""
	}
	return "; earlier: " + l
}

// countMissing counts the sender's files that are not at their path on the
// receiver with the same size.
func countMissing(src, dst string) int {
	n := 0
	es, _ := os.ReadDir(src)
	for _, e := range es {
		if !e.Type().IsRegular() {
			continue
		}
		ia, err1 := e.Info()
		ib, err2 := os.Stat(filepath.Join(dst, e.Name()))
		if err1 != nil || err2 != nil || ia.Size() != ib.Size() {
			n++
		}
	}
	return n
}
