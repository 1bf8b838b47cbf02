package index

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/record"
)

// These benchmarks build large trees (up to 1 GiB); they run only with
// -bench. Figures are reported as custom metrics.

// makeFiles writes n files of sizes in [lo, hi] bytes, 100 per folder, and
// returns their total size.
func makeFiles(b *testing.B, root string, n, lo, hi int) int64 {
	b.Helper()
	src := rand.NewChaCha8([32]byte{1})
	r := rand.New(src)
	buf := make([]byte, hi)
	var total int64
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("d%04d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		size := lo + r.IntN(hi-lo+1)
		src.Read(buf[:size])
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), buf[:size], 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return total
}

func benchShare(b *testing.B, root string) (*DB, *Share) {
	db, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	sh, err := db.Share(testKey(b, 1), root, 1)
	if err != nil {
		b.Fatal(err)
	}
	return db, sh
}

func fullScan(b *testing.B, sh *Share) ScanResult {
	res, err := sh.Scan(context.Background(), ScanOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Errors) != 0 {
		b.Fatal(res.Errors[0])
	}
	return res
}

// BenchmarkScanSmallFiles: a first full scan of 20,000 files of 1-64 KiB.
func BenchmarkScanSmallFiles(b *testing.B) {
	root := b.TempDir()
	const n = 20000
	total := makeFiles(b, root, n, 1<<10, 64<<10)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		db, sh := benchShare(b, root)
		b.StartTimer()
		fullScan(b, sh)
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkScanBigFile: a first full scan of one 1 GiB file, beside the
// baseline of reading and BLAKE3-hashing the same file in the same run.
func BenchmarkScanBigFile(b *testing.B) {
	root := b.TempDir()
	const size = 1 << 30
	f, err := os.Create(filepath.Join(root, "big"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{2}), size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	base := baselineHash(b, filepath.Join(root, "big"))
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		db, sh := benchShare(b, root)
		b.StartTimer()
		fullScan(b, sh)
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	ours := float64(size*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(ours/(1<<20), "MiB/s")
	b.ReportMetric(ours/base, "scan/blake3")
}

// baselineHash returns the bytes per second of reading p through BLAKE3.
func baselineHash(b *testing.B, p string) float64 {
	b.Helper()
	var best float64
	for range 2 {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		h := blake3.New()
		start := nowFunc()
		n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		best = max(best, float64(n)/sinceSeconds(start))
	}
	return best
}

// BenchmarkRescanUnchanged: an incremental full rescan of 100,000 files
// that did not change (target < 2 s per scan).
func BenchmarkRescanUnchanged(b *testing.B) {
	root := b.TempDir()
	const n = 100000
	makeFiles(b, root, n, 16, 64)
	db, sh := benchShare(b, root)
	defer db.Close()
	fullScan(b, sh)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if res := fullScan(b, sh); res.Hashed != 0 {
			b.Fatalf("rescan hashed %d files", res.Hashed)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/scan")
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkBytesPerRecord: database bytes on disk per one-block file
// (envelope, tree, local state, block index), after a full compaction.
func BenchmarkBytesPerRecord(b *testing.B) {
	root := b.TempDir()
	const n = 10000
	makeFiles(b, root, n, 1<<10, 8<<10)
	for range b.N {
		db, sh := benchShare(b, root)
		fullScan(b, sh)
		p := db.store.Pebble()
		if err := p.Compact([]byte{0}, []byte{0xff}, true); err != nil {
			b.Fatal(err)
		}
		m := p.Metrics()
		var sst int64
		for _, l := range m.Levels {
			sst += l.Size
		}
		_, recs, _ := sh.TreeRoot()
		b.ReportMetric(float64(sst)/float64(recs), "bytes/record")
		var env int
		_ = sh.Records(func(e Entry) error {
			if e.Record.Kind == record.File {
				env += len(e.Envelope.Bytes())
			}
			return nil
		})
		b.ReportMetric(float64(env)/n, "envelope-bytes/file")
		db.Close()
	}
}
