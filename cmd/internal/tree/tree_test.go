package tree

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestCompareTrees(t *testing.T) {
	mk := func() string {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "x", ".stfolder"), 0o755)
		os.WriteFile(filepath.Join(d, "x", "a"), []byte("hello"), 0o644)
		return d
	}
	cases := []struct {
		name   string
		mutate func(d string)
		same   bool
	}{
		{"identical", func(string) {}, true},
		{"tool folder ignored", func(d string) { os.WriteFile(filepath.Join(d, "x", ".stfolder", "m"), nil, 0o644) }, true},
		{"content", func(d string) { os.WriteFile(filepath.Join(d, "x", "a"), []byte("hellO"), 0o644) }, false},
		{"size", func(d string) { os.WriteFile(filepath.Join(d, "x", "a"), []byte("hello!"), 0o644) }, false},
		{"mode", func(d string) { os.Chmod(filepath.Join(d, "x", "a"), 0o600) }, false},
		{"extra", func(d string) { os.WriteFile(filepath.Join(d, "b"), nil, 0o644) }, false},
		{"missing", func(d string) { os.Remove(filepath.Join(d, "x", "a")) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := mk(), mk()
			c.mutate(b)
			err := Compare(a, b)
			if c.same && err != nil {
				t.Fatal(err)
			}
			if !c.same && !errors.Is(err, ErrDiffer) {
				t.Fatalf("want ErrDiffer, got %v", err)
			}
		})
	}
	_ = fs.ModePerm
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
