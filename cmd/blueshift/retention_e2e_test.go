package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestE2EVersionsRetention: bob's share says in config.toml, as a user
// writes it, versions_keep = 2 and versions_max_mb = 1. Alice replaces a
// small file four times: bob's versions folder holds only the two newest of its
// old contents. Alice replaces a 700 KiB file twice: two versions of it
// (1.4 MiB) would exceed the cap, so the second save removes the oldest at
// once (the cap holds at every save, not only at the prunes at start and
// hourly); what remains fits in 1 MiB, the newest versions kept, and a
// restart's prune changes nothing.
func TestE2EVersionsRetention(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	rng := rand.NewChaCha8([32]byte{17})
	big := func() string {
		data := make([]byte, 700<<10)
		rng.Read(data) // incompressible
		return string(data)
	}
	bigs := []string{big(), big(), big()}
	write(t, filepath.Join(fa, "big.bin"), bigs[0])
	write(t, filepath.Join(fa, "notes.txt"), "notes 0\n")
	a.ok("share", "add", fa, "--name", "home")
	a.start()
	b.start()
	b.ok("join", firstLine(a.ok("invite", "home")), fb)
	waitTrees(t, fa, fb, "bob joined", a, b)

	// The user edits bob's config.toml by hand while his daemon is stopped.
	b.stop()
	cfgPath := filepath.Join(b.home, "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	keepRE := regexp.MustCompile(`(?m)^versions_keep = \d+$`)
	if len(keepRE.FindAll(cfg, -1)) != 1 {
		t.Fatalf("bob's config.toml has not one versions_keep line:\n%s", cfg)
	}
	cfg = keepRE.ReplaceAll(cfg, []byte("versions_keep = 2\nversions_max_mb = 1"))
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()

	// replace writes content to alice's name, waits until bob holds it, and
	// then until the clock is past the second of bob's version (names and
	// times of versions are by the second), so each version has its own.
	replace := func(name, content string) {
		t.Helper()
		write(t, filepath.Join(fa, name), content)
		waitTrees(t, fa, fb, "bob has the new "+name, a, b)
		done := time.Now().Truncate(time.Second).Add(time.Second)
		for time.Now().Before(done) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	replace("big.bin", bigs[1])
	replace("big.bin", bigs[2])
	for i := 1; i <= 4; i++ {
		replace("notes.txt", "notes "+string(rune('0'+i))+"\n")
	}

	vdir := filepath.Join(fb, ".blueshift", "versions")
	if got, want := versionContents(t, vdir, "notes"), []string{"notes 2\n", "notes 3\n"}; !slices.Equal(got, want) {
		t.Fatalf("bob's versions of notes.txt with versions_keep = 2: %q, want %q (oldest first)", got, want)
	}
	if got := versionContents(t, vdir, "big"); len(got) != 1 {
		t.Fatalf("bob's versions of big.bin after the second save: %d, want 1 (two would exceed versions_max_mb = 1)\n%s", len(got), b.logText())
	}

	// A restart prunes the folder: nothing over the cap is left to remove.
	b.stop()
	b.start()
	if got := versionContents(t, vdir, "big"); len(got) != 1 || got[0] != bigs[1] {
		t.Fatal("the size cap kept the older version of big.bin, not the newer")
	}
	if got, want := versionContents(t, vdir, "notes"), []string{"notes 2\n", "notes 3\n"}; !slices.Equal(got, want) {
		t.Fatalf("bob's versions of notes.txt after the prune: %q, want %q (newer than big.bin's, within the cap)", got, want)
	}
	var total int64
	filepath.WalkDir(vdir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	if total > 1<<20 {
		t.Fatalf("bob's versions folder holds %d bytes, over versions_max_mb = 1", total)
	}
	if out := b.ok("versions", "list", "home", "notes.txt"); strings.Count(out, "\nnotes.txt ") != 2 {
		t.Fatalf("versions list on bob:\n%s", out)
	}
}

// versionContents reads the kept versions of stem (STEM~TIME.EXT) in
// vdir, oldest first.
func versionContents(t *testing.T, vdir, stem string) []string {
	t.Helper()
	ents, err := os.ReadDir(vdir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), stem+"~") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // the stamp is YYYYMMDD-HHMMSS: sorts by time
	var out []string
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(vdir, n))
		if err != nil {
			continue // pruned meanwhile
		}
		out = append(out, string(b))
	}
	return out
}

// TestE2EVersionsDaysZeroIsNoAgeLimit: config.toml documents
// versions_days = 0 as "no age limit". A share says so, with
// versions_keep = 1, and its versions folder holds two versions of
// notes.txt kept in January 2020. The prune at start removes the older
// one (versions_keep: the sign the prune ran) and must keep the newer,
// however old.
func TestE2EVersionsDaysZeroIsNoAgeLimit(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "alice")
	fa := filepath.Join(t.TempDir(), "a")
	write(t, filepath.Join(fa, "notes.txt"), "notes now\n")
	vdir := filepath.Join(fa, ".blueshift", "versions")
	write(t, filepath.Join(vdir, "notes~20200101-000000.txt"), "notes on new year's day 2020\n")
	write(t, filepath.Join(vdir, "notes~20200102-000000.txt"), "notes the day after\n")
	a.ok("share", "add", fa, "--name", "home")
	cfgPath := filepath.Join(a.home, "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	keepRE := regexp.MustCompile(`(?m)^versions_keep = \d+$`)
	daysRE := regexp.MustCompile(`(?m)^versions_days = \d+$`)
	if len(keepRE.FindAll(cfg, -1)) != 1 || len(daysRE.FindAll(cfg, -1)) != 1 {
		t.Fatalf("alice's config.toml has not one versions_keep and one versions_days line:\n%s", cfg)
	}
	cfg = keepRE.ReplaceAll(cfg, []byte("versions_keep = 1"))
	cfg = daysRE.ReplaceAll(cfg, []byte("versions_days = 0"))
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	a.start()

	deadline := time.Now().Add(e2eDeadline)
	for len(versionContents(t, vdir, "notes")) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the prune at start never removed the version beyond versions_keep = 1\n%s", a.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, want := versionContents(t, vdir, "notes"), []string{"notes the day after\n"}; !slices.Equal(got, want) {
		t.Fatalf("versions of notes.txt with versions_keep = 1, versions_days = 0: %q, want %q", got, want)
	}
}
