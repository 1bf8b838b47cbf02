package index

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestShareLocateStaysInItsShare: the same block in files of two shares of
// one database is found in both by DB.Locate (a local pull may use any
// copy) and, by Share.Locate, only in the share asked about (what a member
// of that share may be served).
func TestShareLocateStaysInItsShare(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	content := []byte("the same content in two shares, and in A only a second time")
	only := []byte("a block of B alone")
	var shares []*Share
	for i, files := range []map[string][]byte{
		{"a.txt": content, "again.txt": content},
		{"b.txt": content, "only-b.txt": only},
	} {
		root := t.TempDir()
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sh, err := db.Share(testKey(t, byte(10+i)), root, 0xA1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sh.Scan(context.Background(), ScanOptions{}); err != nil {
			t.Fatal(err)
		}
		shares = append(shares, sh)
	}
	a, b := shares[0], shares[1]
	h := blockHash(content)
	all, err := db.Locate(h)
	if err != nil || len(all) != 3 {
		t.Fatalf("DB.Locate: %d copies (%v), want 3", len(all), err)
	}
	for _, tc := range []struct {
		sh    *Share
		data  []byte
		paths []string
	}{
		{a, content, []string{"a.txt", "again.txt"}},
		{b, content, []string{"b.txt"}},
		{a, only, nil},
		{b, only, []string{"only-b.txt"}},
	} {
		locs, err := tc.sh.Locate(blockHash(tc.data))
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, l := range locs {
			if l.Share != tc.sh.Key().ID() {
				t.Errorf("Locate in share %s returned a copy in share %s", tc.sh.Key().ID().Short(), l.Share.Short())
			}
			paths = append(paths, string(l.Path))
		}
		slices.Sort(paths)
		if !slices.Equal(paths, tc.paths) {
			t.Errorf("Locate %q in share %s: %v, want %v", tc.data[:8], tc.sh.Key().ID().Short(), paths, tc.paths)
		}
	}
}
