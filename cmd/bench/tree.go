package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sync/errgroup"
)

// errTreesDiffer is returned (wrapped) by compareTrees when two trees are not
// byte-identical.
var errTreesDiffer = errors.New("trees differ")

// toolDirs are the tools' own folders inside a synced tree; they are not part
// of the data and are skipped when trees are compared.
var toolDirs = []string{".stfolder", ".stversions", ".blueshift"}

type entry struct {
	mode fs.FileMode
	size int64
}

// listTree returns every path under root (relative, slash-separated) with its
// type, permission bits and size, skipping the tools' own folders.
func listTree(root string) (map[string]entry, error) {
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() && slices.Contains(toolDirs, d.Name()) {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: info.Mode() & (fs.ModeType | fs.ModePerm)}
		if info.Mode().IsRegular() {
			e.size = info.Size()
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tree %q: %w", root, err)
	}
	return out, nil
}

// compareTrees checks that a and b hold the same names, types, permission
// bits, sizes and contents. Metadata is compared first, so a tree that is
// still syncing is rejected without reading file contents.
func compareTrees(a, b string) error {
	la, err := listTree(a)
	if err != nil {
		return err
	}
	lb, err := listTree(b)
	if err != nil {
		return err
	}
	for p, ea := range la {
		eb, ok := lb[p]
		switch {
		case !ok:
			return fmt.Errorf("%w: %q missing in %q", errTreesDiffer, p, b)
		case ea != eb:
			return fmt.Errorf("%w: %q is %v/%d bytes in %q but %v/%d in %q", errTreesDiffer, p, ea.mode, ea.size, a, eb.mode, eb.size, b)
		}
	}
	for p := range lb {
		if _, ok := la[p]; !ok {
			return fmt.Errorf("%w: %q only in %q", errTreesDiffer, p, b)
		}
	}
	// Contents in parallel: a scale run compares a million pairs of files.
	g, gctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for p, e := range la {
		if !e.mode.IsRegular() {
			continue
		}
		if gctx.Err() != nil {
			break // a difference is found already
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return nil
			}
			return compareFiles(filepath.Join(a, p), filepath.Join(b, p), e.size)
		})
	}
	return g.Wait()
}

// compareFiles reports whether two files have identical contents; size (as
// listed) sizes the read buffers, so a million tiny files do not each
// allocate the 256 KiB a large one reads at a time.
func compareFiles(a, b string, size int64) error {
	fa, err := os.Open(a)
	if err != nil {
		return fmt.Errorf("%w: %v", errTreesDiffer, err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return fmt.Errorf("%w: %v", errTreesDiffer, err)
	}
	defer fb.Close()
	n := min(size+1, 256<<10) // +1: the read past the listed size finds a grown file
	ba, bb := make([]byte, n), make([]byte, n)
	for off := int64(0); ; {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return fmt.Errorf("%w: %q and %q differ near byte %d", errTreesDiffer, a, b, off)
		}
		off += int64(na)
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			if eb != ea {
				return fmt.Errorf("%w: %q and %q differ in length", errTreesDiffer, a, b)
			}
			return nil
		}
		if ea != nil {
			return fmt.Errorf("read %q: %w", a, ea)
		}
		if eb != nil {
			return fmt.Errorf("read %q: %w", b, eb)
		}
	}
}
