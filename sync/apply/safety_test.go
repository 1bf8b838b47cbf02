package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blueshift-sync/blueshift/index/record"
)

func TestTraversalRefused(t *testing.T) {
	r, dir := openTest(t, Options{})
	outside := t.TempDir()
	// A share holding links to outside and to inside: a path through either is refused.
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "real"), 0o755)
	if err := os.Symlink("real", filepath.Join(dir, "inlink")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path record.Path
		want error
	}{
		{"../x", ErrOutsideShare},
		{"/etc/x", ErrOutsideShare},
		{"a/../../x", ErrOutsideShare},
		{"a/..", ErrOutsideShare},
		{"", ErrUnsafePath},
		{"a//b", ErrUnsafePath},
		{"a/./b", ErrUnsafePath},
		{"a/", ErrUnsafePath},
		{"x\x00y", ErrUnsafePath},
		{"bad\xffutf8", ErrUnsafePath},
		{".blueshift/tmp/x", ErrUnsafePath},
		{".blueshift", ErrUnsafePath},
		{"sub/.BlueShift/x", ErrUnsafePath},
		{"link/file", ErrUnsafePath},
		{"link/deeper/file", ErrUnsafePath},
		{"inlink/file", ErrUnsafePath},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(string(c.path), func(t *testing.T) {
			ops := map[string]error{}
			_, ops["WriteFile"] = r.WriteFile(ctx, c.path, FileState{}, Meta{Mode: 0o644}, content([]byte("evil")))
			_, ops["Mkdir"] = r.Mkdir(c.path, Meta{Mode: 0o755})
			_, ops["MkdirNoSync"] = r.MkdirNoSync(c.path, Meta{Mode: 0o755})
			_, ops["Symlink"] = r.Symlink(c.path, "/etc/passwd", FileState{})
			ops["Remove"] = r.Remove(c.path, FileState{Exists: true})
			ops["SetMeta"] = r.SetMeta(c.path, Meta{Mode: 0o777})
			_, ops["SetAttrs"] = r.SetAttrs(c.path, FileState{Exists: true}, Meta{Mode: 0o777})
			_, ops["Stat"] = r.Stat(c.path)
			_, ops["Open"] = r.Open(c.path)
			_, ops["OpenTemp"] = r.OpenTemp(c.path, [32]byte{}, 4)
			_, ops["ConflictCopy"] = r.ConflictCopy(c.path, "DEV", testTime)
			for op, err := range ops {
				if !errors.Is(err, c.want) {
					t.Errorf("%s: got %v, want %v", op, err, c.want)
				}
			}
		})
	}
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Fatalf("something landed outside the share: %v", es)
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "real")); len(es) != 0 {
		t.Fatalf("something was written through the inside link: %v", es)
	}
	noTemps(t, dir, "at the end")
}

// A peer sends a symlink and then a file below it: the second is refused.
func TestSymlinkThenFileBelowRefused(t *testing.T) {
	r, dir := openTest(t, Options{})
	outside := t.TempDir()
	if _, err := r.Symlink("d", outside, FileState{}); err != nil {
		t.Fatal(err)
	}
	_, err := r.WriteFile(context.Background(), "d/x", FileState{}, Meta{Mode: 0o644}, content([]byte("evil")))
	if !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("got %v", err)
	}
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Fatalf("wrote outside: %v", es)
	}
	_ = dir
}

func TestCaseOnlyCollisions(t *testing.T) {
	r, dir := openTest(t, Options{})
	r.caseFold = true // ext4/tmpfs are case-sensitive: force the logic
	mustWrite(t, r, "Docs/Readme.txt", FileState{}, "x")
	for _, p := range []record.Path{"Docs/README.txt", "docs/Readme.txt", "DOCS/new.txt"} {
		if _, err := r.WriteFile(context.Background(), p, FileState{}, Meta{Mode: 0o644}, content([]byte("y"))); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%q: got %v, want ErrUnsafePath", p, err)
		}
		if _, err := r.Mkdir(p, Meta{Mode: 0o755}); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("mkdir %q: got %v, want ErrUnsafePath", p, err)
		}
		if _, err := r.MkdirNoSync(p, Meta{Mode: 0o755}); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("mkdir (no sync) %q: got %v, want ErrUnsafePath", p, err)
		}
	}
	// Same spelling still works, and so do new names.
	st, _ := r.Stat("Docs/Readme.txt")
	mustWrite(t, r, "Docs/Readme.txt", st, "z")
	mustWrite(t, r, "Docs/other.txt", FileState{}, "z")
	if got := readFile(t, filepath.Join(dir, "Docs", "Readme.txt")); got != "z" {
		t.Fatalf("content %q", got)
	}
}
