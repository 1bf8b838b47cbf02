package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckSharePath(t *testing.T) {
	work := t.TempDir()
	home := filepath.Join(work, "home")
	for _, d := range []string{home, filepath.Join(home, "db"), filepath.Join(work, "photos"), filepath.Join(work, "home-sibling")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(home, filepath.Join(work, "home-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(work, filepath.Join(work, "photos", "up")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		ok   bool
	}{
		{filepath.Join(work, "photos"), true},
		{filepath.Join(work, "photos", "not-yet"), true}, // join creates it
		{filepath.Join(work, "home-sibling"), true},      // a prefix of the name is not "inside"
		{"/", false},
		{home, false},
		{home + "/", false},
		{filepath.Join(home, "db"), false},
		{filepath.Join(home, "new", "deeper"), false},
		{filepath.Join(work, "home-link"), false},
		{filepath.Join(work, "home-link", "x"), false},
		{work, false},
		{filepath.Join(work, "photos", "up"), false}, // a symlink to a folder holding the home
		{filepath.Join(home, ".."), false},
	}
	for _, c := range cases {
		err := CheckSharePath(home, c.path)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrUnsafeShare)) {
			t.Errorf("CheckSharePath(%q) = %v; want ok %v", c.path, err, c.ok)
		}
	}
}
