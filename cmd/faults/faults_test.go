package main

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// The suite's checks must be able to fail: each test below feeds one a
// state that breaks its rule and one that keeps it.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testScenario(t *testing.T) *scenario {
	return newScenario("test", "", quickTier(), "", t.TempDir(), 1)
}

func TestCheckRealFindsPartialAndUnknownFiles(t *testing.T) {
	cases := []struct {
		name  string
		files map[string][]byte // on the receiver
		fails bool
	}{
		{"absent", map[string][]byte{}, false},
		{"complete", map[string][]byte{"r/a.bin": []byte("whole content")}, false},
		{"partial", map[string][]byte{"r/a.bin": []byte("whole")}, true},
		{"unknown name", map[string][]byte{"r/a.bin.part": []byte("whole content")}, true},
		{"metadata folder skipped", map[string][]byte{".blueshift/tmp/x.part": []byte("whole")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testScenario(t)
			dir := t.TempDir()
			for p, b := range c.files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			k := &killRun{s: s, b: &device{dir: dir}, known: map[string]string{"r/a.bin": hashBytes([]byte("whole content"))}}
			k.checkReal("test")
			if got := len(s.failures) > 0; got != c.fails {
				t.Fatalf("failed = %v, want %v (%v)", got, c.fails, s.failures)
			}
		})
	}
}

func TestLiesAboutNeededItems(t *testing.T) {
	st := func(inSync bool, need int64) status {
		return status{Shares: []shareStatus{{Path: "/x", InSync: inSync, NeedItems: need}}}
	}
	cases := []struct {
		st      status
		missing int
		lie     bool
	}{
		{st(false, 3), 3, false},
		{st(false, 0), 3, true},
		{st(true, 3), 3, true},
		{st(false, 1), 3, true},
		{st(true, 0), 0, false},
	}
	for i, c := range cases {
		if got := lies(c.st, "/x", c.missing) != ""; got != c.lie {
			t.Errorf("case %d: lie = %v, want %v", i, got, c.lie)
		}
	}
}

func TestKnowsNeeds(t *testing.T) {
	share := func(sh shareStatus) status { sh.Path = "/x"; return status{Shares: []shareStatus{sh}} }
	if knowsNeeds(share(shareStatus{}), "/x") {
		t.Error("a share that counted nothing yet and is not in sync has not compared")
	}
	for i, sh := range []shareStatus{{NeedItems: 1}, {InSync: true}, {Errors: []string{"disk full"}}} {
		if !knowsNeeds(share(sh), "/x") {
			t.Errorf("case %d: %+v has compared", i, sh)
		}
	}
	if knowsNeeds(share(shareStatus{NeedItems: 1}), "/y") {
		t.Error("another share's counts say nothing of /y")
	}
}

func TestFindEscapes(t *testing.T) {
	work := t.TempDir()
	share := filepath.Join(work, "alice", "open")
	os.MkdirAll(filepath.Join(share, ".blueshift"), 0o755)
	os.WriteFile(filepath.Join(share, escapeName+"-inside"), nil, 0o644) // a file inside the share is allowed
	if got := findEscapes(work, share); len(got) != 0 {
		t.Fatalf("inside the share: %v", got)
	}
	os.WriteFile(filepath.Join(work, escapeName+"-1"), nil, 0o644)
	os.WriteFile(filepath.Join(share, ".blueshift", escapeName+"-2"), nil, 0o644)
	if got := findEscapes(work, share); len(got) != 2 {
		t.Fatalf("found %v, want the two escapes", got)
	}
}

func TestSnapshotSeesContent(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644)
	snap, err := snapshot(dir)
	if err != nil || snap["a"].hash != hashBytes([]byte("x")) || snap["a"].size != 1 {
		t.Fatalf("snapshot %v, %v", snap, err)
	}
}
