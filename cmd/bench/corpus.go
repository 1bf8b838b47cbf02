package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/blueshift-sync/blueshift/internal/corpus"
)

// The corpus's trees of files, made from internal/corpus's seeded bytes:
// the same arguments always give the same tree, so runs on different
// machines compare like with like.

// smallSpec describes a tree of many small files.
type smallSpec struct {
	Files    int
	Min, Max int64 // sizes are log-uniform in [Min, Max]
}

func createFile(path string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory of %q: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %q: %w", path, err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	if err := fill(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %q: %w", path, err)
	}
	return f.Close()
}

// genSmall writes spec.Files files under dir, spread over about 300
// directories up to three levels deep, with text-like and binary-like names.
// It returns the total number of bytes.
func genSmall(dir string, seed uint64, spec smallSpec) (int64, error) {
	vocab := corpus.Vocabulary(seed)
	lmin, lmax := math.Log(float64(spec.Min)), math.Log(float64(max(spec.Max, spec.Min)))
	sizes := make([]int64, spec.Files)
	var g errgroup.Group
	g.SetLimit(4)
	for i := range spec.Files {
		r := rand.New(corpus.Stream(seed, "small-meta", uint64(i)))
		sz := int64(math.Exp(lmin + r.Float64()*(lmax-lmin)))
		sizes[i] = sz
		d := fmt.Sprintf("d%02d/s%02d", r.IntN(16), r.IntN(16))
		if r.IntN(4) == 0 {
			d = fmt.Sprintf("%s/t%d", d, r.IntN(8))
		}
		ext := []string{".txt", ".md", ".go", ".json", ".bin", ".dat"}[r.IntN(6)]
		frac := 0.1
		if ext == ".bin" || ext == ".dat" {
			frac = 0.7
		}
		p := filepath.Join(dir, d, fmt.Sprintf("f%07d%s", i, ext))
		g.Go(func() error {
			return createFile(p, func(w io.Writer) error {
				return corpus.NewMixer(seed, vocab, "small", uint64(i)).Write(w, sz, frac, 4096)
			})
		})
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	return total, g.Wait()
}

// genMixed writes count compressible files of size bytes each into dir.
func genMixed(dir string, seed uint64, count int, size int64) error {
	vocab := corpus.Vocabulary(seed)
	var g errgroup.Group
	g.SetLimit(2)
	for i := range count {
		p := filepath.Join(dir, fmt.Sprintf("mixed-%02d.bin", i))
		g.Go(func() error {
			return createFile(p, func(w io.Writer) error {
				return corpus.NewMixer(seed, vocab, "large", uint64(i)).Write(w, size, 0.12, 64<<10)
			})
		})
	}
	return g.Wait()
}

// genRandomFile writes one incompressible file; idx selects the stream.
func genRandomFile(path string, seed uint64, idx uint64, size int64) error {
	return createFile(path, func(w io.Writer) error {
		return corpus.WriteRandom(w, corpus.Stream(seed, "random", idx), size)
	})
}

// patch returns n seeded bytes for an edit at offset at.
func patch(seed uint64, kind string, at int64, n int) []byte {
	b := make([]byte, n)
	_, _ = corpus.Stream(seed, "patch-"+kind, uint64(at)).Read(b)
	return b
}

// insertAt inserts n seeded bytes at offset at, shifting the tail (in place,
// as an editor that rewrites the tail would).
func insertAt(path string, seed uint64, at int64, n int) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %q for insert: %w", path, err)
	}
	defer f.Close()
	tail, err := io.ReadAll(io.NewSectionReader(f, at, math.MaxInt64-at))
	if err != nil {
		return fmt.Errorf("read tail of %q: %w", path, err)
	}
	if _, err := f.WriteAt(append(patch(seed, "insert", at, n), tail...), at); err != nil {
		return fmt.Errorf("insert into %q: %w", path, err)
	}
	return f.Close()
}

// overwriteAt replaces n bytes at offset at with seeded bytes (same size).
func overwriteAt(path string, seed uint64, at int64, n int) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %q for overwrite: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(patch(seed, "overwrite", at, n), at); err != nil {
		return fmt.Errorf("overwrite %q: %w", path, err)
	}
	return f.Close()
}

// appendTo appends n seeded random bytes.
func appendTo(path string, seed uint64, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open %q for append: %w", path, err)
	}
	defer f.Close()
	if err := corpus.WriteRandom(f, corpus.Stream(seed, "append", uint64(n)), n); err != nil {
		return fmt.Errorf("append to %q: %w", path, err)
	}
	return f.Close()
}

// tinyPerDir is how many files genTiny puts in one directory.
const tinyPerDir = 1000

// genTiny writes n tiny files (64 B-1 KiB, log-uniform, text-like) under dir,
// tinyPerDir to a directory (dir/d0000/f0000000.txt, ...). Each file's name,
// size and bytes depend only on (seed, index), so parallel writers give the
// same tree every time; a million files take well under a minute.
func genTiny(dir string, seed uint64, n int) error {
	vocab := corpus.Vocabulary(seed)
	dirs := (n + tinyPerDir - 1) / tinyPerDir
	lmin, lmax := math.Log(64), math.Log(1024)
	var g errgroup.Group
	g.SetLimit(8) // file creation waits on the file system more than on the CPU
	for d := range dirs {
		g.Go(func() error {
			sub := filepath.Join(dir, fmt.Sprintf("d%04d", d))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return fmt.Errorf("create directory %q: %w", sub, err)
			}
			buf := make([]byte, 1024)
			for i := d * tinyPerDir; i < min(n, (d+1)*tinyPerDir); i++ {
				m := corpus.NewMixer(seed, vocab, "tiny", uint64(i))
				b := buf[:int(math.Exp(lmin+m.Float64()*(lmax-lmin)))]
				m.Text(b)
				p := filepath.Join(sub, fmt.Sprintf("f%07d.txt", i))
				if err := os.WriteFile(p, b, 0o644); err != nil {
					return fmt.Errorf("write %q: %w", p, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// removeTree deletes dir, its first-level entries in parallel (a tree of a
// million files takes minutes to delete one file at a time).
func removeTree(dir string) {
	ents, _ := os.ReadDir(dir)
	var g errgroup.Group
	g.SetLimit(8)
	for _, e := range ents {
		g.Go(func() error { return os.RemoveAll(filepath.Join(dir, e.Name())) })
	}
	_ = g.Wait()
	_ = os.RemoveAll(dir)
}

// checkRoom fails, before anything runs, when the file system of the scratch
// directory (root, or $TMPDIR when empty) cannot hold the scale run of files
// tiny files: the source and destination trees (a 4 KiB block each), the
// index, and the other corpora and copies.
func checkRoom(root string, files int) error {
	if root == "" {
		root = os.TempDir()
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return fmt.Errorf("check free space in %q: %w", root, err)
	}
	needBytes := uint64(files)*(2*4608+2048) + 4<<30
	needInodes := uint64(files)*21/10 + 200_000
	haveBytes, haveInodes := st.Bavail*uint64(st.Bsize), st.Ffree
	if haveBytes < needBytes || (st.Files > 0 && haveInodes < needInodes) {
		return fmt.Errorf("not enough room in %q for the %d-file scale run: need %.1f GB and %d inodes free, have %.1f GB and %d; free some space, pass -work DIR on a larger file system, or leave scenario 7 out (-scenarios 1,2,3,4,5,6)",
			root, files, float64(needBytes)/1e9, needInodes, float64(haveBytes)/1e9, haveInodes)
	}
	return nil
}
