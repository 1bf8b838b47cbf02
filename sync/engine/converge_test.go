package engine

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// TestRandomConvergence runs random edits, renames and deletions on three
// devices while links between them come and go, then connects everyone and
// checks that all converge to one tree and that every content a user did
// not knowingly destroy still exists somewhere: in a file, a conflict copy
// or a versions folder.
func TestRandomConvergence(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { randomConvergence(t, seed) })
	}
}

func randomConvergence(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	key := newKey(t)
	devs := []*device{newDevice(t, "A", key), newDevice(t, "B", key), newDevice(t, "C", key)}
	for i, d := range devs {
		var others []*device
		for j, o := range devs {
			if i != j {
				others = append(others, o)
			}
		}
		d.addShare(others...)
	}
	paths := []string{"a.txt", "b.txt", "d/c.txt", "d/e.txt", "f.bin", "d/sub/g.bin"}
	must := map[[32]byte]string{} // content that must survive -> where it was written
	links := map[[2]int]func(){}
	toggle := func(i, j int) {
		k := [2]int{i, j}
		if cut, ok := links[k]; ok {
			cut()
			delete(links, k)
			return
		}
		links[k] = link(t, devs[i], devs[j])
	}
	// forget removes from the must-survive set what a user overwrites or
	// deletes on purpose: the content its own disk showed at that moment.
	forget := func(d *device, rel string) {
		if b, err := os.ReadFile(filepath.Join(d.dir, rel)); err == nil {
			delete(must, blake3.Sum256(b))
			t.Logf("forget %s %s %x", d.name, rel, blake3.Sum256(b))
		}
	}
	for step := range 60 {
		d := devs[rng.IntN(len(devs))]
		rel := paths[rng.IntN(len(paths))]
		step := step
		switch op := rng.IntN(10); {
		case op < 5: // write new content
			n := 10 + rng.IntN(3000)
			if strings.HasSuffix(rel, ".bin") {
				n = 100_000 + rng.IntN(300_000)
			}
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			forget(d, rel)
			must[blake3.Sum256(data)] = fmt.Sprintf("step %d: %s wrote %s", step, d.name, rel)
			mustWrite(t, filepath.Join(d.dir, rel), data)
			t.Logf("step %d: %s wrote %s (%d bytes, %x)", step, d.name, rel, n, blake3.Sum256(data))
		case op < 7: // delete
			forget(d, rel)
			os.Remove(filepath.Join(d.dir, rel))
			t.Logf("step %d: %s deleted %s", step, d.name, rel)
		case op < 8: // rename to another of the names
			to := paths[rng.IntN(len(paths))]
			if _, err := os.Stat(filepath.Join(d.dir, rel)); err == nil && to != rel {
				forget(d, to)
				os.MkdirAll(filepath.Dir(filepath.Join(d.dir, to)), 0o755)
				os.Rename(filepath.Join(d.dir, rel), filepath.Join(d.dir, to))
				t.Logf("step %d: %s renamed %s to %s", step, d.name, rel, to)
			}
		default: // a link comes or goes
			i := rng.IntN(3)
			j := (i + 1 + rng.IntN(2)) % 3
			toggle(min(i, j), max(i, j))
		}
		d.rescan()
		if rng.IntN(4) == 0 {
			waitScanned(t, d)
		}
	}
	for _, k := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		if _, ok := links[k]; !ok {
			links[k] = link(t, devs[k[0]], devs[k[1]])
		}
	}
	for _, d := range devs {
		d.rescan()
	}
	waitConverged(t, devs...)

	found := map[[32]byte]bool{}
	for _, d := range devs {
		filepath.WalkDir(d.dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || !de.Type().IsRegular() || strings.Contains(p, "/.blueshift/tmp/") {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil {
				found[blake3.Sum256(b)] = true
				t.Logf("%s has %s %x", d.name, p[len(d.dir):], blake3.Sum256(b))
			}
			return nil
		})
	}
	for h, what := range must {
		if !found[h] {
			t.Errorf("content lost: %s", what)
		}
	}
	conflicts := 0
	for _, st := range devs[0].e.Status().Shares {
		conflicts += st.Conflicts
	}
	t.Logf("seed %d: %d contents kept, %d conflict copies made on A", seed, len(must), conflicts)
}
