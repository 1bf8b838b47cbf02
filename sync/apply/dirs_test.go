package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/blueshift-sync/blueshift/index/record"
)

// stageAndInstall runs one engine-shaped batch: Stage all, Sync, Install
// all, Sync. It returns each Install's error.
func stageAndInstall(t *testing.T, r *Root, paths ...record.Path) []error {
	t.Helper()
	ctx := context.Background()
	staged := make([]*Staged, len(paths))
	errs := make([]error, len(paths))
	for i, p := range paths {
		staged[i], errs[i] = r.Stage(ctx, p, Meta{Mode: 0o644}, content([]byte("data "+p)))
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	for i, s := range staged {
		if s != nil {
			_, errs[i] = s.Install(ctx, FileState{})
		}
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	return errs
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("something landed in %s: %v", dir, es)
	}
}

// A directory the cache holds is replaced by a symlink to outside between two
// batches: the next batch, every call, is refused and writes nothing there.
func TestCachedDirReplacedBySymlinkBetweenBatches(t *testing.T) {
	r, dir := openTest(t, Options{})
	outside := t.TempDir()
	for _, err := range stageAndInstall(t, r, "a/b/one", "a/two") {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, swap := range []string{"a/b", "a"} {
		t.Run(swap, func(t *testing.T) {
			if err := os.Rename(filepath.Join(dir, swap), filepath.Join(t.TempDir(), "moved")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(dir, swap)); err != nil {
				t.Fatal(err)
			}
			for _, err := range stageAndInstall(t, r, "a/b/three", "a/b/c/four") {
				if !errors.Is(err, ErrUnsafePath) {
					t.Errorf("install through symlinked %q: %v, want ErrUnsafePath", swap, err)
				}
			}
			if _, err := r.WriteFile(context.Background(), "a/b/five", FileState{}, Meta{Mode: 0o644}, content([]byte("x"))); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("WriteFile: %v, want ErrUnsafePath", err)
			}
			if _, err := r.Stat("a/b/one"); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Stat: %v, want ErrUnsafePath", err)
			}
			emptyDir(t, outside)
			// Put a real directory back for the next case.
			os.Remove(filepath.Join(dir, swap))
			if errs := stageAndInstall(t, r, "a/b/one"); errs[0] != nil {
				t.Fatal(errs[0])
			}
		})
	}
	noTemps(t, dir, "at the end")
}

// Within one batch, after an Install cached the parent, the user swaps it for
// a symlink: the remaining Installs are refused.
func TestCachedDirReplacedMidBatch(t *testing.T) {
	r, dir := openTest(t, Options{})
	outside := t.TempDir()
	ctx := context.Background()
	var staged []*Staged
	for _, p := range []record.Path{"d/1", "d/2", "d/e/3"} {
		s, err := r.Stage(ctx, p, Meta{Mode: 0o644}, content([]byte("x")))
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, s)
	}
	r.Sync()
	if _, err := staged[0].Install(ctx, FileState{}); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(dir, "d"), filepath.Join(t.TempDir(), "gone"))
	if err := os.Symlink(outside, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	for _, s := range staged[1:] {
		if _, err := s.Install(ctx, FileState{}); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("install %q: %v, want ErrUnsafePath", s.p, err)
		}
	}
	emptyDir(t, outside)
}

// The user deletes a cached parent mid-batch: the next Install makes it again
// (as a first write would) and nothing is written into the deleted one.
func TestCachedParentDeletedMidBatch(t *testing.T) {
	r, dir := openTest(t, Options{})
	ctx := context.Background()
	var staged []*Staged
	for _, p := range []record.Path{"p/q/1", "p/q/2"} {
		s, err := r.Stage(ctx, p, Meta{Mode: 0o644}, content([]byte(p)))
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, s)
	}
	r.Sync()
	if _, err := staged[0].Install(ctx, FileState{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "p")); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Stat("p/q/1"); err != nil || st.Exists {
		t.Fatalf("stat of a deleted file: %v, %v", st, err)
	}
	st, err := staged[1].Install(ctx, FileState{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "p/q/2")); got != "p/q/2" {
		t.Fatalf("content %q", got)
	}
	if now, _ := r.Stat("p/q/2"); !now.Matches(st) {
		t.Fatalf("state %v, returned %v", now, st)
	}
	// A deleted parent that is not recreated: Stat says missing, no error.
	os.RemoveAll(filepath.Join(dir, "p"))
	if err := os.WriteFile(filepath.Join(dir, "p"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Stat("p/q/2"); err != nil || st.Exists {
		t.Fatalf("stat below a file: %v, %v", st, err)
	}
	if errs := stageAndInstall(t, r, "p/q/3"); !errors.Is(errs[0], ErrChanged) {
		t.Fatalf("install below a file: %v, want ErrChanged", errs[0])
	}
}

// Case collisions are still caught once the directories are cached: a new
// spelling of a cached directory, and a name the user added after the
// directory was listed.
func TestCaseCollisionThroughCache(t *testing.T) {
	r, dir := openTest(t, Options{})
	r.caseFold = true // ext4/tmpfs are case-sensitive: force the logic
	if errs := stageAndInstall(t, r, "Docs/a.txt", "Docs/b.txt"); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if err := os.WriteFile(filepath.Join(dir, "Docs", "User.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []record.Path{"DOCS/c.txt", "Docs/A.TXT", "Docs/user.txt"} {
		if errs := stageAndInstall(t, r, p); !errors.Is(errs[0], ErrUnsafePath) {
			t.Errorf("install %q: %v, want ErrUnsafePath", p, errs[0])
		}
		if _, err := r.Stat(p); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("stat %q: %v, want ErrUnsafePath", p, err)
		}
	}
	if errs := stageAndInstall(t, r, "Docs/c.txt"); errs[0] != nil {
		t.Fatal(errs[0])
	}
	noTemps(t, dir, "at the end")
}

// The metadata folder stays out of reach with a warm cache (it holds
// .blueshift/tmp and versions).
func TestMetaDirRefusedWithWarmCache(t *testing.T) {
	r, dir := openTest(t, Options{})
	stageAndInstall(t, r, "x", "sub/y")
	mustWrite(t, r, "x", mustStat(t, r, "x"), "again") // caches the versions folder
	for _, p := range []record.Path{".blueshift/tmp/z", ".blueshift/versions/x", ".BLUESHIFT/z", "sub/.blueshift/z"} {
		if _, err := r.Stage(context.Background(), p, Meta{Mode: 0o644}, content(nil)); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("stage %q: %v", p, err)
		}
		if _, err := r.Stat(p); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("stat %q: %v", p, err)
		}
	}
	noTemps(t, dir, "at the end")
}

// The cache stays bounded and Close releases every descriptor it opened.
func TestDirCacheBoundedAndClosed(t *testing.T) {
	before := openFDs(t)
	dir := t.TempDir()
	r, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var paths []record.Path
	for i := range maxCachedDirs + 50 {
		paths = append(paths, record.Path(fmt.Sprintf("d%d/f", i)))
	}
	for _, err := range stageAndInstall(t, r, paths...) {
		if err != nil {
			t.Fatal(err)
		}
	}
	r.dirs.mu.Lock()
	n := len(r.dirs.byPath)
	r.dirs.mu.Unlock()
	if n > maxCachedDirs {
		t.Fatalf("%d directories cached, bound %d", n, maxCachedDirs)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after > before {
		t.Fatalf("%d descriptors open after Close, %d before", after, before)
	}
}

func mustStat(t *testing.T, r *Root, p record.Path) FileState {
	t.Helper()
	st, err := r.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(es)
}

// stateOfStat must agree with os.Lstat, which the scanner uses.
func TestStatMatchesLstat(t *testing.T) {
	r, dir := openTest(t, Options{})
	os.WriteFile(filepath.Join(dir, "f"), []byte("abc"), 0o640)
	os.Mkdir(filepath.Join(dir, "d"), 0o1755)
	os.Chmod(filepath.Join(dir, "d"), 0o1755)
	os.Symlink("f", filepath.Join(dir, "l"))
	for _, name := range []string{"f", "d", "l"} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got := mustStat(t, r, record.Path(name))
		if want := stateOf(fi); got != want {
			t.Errorf("%s: Stat %v, Lstat %v", name, got, want)
		}
	}
}
