package engine

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/sync/reflate"
)

// reflateProgram is the Go program the tests build twice; the second build
// has one more line.
const reflateProgram = `package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type config struct {
	Name  string            ` + "`json:\"name\"`" + `
	Tags  []string          ` + "`json:\"tags\"`" + `
	Extra map[string]string ` + "`json:\"extra\"`" + `
}

func main() {
	var c config
	if err := json.NewDecoder(os.Stdin).Decode(&c); err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1)
	}
	//CHANGE
	fmt.Println(strings.ToUpper(c.Name), len(c.Tags), len(c.Extra))
}
`

// buildTwice builds reflateProgram before and after a one-line change, as
// a developer rebuilds in one directory, linked by the Go linker (no cgo)
// or, external, by the host linker as a program with cgo is.
func buildTwice(t *testing.T, external bool) (old, nw []byte) {
	return buildTwiceOf(t, external, reflateProgram)
}

// buildTwiceOf is buildTwice of program.
func buildTwiceOf(t *testing.T, external bool, program string) (old, nw []byte) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build a program with")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module prog\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(src string) []byte {
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "build", "-o", "prog", ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
		if external {
			cmd = exec.Command("go", "build", "-ldflags=-linkmode=external", "-o", "prog", ".")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=", "GOWORK=off")
		}
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			if external {
				t.Skipf("no host linker here: %v: %s", err, out)
			}
			t.Fatalf("go build: %v: %s", err, out)
		}
		data, err := os.ReadFile(filepath.Join(dir, "prog"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	old = build(program)
	nw = build(strings.Replace(program, "//CHANGE", `if c.Name == "" { c.Name = "anonymous" }`, 1))
	if bytes.Equal(old, nw) {
		t.Fatal("the change did not change the program")
	}
	return old, nw
}

// reflatePair is patchPair with a built program: A builds, B follows; both
// offer reflated patches if reflate is set.
func reflatePair(t *testing.T, old []byte, reflate, forge bool) (a, b *device, counts *patchCounts) {
	t.Helper()
	key := newKey(t)
	a, b = newDevice(t, "A", key), newDevice(t, "B", key)
	counts = &patchCounts{}
	if forge {
		counts.forgeReflate = filepath.Join(a.dir, "bin", "prog")
	}
	syncProgram(t, a, b, counts, old, reflate)
	return a, b, counts
}

// TestReflateCarriesRebuiltGoProgram: a Go program rebuilt after a
// one-line change travels as a reflated patch (its DWARF decompressed),
// for far fewer bytes than a patch of the program as it is, measured in
// the same test; the receiver's file is the new build byte for byte. Both
// linkers: the Go linker's sections (compress/zlib) and the host linker's
// (C zlib, in a build with cgo).
func TestReflateCarriesRebuiltGoProgram(t *testing.T) {
	for _, external := range []bool{false, true} {
		name := map[bool]string{false: "go-linker", true: "host-linker"}[external]
		t.Run(name, func(t *testing.T) {
			if external && reflate.Methods()&reflate.Zlib == 0 {
				t.Skip("no zlib of C's in this build: the host linker's sections are not expanded")
			}
			old, nw := buildTwice(t, external)
			sent := make(map[bool]int64)
			for _, reflate := range []bool{false, true} {
				a, b, counts := reflatePair(t, old, reflate, false)
				install(t, a, "bin/prog", nw)
				waitConvergedFor(t, patchDeadline, a, b)
				expectFile(t, b, "bin/prog", nw)
				if reflate && counts.reflates.Load() != 1 {
					t.Fatalf("%d reflated patches served, want 1", counts.reflates.Load())
				}
				if !reflate && (counts.reflates.Load() != 0 || counts.patches.Load() == 0) {
					t.Fatalf("without the capability: %d reflated patches and %d patches served", counts.reflates.Load(), counts.patches.Load())
				}
				sent[reflate] = counts.bytes.Load()
				a.close()
				b.close()
			}
			t.Logf("program of %d bytes rebuilt: patch %d bytes, reflated patch %d bytes (%.3f)", len(nw), sent[false], sent[true], float64(sent[true])/float64(sent[false]))
			if sent[true]*3 > sent[false] {
				t.Fatalf("reflated patch of %d bytes, want under a third of the patch's %d", sent[true], sent[false])
			}
		})
	}
}

// TestReflateForgedFallsBack: a reflated patch that does not give the
// record's blocks writes nothing, and the file comes by plain patches.
func TestReflateForgedFallsBack(t *testing.T) {
	old, nw := buildTwice(t, false)
	a, b, counts := reflatePair(t, old, true, true)
	install(t, a, "bin/prog", nw)
	waitConvergedFor(t, patchDeadline, a, b)
	expectFile(t, b, "bin/prog", nw)
	if counts.reflates.Load() == 0 || counts.patches.Load() == 0 {
		t.Fatalf("%d reflated patches, %d patches served: want the forged one refused and patches after it", counts.reflates.Load(), counts.patches.Load())
	}
	if !strings.Contains(b.logs.String(), "reflated patch gave other bytes") {
		t.Errorf("B did not say it refused the reflated patch")
	}
}

// forgeReflated is a frame of the expansion of the file at path (the
// version asked for) with one byte changed outside its sections: it
// decodes and contracts, and only the block hashes tell it from the file.
func forgeReflated(path string) []byte {
	file, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	x, _, err := expand(file, reflate.Methods())
	if err != nil || len(x) < 200 {
		return nil
	}
	x[150] ^= 0xFF // in the program headers
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	return enc.EncodeAll(x, nil)
}

// TestReflateBothWays: two devices that each rebuilt a program pull the
// other's at once, each as a reflated patch: neither's pull holds the slot
// the other's request must be served in. Each device holds the request it
// serves until both have come, so both pulls are under way.
func TestReflateBothWays(t *testing.T) {
	old, nw := buildTwice(t, false)
	otherOld, otherNew := buildTwiceOf(t, false, strings.Replace(reflateProgram, "strings.ToUpper", "strings.ToLower", 1))
	a, b, counts := reflatePair(t, old, true, false)
	both := newBarrier(2)
	counts.both = both
	bCounts := &patchCounts{both: both}
	b.wrap = func(h conn.Handler) conn.Handler { return patchCounter{h, bCounts} }
	b.restart()
	link(t, a, b)
	install(t, b, "bin/other", otherOld)
	waitConverged(t, a, b)
	waitCond(t, "B keeping its build", func() bool {
		ents, _ := os.ReadDir(filepath.Join(b.dir, basisDir))
		return len(ents) == 1
	})
	installBoth := make(chan struct{})
	go func() {
		defer close(installBoth)
		install(t, b, "bin/other", otherNew)
	}()
	install(t, a, "bin/prog", nw)
	<-installBoth
	waitConvergedFor(t, patchDeadline, a, b)
	expectFile(t, b, "bin/prog", nw)
	expectFile(t, a, "bin/other", otherNew)
	if counts.reflates.Load() != 1 || bCounts.reflates.Load() != 1 {
		t.Fatalf("A served %d and B %d reflated patches, want one each", counts.reflates.Load(), bCounts.reflates.Load())
	}
	for _, d := range []*device{a, b} {
		if strings.Contains(d.logs.String(), "reflated patch not had") {
			t.Errorf("%s fell back from a reflated patch:\n%s", d.name, d.logs.String())
		}
	}
}
