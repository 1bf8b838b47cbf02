package engine

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// BenchmarkEditBytes measures the bytes two devices exchange to sync small
// edits of a 100 MiB random file, beside rsync's total for the same edit in
// the same run (an rsync daemon on 127.0.0.1, client push, -a --stats).
// Run with -benchtime=1x: each op is one edit.
//
//	go test ./sync/engine -run '^$' -bench EditBytes -benchtime=1x
func BenchmarkEditBytes(b *testing.B) {
	size := 100 << 20
	if testing.Short() {
		size = 8 << 20
	}
	a, bb := newPair(b)
	var count wireCount
	linkCounted(b, a, bb, &count)
	rs := newRsync(b)

	data := seededBytes(1, size) // the same file, and so the same chunk boundaries, every run
	ops := []struct {
		name string
		do   func(dir string)
	}{
		{"new-file", func(dir string) { mustWrite(b, filepath.Join(dir, "f.bin"), data) }},
		{"insert-1B-at-4096", func(dir string) {
			d := append(append(append([]byte{}, data[:4096]...), 'X'), data[4096:]...)
			mustWrite(b, filepath.Join(dir, "f.bin"), d)
		}},
		{"overwrite-4KiB-middle", func(dir string) {
			d, _ := os.ReadFile(filepath.Join(dir, "f.bin"))
			copy(d[len(d)/2:], randBytesSeeded(4096))
			mustWrite(b, filepath.Join(dir, "f.bin"), d)
		}},
		{"rename", func(dir string) {
			if err := os.Rename(filepath.Join(dir, "f.bin"), filepath.Join(dir, "g.bin")); err != nil {
				b.Fatal(err)
			}
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for b.Loop() {
				// rsync: the same edit on its own copy, one client run.
				op.do(rs.src)
				rsyncBytes := rs.push(b, op.name == "rename")
				// Blueshift: the edit in A's folder, until B matches.
				count.n.Store(0)
				start := time.Now()
				op.do(a.dir)
				a.rescan()
				waitConverged(b, a, bb)
				took := time.Since(start)
				ours := count.n.Load()
				b.ReportMetric(float64(ours), "wire-bytes")
				b.ReportMetric(float64(rsyncBytes), "rsync-bytes")
				if rsyncBytes > 0 {
					b.ReportMetric(float64(ours)/float64(rsyncBytes), "wire/rsync")
				}
				b.ReportMetric(took.Seconds(), "s-to-sync")
			}
		})
	}
}

// BenchmarkReconnect measures the bytes two synced devices exchange when
// they reconnect with nothing changed, for shares of different sizes: the
// figure must be flat in the number of files.
func BenchmarkReconnect(b *testing.B) {
	for _, n := range []int{2000, 20000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			a, bb := newPair(b)
			for i := range n {
				mustWrite(b, filepath.Join(a.dir, fmt.Sprintf("d%02d/f%06d", i%50, i)), []byte(strconv.Itoa(i)))
			}
			a.rescan()
			cut := link(b, a, bb)
			waitConverged(b, a, bb)
			cut()
			for b.Loop() {
				var count wireCount
				cut := linkCounted(b, a, bb, &count)
				waitConverged(b, a, bb)
				time.Sleep(200 * time.Millisecond) // let any late message land
				b.ReportMetric(float64(count.n.Load()), "wire-bytes")
				cut()
			}
		})
	}
}

// rsync drives an rsync daemon on 127.0.0.1 as the baseline.
type rsync struct {
	src, dst string
	port     int
	daemon   *exec.Cmd
}

func newRsync(b *testing.B) *rsync {
	b.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		b.Skip("rsync not installed (apt-get install rsync): no baseline to compare with")
	}
	base := b.TempDir()
	r := &rsync{src: filepath.Join(base, "src"), dst: filepath.Join(base, "dst"), port: 20000 + os.Getpid()%20000}
	for _, d := range []string{r.src, r.dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	conf := filepath.Join(base, "rsyncd.conf")
	mustWrite(b, conf, []byte(fmt.Sprintf("port = %d\naddress = 127.0.0.1\nuse chroot = no\npid file = %s/rsyncd.pid\n[bench]\n  path = %s\n  read only = no\n  uid = 0\n  gid = 0\n", r.port, base, r.dst)))
	r.daemon = exec.Command("rsync", "--daemon", "--no-detach", "--config="+conf)
	if err := r.daemon.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.daemon.Process.Kill(); r.daemon.Wait() })
	time.Sleep(300 * time.Millisecond)
	return r
}

var rsyncTotals = regexp.MustCompile(`Total bytes sent: ([\d,.]+)\s+Total bytes received: ([\d,.]+)`)

// push runs one client push and returns the bytes rsync reports for both
// directions.
func (r *rsync) push(b *testing.B, fuzzy bool) int64 {
	b.Helper()
	// --modify-window=-1: compare mtimes to the nanosecond, or rsync's quick
	// check skips an edit made within the same second as the last run.
	args := []string{"-a", "--stats", "--delete", "--modify-window=-1"}
	if fuzzy {
		args = append(args, "--fuzzy", "--delete-after")
	}
	args = append(args, r.src+"/", fmt.Sprintf("rsync://127.0.0.1:%d/bench/", r.port))
	out, err := exec.Command("rsync", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("rsync: %v\n%s", err, out)
	}
	m := rsyncTotals.FindSubmatch(out)
	if m == nil {
		b.Fatalf("rsync printed no totals:\n%s", out)
	}
	return parseCount(m[1]) + parseCount(m[2])
}

func parseCount(b []byte) int64 {
	var n int64
	for _, c := range b {
		if c >= '0' && c <= '9' {
			n = n*10 + int64(c-'0')
		}
	}
	return n
}

func mustWrite(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// seededBytes returns n pseudo-random bytes fixed by seed.
func seededBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

func randBytesSeeded(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 13)
	}
	return b
}

// BenchmarkInitialSync measures the first sync of many small files (1–64
// KiB) between two engines, from the sender's scan to identical trees.
func BenchmarkInitialSync(b *testing.B) {
	for _, n := range []int{2000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				a, bb := newPair(b)
				var total int64
				for i := range n {
					size := 1024 + (i*7919)%(63*1024)
					total += int64(size)
					mustWrite(b, filepath.Join(a.dir, fmt.Sprintf("d%03d/f%06d", i%100, i)), randBytes(size))
				}
				b.StartTimer()
				start := time.Now()
				a.rescan()
				link(b, a, bb)
				waitConverged(b, a, bb)
				took := time.Since(start)
				b.ReportMetric(took.Seconds(), "s")
				b.ReportMetric(float64(total)/took.Seconds()/1e6, "MB/s")
				b.ReportMetric(float64(n)/took.Seconds(), "files/s")
			}
		})
	}
}

// BenchmarkFanOut: one device seeds random data to 4 and to 8 receivers,
// all connected to each other. The metric is the seeder's block upload
// over the data size (unicast to each would be 4 or 8), measured in the
// same run with receivers that speak Haves (protocol version 4: the swarm
// of swarm.go) and, as the baseline, receivers of version 3 (no Haves:
// they serve each other only the blocks they happen to hold).
//
//	go test ./sync/engine -run '^$' -bench FanOut -benchtime=1x
func BenchmarkFanOut(b *testing.B) {
	files := []int{24 << 20, 6 << 20, 2 << 20}
	for _, n := range []int{4, 8} {
		b.Run(fmt.Sprintf("receivers=%d", n), func(b *testing.B) {
			for b.Loop() {
				old := fanOut(b, n, files, 3)
				ours := fanOut(b, n, files, 0)
				b.ReportMetric(old, "v3-seeder-up/data")
				b.ReportMetric(ours, "seeder-up/data")
				b.ReportMetric(ours/old, "ours/v3")
			}
		})
	}
}

// fanOut syncs files from a seeder to n receivers that speak the given
// protocol version (0: this build's) and returns the seeder's upload over
// the data size.
func fanOut(b *testing.B, n int, files []int, version uint32) float64 {
	devs, up, total := swarmOf(b, n, files, func(devs []*device) {
		for _, d := range devs {
			d.version = version
		}
	})
	waitConvergedFor(b, 5*time.Minute, devs...)
	for _, d := range devs {
		d.close()
	}
	return float64(up.n.Load()) / float64(total)
}

func waitScannedTB(t testing.TB, d *device) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st := d.e.Status().Shares[0]; !st.Scanned.IsZero() && st.Records > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not scan", d.name)
}
