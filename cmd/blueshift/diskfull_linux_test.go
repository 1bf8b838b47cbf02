package main

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EDiskFullResumes pulls files into a share on a real, small file
// system (an 8 MiB tmpfs) that has no room for them. The receiver must say
// so in status (share, path, bytes needed, bytes free) and its log, keep
// counting what is missing as needed, never leave a partial file at a real
// path, and finish the pull by itself, with no restart, once space is
// freed.
func TestE2EDiskFullResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root (CI runs as root)")
	}
	t.Run("a file that cannot fit", func(t *testing.T) {
		// 2 MiB free, a 6 MiB file: its pull must not even start.
		diskFullScenario(t, 6<<20, map[string]int{"big.bin": 6 << 20}, false)
	})
	t.Run("files that fit alone, not together", func(t *testing.T) {
		// 4 MiB free, two 3 MiB files pulled at once: one or both run out
		// of space part way. The partial download of one gives way, so the
		// other finishes while the disk is still full; the rest waits.
		diskFullScenario(t, 4<<20, map[string]int{"one.bin": 3 << 20, "two.bin": 3 << 20}, true)
	})
}

// diskFullScenario syncs sizes (random files) plus a small file to a
// receiver whose 8 MiB disk holds a filler of fill bytes, then deletes the
// filler. With oneFinishes, one of the large files must arrive before.
func diskFullScenario(t *testing.T, fill int, sizes map[string]int, oneFinishes bool) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // first registered: runs last
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("mount a tmpfs at %s: %v (needs CAP_SYS_ADMIN)", mnt, err)
	}
	// Registered before the devices: unmounted after bob's daemon stopped.
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})

	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	fa, fb := filepath.Join(t.TempDir(), "a"), filepath.Join(mnt, "share")
	want := map[string][]byte{}
	rng := rand.NewChaCha8([32]byte{3})
	var total int64
	for name, n := range sizes {
		data := make([]byte, n)
		rng.Read(data) // incompressible
		want[name] = data
		total += int64(n)
		write(t, filepath.Join(fa, name), string(data))
	}
	write(t, filepath.Join(fa, "notes.txt"), "small enough to fit\n")
	// The filler lives on bob's disk, outside the share.
	filler := filepath.Join(mnt, "filler")
	write(t, filler, strings.Repeat("f", fill))

	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "photos"))
	a.start()
	b.start()
	link := strings.SplitN(a.ok("invite", "photos"), "\n", 2)[0]
	b.ok("join", link, fb)

	noPartial := func() {
		t.Helper()
		checkNoPartial(t, fb, want)
	}
	missing := func() (n int, bytes int64) {
		for name, data := range want {
			if !complete(fb, map[string][]byte{name: data}) {
				n, bytes = n+1, bytes+int64(len(data))
			}
		}
		return n, bytes
	}
	st := b.waitFor("status to say the disk is full", func(st daemon.Status) bool {
		noPartial()
		s, ok := shareOf(st, shareID)
		return ok && s.NeedItems > 0 && len(s.Errors) > 0 && strings.Contains(s.Errors[0], "disk full") &&
			s.DiskFull != nil
	})
	s, _ := shareOf(st, shareID)
	t.Logf("status while full: need %d items, %d bytes; disk_full %+v; errors %q", s.NeedItems, s.NeedBytes, *s.DiskFull, s.Errors)
	d := s.DiskFull
	if data, ok := want[d.Path]; !ok || d.NeedBytes <= 0 || d.NeedBytes > int64(len(data)) || d.FreeBytes < 0 || d.FreeBytes >= d.NeedBytes {
		t.Fatalf("disk_full %+v: want one of the large files, 0 < need <= its size, 0 <= free < need", *d)
	}
	// Needed counts never lie: whatever is missing is counted.
	if n, bytes := missing(); s.InSync || s.NeedItems < n || s.NeedBytes < bytes {
		t.Fatalf("status counts %d items, %d bytes needed (in sync %v) while %d files, %d bytes are missing",
			s.NeedItems, s.NeedBytes, s.InSync, n, bytes)
	}
	for _, w := range []string{`"` + d.Path + `"`, "free", "resumes by itself"} {
		if !strings.Contains(s.Errors[0], w) {
			t.Fatalf("the error %q does not say %s", s.Errors[0], w)
		}
	}
	human := b.ok("status")
	if !strings.Contains(human, "disk full") || !strings.Contains(human, "photos: disk full: cannot write \""+d.Path+"\"") {
		t.Fatalf("status does not show the full disk:\n%s", human)
	}
	log := b.logText()
	if !strings.Contains(log, "disk full") || !strings.Contains(log, "share=photos") || !strings.Contains(log, "path=") ||
		!strings.Contains(log, "need=") || !strings.Contains(log, "free=") {
		t.Fatalf("the log does not name share, path, need and free:\n%s", log)
	}
	// What fits arrives meanwhile.
	for deadline := time.Now().Add(e2eDeadline); ; time.Sleep(100 * time.Millisecond) {
		if data, err := os.ReadFile(filepath.Join(fb, "notes.txt")); err == nil && string(data) == "small enough to fit\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notes.txt, which fits, did not arrive while the disk was full\nlog:\n%s", b.logText())
		}
	}
	// Partial downloads hold no more than what is missing.
	if held := dirBytes(t, filepath.Join(fb, ".blueshift", "tmp")); held > total {
		t.Fatalf("temps hold %d bytes, more than the %d bytes of the files", held, total)
	}
	noPartial()
	if oneFinishes {
		st := b.waitFor("one large file to finish while the disk is full", func(st daemon.Status) bool {
			noPartial()
			s, ok := shareOf(st, shareID)
			n, _ := missing()
			return ok && n == len(want)-1 && s.DiskFull != nil && s.NeedItems == 1
		})
		s, _ := shareOf(st, shareID)
		t.Logf("one file finished while full; still: %+v", *s.DiskFull)
	}

	// Space comes back: the pull finishes by itself, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	deadline := freed.Add(2 * e2eDeadline)
	for {
		noPartial()
		if complete(fb, want) {
			break
		}
		if time.Now().After(deadline) {
			st, _ := b.status()
			t.Fatalf("the files did not arrive within %s of freeing space; status %+v\nlog:\n%s", 2*e2eDeadline, st, b.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the files arrived %.1f s after space was freed", time.Since(freed).Seconds())
	b.waitFor("in sync, nothing needed, no full disk", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.InSync && s.NeedItems == 0 && s.NeedBytes == 0 && s.DiskFull == nil
	})
	waitTrees(t, fa, fb, "after space returned", a, b)
}

// dirBytes is the space the files in dir take on disk.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
	}
	return n
}
