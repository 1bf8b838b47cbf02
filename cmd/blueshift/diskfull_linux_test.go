package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/sync/daemon"
)

// TestE2EDiskFullResumes pulls a file into a share on a real, small file
// system (an 8 MiB tmpfs) that has no room for it. The receiver must say
// so in status (share, path, bytes needed, bytes free) and its log, keep
// counting the file as needed, never leave a partial file at its path,
// and finish the pull by itself, with no restart, once space is freed.
func TestE2EDiskFullResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root (CI runs as root)")
	}
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
	big := make([]byte, 6<<20)
	rand.NewChaCha8([32]byte{3}).Read(big) // incompressible
	write(t, filepath.Join(fa, "big.bin"), string(big))
	write(t, filepath.Join(fa, "notes.txt"), "small enough to fit\n")
	// The filler lives on bob's disk, outside the share: 2 MiB stay free.
	filler := filepath.Join(mnt, "filler")
	write(t, filler, strings.Repeat("f", 6<<20))

	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "photos"))
	a.start()
	b.start()
	link := strings.SplitN(a.ok("invite", "photos"), "\n", 2)[0]
	b.ok("join", link, fb)

	noPartial := func() {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(fb, "big.bin"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err == nil && !bytes.Equal(got, big) {
			t.Fatalf("big.bin at its real path holds %d bytes that are not its content", len(got))
		}
	}
	st := b.waitFor("status to say the disk is full", func(st daemon.Status) bool {
		noPartial()
		s, ok := shareOf(st, shareID)
		return ok && s.NeedItems > 0 && len(s.Errors) > 0 && strings.Contains(s.Errors[0], "disk full") &&
			s.DiskFull != nil
	})
	s, _ := shareOf(st, shareID)
	t.Logf("status while full: need %d items, %d bytes; disk_full %+v; errors %q", s.NeedItems, s.NeedBytes, *s.DiskFull, s.Errors)
	if d := s.DiskFull; d.Path != "big.bin" || d.NeedBytes <= 0 || d.NeedBytes > int64(len(big)) || d.FreeBytes < 0 || d.FreeBytes >= d.NeedBytes {
		t.Fatalf("disk_full %+v: want big.bin, 0 < need <= %d, 0 <= free < need", *d, len(big))
	}
	if s.InSync || s.NeedBytes < int64(len(big)) {
		t.Fatalf("status counts %d bytes needed (in sync %v) while big.bin (%d bytes) is missing", s.NeedBytes, s.InSync, len(big))
	}
	for _, want := range []string{`"big.bin"`, "free", "resumes by itself"} {
		if !strings.Contains(s.Errors[0], want) {
			t.Fatalf("the error %q does not say %s", s.Errors[0], want)
		}
	}
	human := b.ok("status")
	if !strings.Contains(human, "disk full") || !strings.Contains(human, "photos: disk full: cannot write \"big.bin\"") {
		t.Fatalf("status does not show the full disk:\n%s", human)
	}
	log := b.logText()
	if !strings.Contains(log, "disk full") || !strings.Contains(log, "share=photos") || !strings.Contains(log, "path=big.bin") ||
		!strings.Contains(log, "need=") || !strings.Contains(log, "free=") {
		t.Fatalf("the log does not name share, path, need and free:\n%s", log)
	}
	// What fits arrives meanwhile: the file that cannot finish took no space.
	for deadline := time.Now().Add(e2eDeadline); ; time.Sleep(100 * time.Millisecond) {
		if data, err := os.ReadFile(filepath.Join(fb, "notes.txt")); err == nil && string(data) == "small enough to fit\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notes.txt, which fits, did not arrive while the disk was full\nlog:\n%s", b.logText())
		}
	}
	noPartial()

	// Space comes back: the pull finishes by itself, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	deadline := freed.Add(2 * e2eDeadline)
	for {
		noPartial()
		if got, err := os.ReadFile(filepath.Join(fb, "big.bin")); err == nil && bytes.Equal(got, big) {
			break
		}
		if time.Now().After(deadline) {
			st, _ := b.status()
			t.Fatalf("big.bin did not arrive within %s of freeing space; status %+v\nlog:\n%s", 2*e2eDeadline, st, b.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("big.bin arrived %.1f s after space was freed", time.Since(freed).Seconds())
	b.waitFor("in sync, nothing needed, no full disk", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.InSync && s.NeedItems == 0 && s.NeedBytes == 0 && s.DiskFull == nil
	})
	waitTrees(t, fa, fb, "after space returned", a, b)
}
