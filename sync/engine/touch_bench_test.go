package engine

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTouch measures a metadata-only change of every file of a share:
// `touch` (and `chmod` of every other file) on the sender, with the content
// unchanged. It reports the bytes on the wire per touched file (both
// directions, TLS included), the files the receiver rewrote (inodes that
// changed) and the versions it kept, what both index databases wrote to
// their tables (flushes and compactions), and the time from the sender's rescan
// to both devices agreeing, as a ratio of the first sync's time measured in
// the same run (the sender's scan to agreement, likewise).
// Beside it, in the same run and on the same file system, the floor of
// that ratio (touchFloor): floor-touch/first is the least a design that
// keeps this index's entries could reach, floor-least-touch/first the least
// for any index.
//
// The devices sign in batches, as daemons do (BLUESHIFT_TOUCH_BATCHSIG=0:
// one signature per record). The documented figure is at 100,000 files of
// 1 KiB; BLUESHIFT_TOUCH_FILES sets another count (it is slow on a shared
// machine):
//
//	go test ./sync/engine -run '^$' -bench Touch -benchtime=1x -timeout 60m
//	BLUESHIFT_TOUCH_FILES=20000 go test ./sync/engine -run '^$' -bench Touch -benchtime=1x
func BenchmarkTouch(b *testing.B) {
	n := filesFromEnv(b, "BLUESHIFT_TOUCH_FILES", 100_000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		key := newKey(b)
		a, bb := newDevice(b, "A", key), newDevice(b, "B", key)
		// Both announce batched envelopes, as every daemon does;
		// BLUESHIFT_TOUCH_BATCHSIG=0 measures records signed one by one.
		signAlone := os.Getenv("BLUESHIFT_TOUCH_BATCHSIG") == "0"
		a.batchSig, bb.batchSig = !signAlone, !signAlone
		a.addShare(bb)
		bb.addShare(a)
		for i := range n {
			mustWrite(b, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
		}
		b.SetBytes(int64(n) * int64(len(tinyContent(0))))
		var count wireCount
		linkCounted(b, a, bb, &count)
		if a.batchSig {
			waitBatchSigning(b, a)
		}
		b.StartTimer()

		stopProfile := profileTouch(b, "BLUESHIFT_FIRST_CPUPROFILE")
		tables := tablesWritten(a, bb)
		start, cpu := time.Now(), cpuTime()
		root := rootOf(a)
		a.rescan()
		waitAgreed(b, root, a, bb)
		first, firstCPU := time.Since(start), cpuTime()-cpu
		stopProfile()
		firstBytes := count.n.Load()
		firstTables := tablesWritten(a, bb) - tables

		inodes := inodesOf(b, bb.dir, n)
		versions := len(listVersions(b, bb.dir))
		touchAll(b, a.dir, n, time.Now().Add(-time.Hour))
		count.n.Store(0)
		stopProfile = profileTouch(b, "BLUESHIFT_TOUCH_CPUPROFILE")
		tables = tablesWritten(a, bb)
		start, cpu = time.Now(), cpuTime()
		root = rootOf(a)
		a.rescan()
		waitAgreed(b, root, a, bb)
		touch, touchCPU := time.Since(start), cpuTime()-cpu
		stopProfile()
		touchBytes := count.n.Load()
		touchTables := tablesWritten(a, bb) - tables
		b.StopTimer()
		waitAttrsEqual(b, a, bb, n)

		b.ReportMetric(first.Seconds(), "first-sync-s")
		b.ReportMetric(touch.Seconds(), "touch-s")
		b.ReportMetric(firstCPU.Seconds(), "first-cpu-s")
		b.ReportMetric(touchCPU.Seconds(), "touch-cpu-s")
		b.ReportMetric(touch.Seconds()/first.Seconds(), "touch/first")
		b.ReportMetric(touchCPU.Seconds()/firstCPU.Seconds(), "touch/first-cpu")
		b.ReportMetric(float64(touchBytes)/float64(n), "wire-B/touched-file")
		b.ReportMetric(float64(touchBytes)/float64(firstBytes), "wire-touch/first")
		b.ReportMetric(float64(firstTables)/1e6, "first-index-MB-written")
		b.ReportMetric(float64(touchTables)/1e6, "touch-index-MB-written")
		b.ReportMetric(float64(len(listVersions(b, bb.dir))-versions), "versions-added")
		b.ReportMetric(float64(changed(inodesOf(b, bb.dir, n), inodes)), "files-rewritten")
		b.ReportMetric(float64(peakRSS())/1e6, "peak-rss-MB")
		measureTouchFloor(b, n).report(b)
		b.StartTimer()
	}
}

// tablesWritten is what the devices' index databases have written to their
// tables so far (flushes and compactions): the cost of their writes beyond
// the bytes written.
func tablesWritten(ds ...*device) uint64 {
	var n uint64
	for _, d := range ds {
		n += d.db.TablesWritten()
	}
	return n
}

// cpuTime is the CPU time this process has used (both devices run in it):
// on a shared machine a steadier measure of work than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the most memory this process (both devices) held at once, in
// bytes: a larger cache or batch shows here.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

// rootOf returns d's current root.
func rootOf(d *device) string { return d.e.Status().Shares[0].Root }

// waitAgreed waits until every device's root has moved from before and all
// report the same root, in sync. Cheaper than waitConverged at 100,000 files:
// it compares roots, not trees on disk.
func waitAgreed(t testing.TB, before string, ds ...*device) {
	t.Helper()
	deadline := time.Now().Add(time.Hour)
	for {
		ok := true
		var root string
		for i, d := range ds {
			st := d.e.Status().Shares[0]
			if !st.InSync || st.Root == before || (i > 0 && st.Root != root) {
				ok = false
				break
			}
			root = st.Root
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, d := range ds {
				t.Logf("%s status: %+v", d.name, d.e.Status().Shares)
			}
			t.Fatal("devices did not agree within an hour")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// filesFromEnv is the count of files a benchmark makes: the environment
// variable name's value if set, else def.
func filesFromEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		b.Fatalf("%s=%q: want a positive count of files", name, s)
	}
	return v
}

// waitBatchSigning waits until d's share signs in batches: d has heard
// every other member announce that it reads batched envelopes.
func waitBatchSigning(t testing.TB, d *device) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !shareOf(t, d).BatchSigning(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never saw its peers announce batched envelopes", d.name)
		}
	}
}

// profileTouch writes a CPU profile of one phase alone to the file the
// environment variable env names, if set: BLUESHIFT_FIRST_CPUPROFILE for
// the first sync, BLUESHIFT_TOUCH_CPUPROFILE for the touch. For the touch,
// BLUESHIFT_TOUCH_TRACE names a file for an execution trace too (`go tool
// trace`): where the wall time goes, which a CPU profile does not show.
func profileTouch(b *testing.B, env string) (stop func()) {
	var stops []func()
	if p := os.Getenv(env); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
	if p := os.Getenv("BLUESHIFT_TOUCH_TRACE"); p != "" && env == "BLUESHIFT_TOUCH_CPUPROFILE" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := trace.Start(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() {
			trace.Stop()
			f.Close()
		})
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
