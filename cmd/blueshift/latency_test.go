package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkChangeToSynced measures, with two real daemons on 127.0.0.1,
// the time from a small file's write on one device until the other device
// holds the new content: p50 and p99 over 100 edits. The watcher, the
// index, the push and the apply are all in the path.
//
//	go test ./cmd/blueshift -run '^$' -bench ChangeToSynced -benchtime=1x
func BenchmarkChangeToSynced(b *testing.B) {
	const edits = 100
	a, bb := newDevice(b, "alice"), newDevice(b, "bob")
	work := b.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(b, filepath.Join(fa, "seed.txt"), "seed")
	a.ok("share", "add", fa, "--name", "lat")
	a.start()
	bb.start()
	link := strings.SplitN(a.ok("invite", "lat"), "\n", 2)[0]
	bb.ok("join", link, fb)
	waitTrees(b, fa, fb, "initial sync", a, bb)

	for b.Loop() {
		var took []time.Duration
		for i := range edits {
			want := fmt.Sprintf("edit %d at %d\n", i, time.Now().UnixNano())
			start := time.Now()
			write(b, filepath.Join(fa, "note.txt"), want)
			deadline := start.Add(30 * time.Second)
			for {
				if got, err := os.ReadFile(filepath.Join(fb, "note.txt")); err == nil && string(got) == want {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("edit %d did not reach bob in 30 s\n%s", i, bb.logText())
				}
				time.Sleep(2 * time.Millisecond)
			}
			took = append(took, time.Since(start))
			time.Sleep(20 * time.Millisecond) // separate edits, so each is timed alone
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Milliseconds()), "p99-ms")
	}
}
