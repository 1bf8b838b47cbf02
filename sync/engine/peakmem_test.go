package engine

import (
	"bytes"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peakWatch follows the memory of this process over a benchmark's timed
// part: the peak RSS (Linux's VmHWM, reset at the start where the kernel
// allows it) and the peak of the live heap after a GC. With file named, it
// writes the heap profile taken at that peak, whose inuse figures are the
// allocations live then (alloc_space: all of them so far).
type peakWatch struct {
	file string
	stop chan struct{}
	wg   sync.WaitGroup

	// owned by the watching goroutine until stop is closed and wg waited
	peakLive uint64
	profile  bytes.Buffer
}

// watchPeak starts following; end stops it and reports.
func watchPeak(file string) *peakWatch {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM (Linux >= 4.0); else it covers the setup too
	w := &peakWatch{file: file, stop: make(chan struct{})}
	w.wg.Go(w.run)
	return w
}

func (w *peakWatch) run() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		metrics.Read(s)
		live := s[0].Value.Uint64()
		// A new peak by more than 2%: profiling costs some milliseconds.
		if live > w.peakLive+w.peakLive/50 {
			w.peakLive = live
			if w.file != "" {
				w.profile.Reset()
				_ = pprof.Lookup("heap").WriteTo(&w.profile, 0)
			}
		}
	}
}

// end stops the watch and reports peak-rss-MB and peak-live-MB on b.
func (w *peakWatch) end(b *testing.B) {
	close(w.stop)
	w.wg.Wait()
	if rss := vmHWM(); rss > 0 {
		b.ReportMetric(float64(rss)/1e6, "peak-rss-MB")
	}
	b.ReportMetric(float64(w.peakLive)/1e6, "peak-live-MB")
	if w.file != "" {
		if err := os.WriteFile(w.file, w.profile.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// vmHWM is this process's peak RSS in bytes, 0 where /proc does not tell.
func vmHWM() int64 {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(st)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
