package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// BenchmarkWriteFile measures replacing files through WriteFile (temp, fsync,
// version link, rename, directory fsync) beside a baseline measured in the
// same run: the bare minimum atomic write (create, write, fsync, rename) with
// plain os calls. "x-baseline" is ours divided by that.
func BenchmarkWriteFile(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		data := make([]byte, size)
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			base := bareAtomicWrite(b, data, 50)
			r, _ := openTest(b, Options{VersionsKeep: 1, Logger: discard()})
			ctx := context.Background()
			states := make([]FileState, 16)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				p := record.Path(fmt.Sprintf("d/f%d.bin", i%len(states)))
				st, err := r.WriteFile(ctx, p, states[i%len(states)], Meta{Mode: 0o644}, content(data))
				if err != nil {
					b.Fatal(err)
				}
				states[i%len(states)] = st
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(time.Second)/float64(per), "files/s")
			b.ReportMetric(float64(per)/float64(base), "x-baseline")
		})
	}
}

// bareAtomicWrite returns the mean time of n plain temp+fsync+rename writes.
func bareAtomicWrite(b *testing.B, data []byte, n int) time.Duration {
	dir := b.TempDir()
	start := time.Now()
	for i := range n {
		tmp := filepath.Join(dir, "tmp")
		f, err := os.Create(tmp)
		if err != nil {
			b.Fatal(err)
		}
		f.Write(data)
		f.Sync()
		f.Close()
		if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("f%d", i%16))); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / time.Duration(n)
}
