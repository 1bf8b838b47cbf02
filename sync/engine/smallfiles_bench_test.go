package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"
)

// BenchmarkSmallFiles measures the first sync of 20,000 small files (1-64
// KiB, log-uniform, over ~300 directories: the corpus of `make bench`
// scenario 1) between two engines on loopback, from the sender's scan to
// both devices in sync on the same root (contents compared after, untimed).
// Beside it, in the same run, plain `rsync -a` pushes the same tree to an
// rsync daemon on 127.0.0.1 (issue 14's baseline: wall time <= 1.0x,
// CPU <= 2x): x-rsync is our wall time over rsync's, cpu/rsync our CPU
// (both engines: this process) over rsync's (client, daemon and children).
//
//	go test ./sync/engine -run '^$' -bench SmallFiles -benchtime=1x
//
// SMALLFILES_CPUPROFILE=FILE writes a CPU profile of the timed part alone
// (-cpuprofile covers writing the trees too); SMALLFILES_PROGRESS=1 prints
// both devices' status twice a second to stderr. peak-rss-MB is the
// process's (both engines') peak RSS over the timed part, peak-live-MB its
// peak live heap after a GC; SMALLFILES_HEAPPROFILE=FILE writes the heap
// profile taken at that peak. SMALLFILES_LAN=1 links the engines as peers
// on a LAN (conn.Options.CompressLoopback), as cmd/bench's daemons in their
// namespaces are.
func BenchmarkSmallFiles(b *testing.B) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for b.Loop() {
		b.StopTimer()
		// As two daemons on a LAN, not on this machine: blocks go into the
		// compressed stream too, whose level then follows the link.
		lan := os.Getenv("SMALLFILES_LAN") != ""
		a, bb := newPair(b, func(d *device) { d.compress = lan })
		total := writeSmallTree(b, a.dir, n)
		rs := newRsync(b)
		writeSmallTree(b, rs.src, n)
		syncAll(b)
		// As files not written the instant before their scan: a scan's
		// proof of them then counts (see index.proofs).
		time.Sleep(1100 * time.Millisecond)
		b.SetBytes(total)
		b.StartTimer()
		stopProfile := profileFrom(b, os.Getenv("SMALLFILES_CPUPROFILE"))
		peak := watchPeak(os.Getenv("SMALLFILES_HEAPPROFILE"))
		start, cpu0 := time.Now(), processCPU()
		a.rescan()
		link(b, a, bb)
		waitRootsInSync(b, 5*time.Minute, a, bb)
		took, cpu := time.Since(start), processCPU()-cpu0
		stopProfile()
		b.StopTimer()
		peak.end(b)
		waitConvergedFor(b, time.Minute, a, bb) // contents compared outside the timed part
		a.close()
		bb.close()
		syncAll(b) // our writes reach the disk before rsync's run starts
		rtook, rcpu := rs.pushTimed(b)
		b.ReportMetric(took.Seconds(), "s")
		b.ReportMetric(rtook.Seconds(), "rsync-s")
		b.ReportMetric(took.Seconds()/rtook.Seconds(), "x-rsync")
		b.ReportMetric(float64(n)/took.Seconds(), "files/s")
		if cpu > 0 && rcpu > 0 {
			b.ReportMetric(cpu.Seconds(), "cpu-s")
			b.ReportMetric(rcpu.Seconds(), "rsync-cpu-s")
			b.ReportMetric(cpu.Seconds()/rcpu.Seconds(), "cpu/rsync")
		}
		b.StartTimer()
	}
}

// writeSmallTree writes n files of 1-64 KiB (log-uniform, the same every
// run) of random bytes under dir, as cmd/bench's corpus spreads them, and
// returns their total size.
func writeSmallTree(t testing.TB, dir string, n int) int64 {
	t.Helper()
	lmin, lmax := math.Log(1<<10), math.Log(64<<10)
	var total int64
	for i := range n {
		r := rand.New(rand.NewPCG(uint64(i), 14))
		size := int(math.Exp(lmin + r.Float64()*(lmax-lmin)))
		d := fmt.Sprintf("d%02d/s%02d", r.IntN(16), r.IntN(16))
		if r.IntN(4) == 0 {
			d = fmt.Sprintf("%s/t%d", d, r.IntN(8))
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		mustWrite(t, filepath.Join(dir, d, fmt.Sprintf("f%07d.bin", i)), data)
		total += int64(size)
	}
	return total
}

// profileFrom writes a CPU profile of the timed part to file, if named
// (-cpuprofile covers the untimed setup too); the returned func stops it.
func profileFrom(t testing.TB, file string) func() {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// syncAll flushes the file systems (sync(1)), so one phase's writeback
// does not slow the next one's measure.
func syncAll(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
}

// waitRootsInSync waits until every device reports in sync on the same
// root: cheap to poll, unlike comparing contents.
func waitRootsInSync(t testing.TB, limit time.Duration, ds ...*device) {
	t.Helper()
	start, last := time.Now(), time.Now()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if os.Getenv("SMALLFILES_PROGRESS") != "" && time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			for _, d := range ds {
				st := d.e.Status().Shares[0]
				fmt.Fprintf(os.Stderr, "%.1fs %s: records %d need %d in %d out %d\n", time.Since(start).Seconds(), d.name, st.Records, st.NeedItems, st.BytesIn, st.BytesOut)
			}
		}
		ok, root := true, ""
		for i, d := range ds {
			st := d.e.Status()
			if len(st.Shares) != 1 || !st.Shares[0].InSync || st.Shares[0].Records == 0 || (i > 0 && st.Shares[0].Root != root) {
				ok = false
				break
			}
			root = st.Shares[0].Root
		}
		if ok {
			return
		}
	}
	t.Fatalf("devices did not converge within %s", limit)
}
