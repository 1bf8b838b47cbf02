package apply

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

var testTime = time.Date(2024, 12, 31, 23, 59, 58, 0, time.UTC)

func TestConflictName(t *testing.T) {
	cases := []struct{ base, want string }{
		{"report.pdf", "report.sync-conflict-20241231-235958-ABC123.pdf"},
		{"Makefile", "Makefile.sync-conflict-20241231-235958-ABC123"},
		{".bashrc", ".bashrc.sync-conflict-20241231-235958-ABC123"},
		{".config.toml", ".config.sync-conflict-20241231-235958-ABC123.toml"},
		{"archive.tar.gz", "archive.tar.sync-conflict-20241231-235958-ABC123.gz"},
		{"trailing.", "trailing..sync-conflict-20241231-235958-ABC123"},
	}
	for _, c := range cases {
		if got := ConflictName(c.base, "ABC123", testTime); got != c.want {
			t.Errorf("ConflictName(%q) = %q, want %q", c.base, got, c.want)
		}
	}
	// The stamp is UTC whatever zone the time carries.
	inTokyo := testTime.In(time.FixedZone("JST", 9*3600))
	if got := ConflictName("a.txt", "D", inTokyo); got != "a.sync-conflict-20241231-235958-D.txt" {
		t.Errorf("zone leaked into name: %q", got)
	}
}

func TestConflictCopy(t *testing.T) {
	r, dir := openTest(t, Options{})
	mustWrite(t, r, "d/notes.txt", FileState{}, "mine")
	got, err := r.ConflictCopy("d/notes.txt", "DEV1", testTime)
	if err != nil {
		t.Fatal(err)
	}
	if got != "d/notes.sync-conflict-20241231-235958-DEV1.txt" {
		t.Fatalf("path %q", got)
	}
	if readFile(t, filepath.Join(dir, filepath.FromSlash(string(got)))) != "mine" {
		t.Fatal("content lost")
	}
	if _, err := os.Lstat(filepath.Join(dir, "d", "notes.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("original still there")
	}
	// Never overwrite an existing conflict copy.
	mustWrite(t, r, "d/notes.txt", FileState{}, "again")
	if _, err := r.ConflictCopy("d/notes.txt", "DEV1", testTime); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("got %v, want ErrExist", err)
	}
	if readFile(t, filepath.Join(dir, filepath.FromSlash(string(got)))) != "mine" {
		t.Fatal("conflict copy overwritten")
	}
	for _, dev := range []string{"", "a/b", "x.y", "../z", "DEV\x00"} {
		if _, err := r.ConflictCopy("d/notes.txt", dev, testTime); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("device %q: got %v", dev, err)
		}
	}
	if _, err := r.ConflictCopy("d/none.txt", "DEV1", testTime); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestVersionNames(t *testing.T) {
	cases := []struct{ base, want string }{
		{"c.txt", "c~20241231-235958.txt"},
		{"Makefile", "Makefile~20241231-235958"},
		{".bashrc", ".bashrc~20241231-235958"},
		{"a.tar.gz", "a.tar~20241231-235958.gz"},
		{"x~20200101-000000", "x~20200101-000000~20241231-235958"},
	}
	for _, c := range cases {
		got := VersionName(c.base, testTime)
		if got != c.want {
			t.Errorf("VersionName(%q) = %q, want %q", c.base, got, c.want)
		}
		orig, when, ok := parseVersionName(got)
		if !ok || orig != c.base || !when.Equal(testTime) {
			t.Errorf("parse %q = %q %v %v", got, orig, when, ok)
		}
	}
	for _, bad := range []string{"c.txt", "c~2024.txt", "c~20241301-000000.txt"} {
		if _, _, ok := parseVersionName(bad); ok {
			t.Errorf("parsed %q as a version", bad)
		}
	}
}

func TestVersionsRetention(t *testing.T) {
	clock := &fakeClock{now: testTime}
	r, dir := openTest(t, Options{VersionsKeep: 3, VersionsDays: 30, Clock: clock.Now})
	st := mustWrite(t, r, "v/f.txt", FileState{}, "0")
	for i := 1; i <= 5; i++ {
		clock.now = clock.now.Add(time.Hour)
		st = mustWrite(t, r, "v/f.txt", st, string(rune('0'+i)))
	}
	vs, _ := r.Versions("v/f.txt")
	if len(vs) != 3 {
		t.Fatalf("kept %d versions, want 3: %v", len(vs), vs)
	}
	for i, want := range []string{"4", "3", "2"} { // newest first
		if got := readFile(t, filepath.Join(dir, vs[i].Path)); got != want {
			t.Errorf("version %d = %q, want %q", i, got, want)
		}
	}
	// Several replacements in one second keep all of them.
	st = mustWrite(t, r, "v/f.txt", st, "a")
	mustWrite(t, r, "v/f.txt", st, "b")
	vs, _ = r.Versions("v/f.txt")
	if len(vs) != 3 || readFile(t, filepath.Join(dir, vs[0].Path)) != "a" || readFile(t, filepath.Join(dir, vs[1].Path)) != "5" {
		t.Fatalf("same-second versions: %v", vs)
	}
	// A deleted file's versions expire by age through PruneVersions, and
	// emptied directories go with them.
	mustWrite(t, r, "old/deep/g", FileState{}, "g")
	gst, _ := r.Stat("old/deep/g")
	if err := r.Remove("old/deep/g", gst); err != nil {
		t.Fatal(err)
	}
	clock.now = clock.now.Add(31 * 24 * time.Hour)
	if err := r.PruneVersions(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"v/f.txt", "old/deep/g"} {
		if vs, _ := r.Versions(recordPath(p)); len(vs) != 0 {
			t.Errorf("%s: %d versions older than 30 days left", p, len(vs))
		}
	}
	if es, _ := os.ReadDir(filepath.Join(dir, versionsDir)); len(es) != 0 {
		t.Fatalf("empty version dirs left: %v", es)
	}
	if f, err := r.OpenVersion(Version{Path: ".blueshift/versions/../../x"}); err == nil {
		f.Close()
		t.Fatal("OpenVersion left the versions folder")
	}
}

func TestStaleTempsRemoved(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	r, dir := openTest(t, Options{Clock: clock.Now})
	stale := filepath.Join(dir, tmpDir, "deadbeef.tmp")
	os.WriteFile(stale, []byte("crash leftover"), 0o600)
	// One-shot temps live in shard folders (tmpShard): a crash leaves them there.
	staleShard := filepath.Join(dir, tmpShard("c0ffee.tmp"), "c0ffee.tmp")
	os.WriteFile(staleShard, []byte("crash leftover"), 0o600)
	tp, err := r.OpenTemp("p", [32]byte{1}, 10)
	if err != nil {
		t.Fatal(err)
	}
	tp.Close()
	r.Close()
	r2, err := Open(dir, Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for _, p := range []string{stale, staleShard} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("one-shot temp %s survived a restart", p)
		}
	}
	if got := tmpEntries(t, dir); len(got) != 2 {
		t.Fatalf("resumable temp not kept across restart: %v", got)
	}
	clock.now = clock.now.Add(8 * 24 * time.Hour)
	if err := r2.PruneTemps(7 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	noTemps(t, dir, "abandoned temps not pruned")
}

func recordPath(s string) record.Path { return record.Path(s) }
