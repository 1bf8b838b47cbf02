package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 18's rows are in RESULTS.md's targets, each with its verdict, in a
// quick run too (1 -> 8 measured with multicast even where the unicast
// swarm is measured to 4 only); a row that was not measured says so.
func TestMulticastTargetsEveryRow(t *testing.T) {
	cfg := quickConfig()
	var rows []row
	add := func(cas, tool, metric string, v float64) {
		rows = append(rows, row{scFanout, cas, tool, 0, metric, v})
	}
	add(fanoutCase(4, ", random data"), "blueshift", "seeder_up_bytes", 150)
	add(fanoutCase(4, ", random data"), "blueshift", "wire_bytes", 400)
	add(fanoutCase(4, ", random data"), "blueshift", "seeder_up_x", 1.5)
	add(mcCase(4, mcClean), toolMulticast, "seeder_up_bytes", 107)
	add(mcCase(4, mcClean), toolMulticast, "wire_bytes", 108)
	add(mcCase(4, mcClean), toolMulticast, "seeder_up_x", 1.07)
	add(mcCase(4, mcClean), toolMulticast, "others_done_s", 2)
	add(mcCase(8, mcClean), toolMulticast, "seeder_up_x", 1.2)
	add(mcCase(4, mcLoss), toolMulticast, "wall_s", 1.5)
	add(mcCase(4, mcLoss), toolMulticast, "lossy_x", 1.25)
	add(mcCase(4, mcLoss), toolMulticast, "others_done_s", 3)
	md := markdown(cfg, nil, results{rows: rows}, []string{"blueshift", toolMulticast}, nil, nil, "n", "", "c", harness{total: time.Minute})
	for _, want := range []string{
		"| 5 swarm 1 -> 4, random data: seeder upload / data size | 1.500 | 1.5 | met |",
		"| 5 LAN multicast 1 -> 4, random data: seeder upload / data size | 1.070 | 1.1 | met |",
		"| 5 LAN multicast 1 -> 4, random data: bytes on every link / unicast swarm's | 0.270 | 1 | met |",
		"| 5 LAN multicast 1 -> 8, random data: seeder upload / data size | 1.200 | 1.15 | MISSED |",
		"| 5 LAN multicast 1 -> 4, 1% loss on one receiver's link: its completion time / the others' | 1.250 | 1.5 | met |",
		"| 5 LAN multicast 1 -> 4, 1% loss on one receiver's link: the others' completion time / without loss | 1.500 | 1.2 | MISSED |",
		"| 5 LAN multicast 1 -> 4, a stranger forging datagrams: forged datagrams taken (sync completes) | - | 0 | not measured |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
	if want := "| " + mcCase(4, mcLoss) + " | " + toolMulticast + " | 1 | 1.500 | - | - | - | others_done_s 3.000, lossy_x 1.250 |"; !strings.Contains(md, want) {
		t.Errorf("RESULTS.md's scenario 5 table lacks %q:\n%s", want, md)
	}
	if strings.Contains(md, "1 -> 8, random data: bytes on every link / unicast swarm's") {
		t.Error("the ratio to a unicast swarm to 8 that the quick run does not measure is a target row")
	}
	rows = append(rows, row{scFanout, mcCase(4, mcStranger), toolMulticast, 0, "forged_taken", 0})
	md = markdown(cfg, nil, results{rows: rows}, []string{"blueshift", toolMulticast}, nil, nil, "n", "", "c", harness{total: time.Minute})
	if want := "| 5 LAN multicast 1 -> 4, a stranger forging datagrams: forged datagrams taken (sync completes) | 0.000 | 0 | met |"; !strings.Contains(md, want) {
		t.Errorf("RESULTS.md lacks %q", want)
	}
}

// A receiver is done when every file of the corpus is there at its size.
func TestHoldsAll(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, f := range []struct {
		dir, rel, data string
	}{{src, "a.bin", "12345"}, {src, "sub/b.bin", "xy"}, {dst, "a.bin", "12345"}, {dst, "sub/b.bin", "x"}} {
		p := filepath.Join(f.dir, f.rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := fileSizes(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 || want[filepath.Join("sub", "b.bin")] != 2 {
		t.Fatalf("fileSizes = %v", want)
	}
	if holdsAll(dst, want) {
		t.Error("a short file counted as arrived")
	}
	if err := os.WriteFile(filepath.Join(dst, "sub", "b.bin"), []byte("xy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !holdsAll(dst, want) {
		t.Error("every file there at its size, not counted as arrived")
	}
}
