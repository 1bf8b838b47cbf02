package apply

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// BenchmarkSetAttrs sets the mtime of a batch of small files in place from
// as many workers as the engine's applyFiles runs (16), against the same
// batch set by one worker in the same run: workers that wait on each other
// show as a ratio near 1 or above.
func BenchmarkSetAttrs(b *testing.B) {
	paths, data := smallTree()
	r, dir := openTest(b, Options{})
	for i, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(string(p)))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, data[i][:64], 0o644); err != nil {
			b.Fatal(err)
		}
	}
	when := time.Unix(1_700_000_000, 0)
	run := func(workers int) time.Duration {
		when = when.Add(time.Second)
		start := time.Now()
		work := make(chan record.Path)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for p := range work {
					st, err := r.Stat(p)
					if err != nil {
						b.Error(err)
						continue
					}
					if _, err := r.SetAttrs(p, st, Meta{Mode: 0o644, ModTime: when}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, p := range paths {
			work <- p
		}
		close(work)
		wg.Wait()
		return time.Since(start)
	}
	var one, many time.Duration
	for b.Loop() {
		one += run(1)
		many += run(16)
	}
	b.ReportMetric(float64(many)/float64(one), "16-workers/1")
	b.ReportMetric(float64(many.Microseconds())/float64(b.N*len(paths)), "µs/file")
}
