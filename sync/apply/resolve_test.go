package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

func TestConflictNameRoundTrip(t *testing.T) {
	when := time.Date(2026, 12, 3, 10, 4, 5, 0, time.UTC)
	for _, base := range []string{"report.pdf", "Makefile", ".bashrc", "a.tar.gz", "x.sync-conflict-y.txt"} {
		name := ConflictName(base, "bobs-laptop", when)
		got, dev, at, ok := ParseConflictName(name)
		if !ok || got != base || dev != "bobs-laptop" || !at.Equal(when) {
			t.Errorf("%s -> %s -> %q %q %v %v", base, name, got, dev, at, ok)
		}
	}
	for _, bad := range []string{"report.pdf", "report.sync-conflict-2026.pdf", ".sync-conflict-20261203-100405-bob"} {
		if _, _, _, ok := ParseConflictName(bad); ok {
			t.Errorf("ParseConflictName(%q) ok", bad)
		}
	}
}

// Each way of resolving a conflict leaves the chosen content and loses
// nothing: what is replaced or removed is in the versions folder.
func TestResolveConflict(t *testing.T) {
	ctx := context.Background()
	when := time.Date(2026, 12, 3, 10, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		keep          ResolveKeep
		path, both    string // content at the path after, and at the kept copy's name (KeepBoth)
		versionsAfter int
	}{
		{KeepOriginal, "winner", "", 1},
		{KeepCopy, "loser", "", 2},
		{KeepBoth, "winner", "loser", 1},
	} {
		r, dir := openTest(t, Options{})
		mustWrite(t, r, "docs/a.txt", FileState{}, "winner")
		cpName := record.Path("docs/" + ConflictName("a.txt", "bob", when))
		mustWrite(t, r, cpName, FileState{}, "loser")
		cs, err := r.Conflicts(ctx)
		if err != nil || len(cs) != 1 || cs[0].Path != "docs/a.txt" || cs[0].Copy != cpName || cs[0].Device != "bob" {
			t.Fatalf("Conflicts = %+v, %v", cs, err)
		}
		if _, err := r.Resolve(ctx, cs[0], tc.keep); err != nil {
			t.Fatalf("keep %d: %v", tc.keep, err)
		}
		if got := readFile(t, filepath.Join(dir, "docs/a.txt")); got != tc.path {
			t.Errorf("keep %d: a.txt holds %q, want %q", tc.keep, got, tc.path)
		}
		if _, err := os.Lstat(filepath.Join(dir, string(cpName))); err == nil {
			t.Errorf("keep %d: the conflict copy is still there", tc.keep)
		}
		if tc.both != "" {
			if got := readFile(t, filepath.Join(dir, "docs/a (bob).txt")); got != tc.both {
				t.Errorf("keep both: the copy's content %q", got)
			}
		}
		all, err := r.AllVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, vs := range all {
			n += len(vs)
		}
		if n != tc.versionsAfter {
			t.Errorf("keep %d: %d versions kept, want %d: %v", tc.keep, n, tc.versionsAfter, all)
		}
		if cs, _ := r.Conflicts(ctx); len(cs) != 0 {
			t.Errorf("keep %d: still listed: %+v", tc.keep, cs)
		}
		if _, err := r.Resolve(ctx, Conflict{Path: "docs/a.txt", Copy: "../etc/passwd"}, KeepCopy); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("a copy that is not the path's: %v", err)
		}
	}
}

func TestRestoreVersion(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	r, dir := openTest(t, Options{Clock: clock.Now})
	st := mustWrite(t, r, "a.txt", FileState{}, "one")
	clock.now = clock.now.Add(time.Hour)
	st = mustWrite(t, r, "a.txt", st, "two") // keeps "one" at 01:00
	clock.now = clock.now.Add(time.Hour)
	mustWrite(t, r, "a.txt", st, "three") // keeps "two" at 02:00

	v, err := r.FindVersion("a.txt", time.Date(2026, 12, 1, 1, 30, 0, 0, time.UTC))
	if err != nil || !v.Time.Equal(time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("FindVersion at 01:30 = %+v, %v", v, err)
	}
	clock.now = clock.now.Add(time.Hour)
	if _, err := r.Restore(ctx, "a.txt", v); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "one" {
		t.Fatalf("restored %q", got)
	}
	if latest, err := r.FindVersion("a.txt", time.Time{}); err != nil || latest.Time.Before(clock.now.Truncate(time.Second)) {
		t.Fatalf("what the restore replaced was not kept: %+v %v", latest, err)
	}
	if _, err := r.FindVersion("a.txt", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("a time before every version: %v", err)
	}
	if _, err := r.FindVersion("never.txt", time.Time{}); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("a path never kept: %v", err)
	}
	os.Remove(filepath.Join(dir, filepath.FromSlash(v.Path)))
	if _, err := r.Restore(ctx, "a.txt", v); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("restore of a pruned version: %v", err)
	}
}

// The size cap removes the oldest versions first, whatever their path.
func TestVersionsSizeCap(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	r, _ := openTest(t, Options{Clock: clock.Now, VersionsMaxBytes: 25, VersionsKeep: -1, VersionsDays: -1})
	sa := mustWrite(t, r, "a.txt", FileState{}, "0123456789")
	sb := mustWrite(t, r, "b.txt", FileState{}, "0123456789")
	for i := range 3 {
		clock.now = clock.now.Add(time.Minute)
		sa = mustWrite(t, r, "a.txt", sa, "0123456789"[:9-i])
		clock.now = clock.now.Add(time.Minute)
		sb = mustWrite(t, r, "b.txt", sb, "0123456789"[:9-i])
	}
	if err := r.PruneVersions(context.Background()); err != nil {
		t.Fatal(err)
	}
	all, _ := r.AllVersions(context.Background())
	var total int64
	var oldest time.Time
	for _, vs := range all {
		for _, v := range vs {
			total += v.Size
			if oldest.IsZero() || v.Time.Before(oldest) {
				oldest = v.Time
			}
		}
	}
	// Kept, newest first: b 8 (06:00), a 8 (05:00), b 9 (04:00) = 25 bytes.
	if total > 25 || total < 20 || !oldest.Equal(time.Date(2026, 12, 1, 0, 4, 0, 0, time.UTC)) {
		t.Fatalf("after the cap: %d bytes, oldest %s: %v", total, oldest, all)
	}
}

// The size cap holds at every save, not only when PruneVersions runs: a
// save that takes the folder over the cap removes the oldest versions then.
func TestVersionsSizeCapAtEachSave(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	r, _ := openTest(t, Options{Clock: clock.Now, VersionsMaxBytes: 25, VersionsKeep: -1, VersionsDays: -1})
	total := func() (n int64, count int) {
		all, err := r.AllVersions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, vs := range all {
			for _, v := range vs {
				n += v.Size
				count++
			}
		}
		return n, count
	}
	sa := mustWrite(t, r, "a.txt", FileState{}, "0123456789")
	sb := mustWrite(t, r, "b.txt", FileState{}, "0123456789")
	most := 0
	for i := range 6 {
		clock.now = clock.now.Add(time.Minute)
		sa = mustWrite(t, r, "a.txt", sa, "0123456789"[:9-i])
		clock.now = clock.now.Add(time.Minute)
		sb = mustWrite(t, r, "b.txt", sb, "0123456789"[:9-i])
		n, count := total()
		if n > 25 {
			t.Fatalf("after save %d the versions folder holds %d bytes, over the 25-byte cap", i+1, n)
		}
		most = max(most, count)
	}
	if most < 3 {
		t.Fatalf("at most %d versions were ever kept under a 25-byte cap of 7-10 byte versions: the cap removed too much", most)
	}
}
