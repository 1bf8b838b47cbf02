package watcher

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// BenchmarkWriteToBatch measures, for one small write, the time from the
// write returning to the batch naming it, with the default debounce. The
// baseline, measured in the same run, is the raw fsnotify event for the same
// write: the ratio is what debouncing costs.
func BenchmarkWriteToBatch(b *testing.B) {
	root := b.TempDir()
	path := filepath.Join(root, "f")
	data := []byte("small edit")

	raw := rawLatencies(b, root, path, data, 50)

	w, err := New(root, Options{})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-w.Batches() // the first Full

	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		for {
			batch := <-w.Batches()
			if batch.Full || slices.Contains(batch.Paths, "f") {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	p50, p99 := percentiles(lat)
	rawP50, _ := percentiles(raw)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(rawP50), "raw-p50-ms")
	b.ReportMetric(float64(p50)/float64(max(rawP50, 1)), "p50/raw")
}

// rawLatencies is the baseline: a bare fsnotify watch on root.
func rawLatencies(b *testing.B, root, path string, data []byte, n int) []time.Duration {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer fw.Close()
	if err := fw.Add(root); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		<-fw.Events
		lat = append(lat, time.Since(start))
		// Drain the rest of this write's events (create/truncate, write).
		for drained := false; !drained; {
			select {
			case <-fw.Events:
			case <-time.After(5 * time.Millisecond):
				drained = true
			}
		}
	}
	return lat
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
