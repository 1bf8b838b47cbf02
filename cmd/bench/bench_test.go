package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// treeHash hashes names, modes and contents, for determinism checks.
func treeHash(t *testing.T, root string) string {
	t.Helper()
	l, err := listTree(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := range l {
		names = append(names, p)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, p := range names {
		fmt.Fprintf(h, "%s %v %d\n", p, l[p].mode, l[p].size)
		if l[p].mode.IsRegular() {
			b, _ := os.ReadFile(filepath.Join(root, p))
			h.Write(b)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestCorpusIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := genSmall(d, 1, smallSpec{200, 1 << 10, 8 << 10}); err != nil {
			t.Fatal(err)
		}
		if err := genMixed(d, 1, 1, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if treeHash(t, a) != treeHash(t, b) {
		t.Fatal("same seed gave different trees")
	}
	c := t.TempDir()
	if _, err := genSmall(c, 2, smallSpec{200, 1 << 10, 8 << 10}); err != nil {
		t.Fatal(err)
	}
	if err := compareTrees(a, c); err == nil {
		t.Fatal("different seeds gave identical trees")
	}
}

func TestEditsChangeWhatTheySay(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := genRandomFile(p, 1, 0, 64<<10); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(p)
	if err := insertAt(p, 1, 4096, 1); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if len(got) != len(orig)+1 || string(got[:4096]) != string(orig[:4096]) || string(got[4097:]) != string(orig[4096:]) {
		t.Fatal("insert did not shift the tail by one byte")
	}
	if err := overwriteAt(p, 1, 100, 4096); err != nil {
		t.Fatal(err)
	}
	if err := appendTo(p, 1, 1000); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Size() != int64(len(orig))+1+1000 {
		t.Fatalf("size after append = %d", st.Size())
	}
}

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
			err := compareTrees(a, b)
			if c.same && err != nil {
				t.Fatal(err)
			}
			if !c.same && !errors.Is(err, errTreesDiffer) {
				t.Fatalf("want errTreesDiffer, got %v", err)
			}
		})
	}
	_ = fs.ModePerm
}

func TestRatiosArePairedPerRun(t *testing.T) {
	res := results{rows: []row{
		{"s", "c", "blueshift", 0, "wall_s", 1}, {"s", "c", "rsync", 0, "wall_s", 2},
		{"s", "c", "blueshift", 1, "wall_s", 4}, {"s", "c", "rsync", 1, "wall_s", 4},
		{"s", "c", "blueshift", 2, "wall_s", 3}, // no partner: left out
	}}
	if got := res.ratio("s", "c", "blueshift", "rsync", "wall_s"); got != 0.75 {
		t.Fatalf("ratio = %v, want median(0.5, 1) = 0.75", got)
	}
	if got := res.med("s", "c", "blueshift", "wall_s"); got != 3 {
		t.Fatalf("median = %v", got)
	}
	if !math.IsNaN(res.ratio("s", "c", "blueshift", "syncthing", "wall_s")) {
		t.Fatal("ratio without partner should be NaN")
	}
	if p := percentile([]float64{5, 1, 2, 3, 4}, 0.99); p != 5 {
		t.Fatalf("p99 = %v", p)
	}
}

func TestParseNftCounters(t *testing.T) {
	in, out, err := parseNftCounters(`{"nftables":[{"metainfo":{}},{"rule":{"chain":"in","expr":[{"match":{}},{"counter":{"packets":2,"bytes":100}},{"accept":null}]}},{"rule":{"chain":"out","expr":[{"counter":{"packets":1,"bytes":40}}]}}]}`)
	if err != nil || in != 100 || out != 40 {
		t.Fatalf("got %d %d %v", in, out, err)
	}
	if _, _, err := parseNftCounters("{"); err == nil {
		t.Fatal("bad JSON accepted")
	}
}
