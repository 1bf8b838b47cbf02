package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkLargeFile measures the first sync of one large random file
// between two engines on loopback, from the sender's scan to identical
// trees: the case where CPU per byte (hashing, copies, lookups) bounds the
// time. Run with -benchtime=1x and -cpuprofile to see where it goes.
// Beside it, in the same run, rsync --fsync pushes the same file to an
// rsync daemon on 127.0.0.1 (the baseline of issue 14): x-rsync-fsync is
// our wall time over rsync's, and rsync-cpu-s/GB its CPU (client, daemon
// and their children). The floor-* metrics are the least CPU and time
// this design's work on each byte costs in the same run (largeFloor).
//
//	go test ./sync/engine -run '^$' -bench LargeFile -benchtime=1x
func BenchmarkLargeFile(b *testing.B) {
	size := int64(512 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	for b.Loop() {
		b.StopTimer()
		a, bb := newPair(b)
		writeRandomFile(b, filepath.Join(a.dir, "big.bin"), size)
		// As a file that was not written the instant before its scan: a
		// scan's proof of it then counts (see index.proofs).
		time.Sleep(1100 * time.Millisecond)
		b.SetBytes(size)
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		a.rescan()
		link(b, a, bb)
		waitInSync(b, 5*time.Minute, size, a, bb)
		took, cpu := time.Since(start), processCPU()-cpu0
		b.StopTimer()
		waitConvergedFor(b, time.Minute, a, bb) // content compared outside the timed part
		b.ReportMetric(took.Seconds(), "s")
		if cpu > 0 {
			b.ReportMetric(cpu.Seconds()/(float64(size)/1e9), "cpu-s/GB")
		}
		if _, err := exec.LookPath("rsync"); err == nil {
			// The engines stop first: a watcher's rescan would compete.
			a.close()
			bb.close()
			rs := newRsync(b)
			if err := os.Rename(filepath.Join(a.dir, "big.bin"), filepath.Join(rs.src, "big.bin")); err != nil {
				b.Fatal(err)
			}
			rtook, rcpu := rs.pushTimed(b, "--fsync")
			b.ReportMetric(took.Seconds()/rtook.Seconds(), "x-rsync-fsync")
			b.ReportMetric(rcpu.Seconds()/(float64(size)/1e9), "rsync-cpu-s/GB")
			// What this design cannot leave out, in the same run (large_floor_test.go).
			reportLargeFloor(b, measureLargeFloor(b, filepath.Join(rs.src, "big.bin")), size, rtook, rcpu)
		}
		b.StartTimer()
	}
}

// pushTimed runs one client push with the extra options and returns its
// wall time and the CPU it cost: the client's and its children's, and what
// the daemon's children (one per connection) used, reaped by the daemon.
func (r *rsync) pushTimed(b *testing.B, opts ...string) (time.Duration, time.Duration) {
	b.Helper()
	daemon0 := childrenCPU(r.daemon.Process.Pid)
	args := append([]string{"-a"}, opts...)
	cmd := exec.Command("rsync", append(args, r.src+"/", fmt.Sprintf("rsync://127.0.0.1:%d/bench/", r.port))...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("rsync: %v\n%s", err, out)
	}
	// The daemon reaps its child on SIGCHLD, a moment after the client ends.
	var daemon time.Duration
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if daemon = childrenCPU(r.daemon.Process.Pid) - daemon0; daemon > 0 {
			break
		}
	}
	b.Logf("rsync: client %s+%s, daemon %s", cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime(), daemon)
	return took, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime() + daemon
}

// waitInSync waits until every device reports in sync on the same root
// and the last one holds big.bin at its full size: cheap to poll, unlike
// comparing contents (done after, untimed).
func waitInSync(t testing.TB, limit time.Duration, size int64, ds ...*device) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ok := true
		var root string
		for i, d := range ds {
			st := d.e.Status()
			if len(st.Shares) != 1 || !st.Shares[0].InSync || (i > 0 && st.Shares[0].Root != root) {
				ok = false
				break
			}
			root = st.Shares[0].Root
		}
		if fi, err := os.Stat(filepath.Join(ds[len(ds)-1].dir, "big.bin")); ok && err == nil && fi.Size() == size {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("devices did not converge within %s", limit)
}

// writeRandomFile writes n pseudo-random bytes to path, 1 MiB at a time.
func writeRandomFile(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		_, _ = r.Read(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

// childrenCPU is the CPU time of process pid's reaped children, from
// /proc (Linux; 0 elsewhere): fields cutime and cstime, in USER_HZ (100)
// ticks.
func childrenCPU(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (in parentheses, which may hold spaces).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 15 {
		return 0
	}
	cu, err1 := strconv.ParseInt(f[13], 10, 64) // field 16, cutime
	cs, err2 := strconv.ParseInt(f[14], 10, 64) // field 17, cstime
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(cu+cs) * (time.Second / 100)
}
