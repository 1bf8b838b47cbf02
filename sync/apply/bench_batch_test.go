package apply

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// Shape of the batch benchmarks: a first sync of many small files spread over
// a two-level tree, as the engine receives them.
const (
	batchFiles = 2000
	batchTops  = 8 // top-level directories
	batchSubs  = 5 // subdirectories in each: 40 directories in all
)

// smallTree is the paths and contents of one batch, the same in every run.
func smallTree() ([]record.Path, [][]byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	paths := make([]record.Path, batchFiles)
	data := make([][]byte, batchFiles)
	for i := range paths {
		paths[i] = record.Path(fmt.Sprintf("top%d/sub%d/file%04d.bin", i%batchTops, (i/batchTops)%batchSubs, i))
		data[i] = make([]byte, 1<<10+rng.IntN(15<<10)) // 1-16 KiB
	}
	return paths, data
}

// BenchmarkStageInstall applies one batch of small new files the way the
// engine's applyFiles does: two workers Stat and Stage, one Sync, every
// Install in path order, one more Sync. One iteration is one batch into a
// fresh share. The baseline, measured in the same run, is the bare minimum
// for the same durability with plain os calls: create, write, close each,
// one syncfs, rename each, one syncfs.
func BenchmarkStageInstall(b *testing.B) {
	paths, data := smallTree()
	var total int64
	for _, d := range data {
		total += int64(len(d))
	}
	ctx := context.Background()
	mtime := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var base, ours, cpu time.Duration
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		base += bareBatch(b, paths, data)
		r, _ := openTest(b, Options{Logger: discard()})
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		staged := make([]*Staged, len(paths))
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Go(func() {
				for i := w; i < len(paths); i += 2 {
					if _, err := r.Stat(paths[i]); err != nil {
						b.Error(err)
						return
					}
					s, err := r.Stage(ctx, paths[i], Meta{Mode: 0o644, ModTime: mtime}, content(data[i]))
					if err != nil {
						b.Error(err)
						return
					}
					staged[i] = s
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		if err := r.Sync(); err != nil {
			b.Fatal(err)
		}
		for _, s := range staged {
			if _, err := s.Install(ctx, FileState{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Sync(); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		r.Close()
		b.StartTimer()
	}
	reportPerFile(b, b.N*len(paths), ours, cpu)
	b.ReportMetric(float64(ours)/float64(base), "x-baseline")
}

// BenchmarkWriteFileNew writes the same batch one WriteFile at a time, each
// durable on its own (the engine's path for files outside a staged batch).
func BenchmarkWriteFileNew(b *testing.B) {
	paths, data := smallTree()
	paths, data = paths[:batchFiles/4], data[:batchFiles/4] // an fsync each: keep it short
	ctx := context.Background()
	var ours, cpu time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r, _ := openTest(b, Options{Logger: discard()})
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		for i, p := range paths {
			if _, err := r.WriteFile(ctx, p, FileState{}, Meta{Mode: 0o644}, content(data[i])); err != nil {
				b.Fatal(err)
			}
		}
		ours += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		r.Close()
		b.StartTimer()
	}
	reportPerFile(b, b.N*len(paths), ours, cpu)
}

// reportPerFile reports files per second of wall time and CPU per file.
func reportPerFile(b *testing.B, files int, wall, cpu time.Duration) {
	b.ReportMetric(float64(files)/wall.Seconds(), "files/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(files), "cpu-us/file")
}

// bareBatch is BenchmarkStageInstall's baseline: plain os calls, no checks.
func bareBatch(b *testing.B, paths []record.Path, data [][]byte) time.Duration {
	dir := b.TempDir()
	start := time.Now()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range paths {
		f, err := os.Create(filepath.Join(tmp, strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		f.Write(data[i])
		f.Close()
	}
	d, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	syncFS(d)
	for i, p := range paths {
		dst := filepath.Join(dir, filepath.FromSlash(string(p)))
		if err := os.Rename(filepath.Join(tmp, strconv.Itoa(i)), dst); err != nil {
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.Rename(filepath.Join(tmp, strconv.Itoa(i)), dst); err != nil {
				b.Fatal(err)
			}
		}
	}
	syncFS(d)
	return time.Since(start)
}
