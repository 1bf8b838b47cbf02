// Package tree lists and compares folder trees the way the harnesses judge
// convergence: names, types, permission bits, sizes and contents, skipping
// the sync tools' own folders (.blueshift, .stfolder, .stversions).
package tree

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

// ErrDiffer is returned (wrapped) by Compare when two trees are not
// byte-identical.
var ErrDiffer = errors.New("trees differ")

// skipDirs are the tools' own folders inside a synced tree; they are not part
// of the data and are skipped when trees are compared.
var skipDirs = []string{".stfolder", ".stversions", ".blueshift"}

// Entry is what List records of one path.
type Entry struct {
	Mode fs.FileMode
	Size int64
}

// List returns every path under root (relative, slash-separated) with its
// type, permission bits and size, skipping the tools' own folders.
func List(root string) (map[string]Entry, error) {
	out := map[string]Entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() && slices.Contains(skipDirs, d.Name()) {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Mode: info.Mode() & (fs.ModeType | fs.ModePerm)}
		if info.Mode().IsRegular() {
			e.Size = info.Size()
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tree %q: %w", root, err)
	}
	return out, nil
}

// Compare checks that a and b hold the same names, types, permission
// bits, sizes and contents. Metadata is compared first, so a tree that is
// still syncing is rejected without reading file contents.
func Compare(a, b string) error {
	la, err := List(a)
	if err != nil {
		return err
	}
	lb, err := List(b)
	if err != nil {
		return err
	}
	for p, ea := range la {
		eb, ok := lb[p]
		switch {
		case !ok:
			return fmt.Errorf("%w: %q missing in %q", ErrDiffer, p, b)
		case ea != eb:
			return fmt.Errorf("%w: %q is %v/%d bytes in %q but %v/%d in %q", ErrDiffer, p, ea.Mode, ea.Size, a, eb.Mode, eb.Size, b)
		}
	}
	for p := range lb {
		if _, ok := la[p]; !ok {
			return fmt.Errorf("%w: %q only in %q", ErrDiffer, p, b)
		}
	}
	// Contents in parallel: a scale run compares a million pairs of files.
	g, gctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for p, e := range la {
		if !e.Mode.IsRegular() {
			continue
		}
		if gctx.Err() != nil {
			break // a difference is found already
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return nil
			}
			return CompareFiles(filepath.Join(a, p), filepath.Join(b, p), e.Size)
		})
	}
	return g.Wait()
}

// CompareFiles reports whether two files have identical contents; size (as
// listed) sizes the read buffers, so a million tiny files do not each
// allocate the 256 KiB a large one reads at a time.
func CompareFiles(a, b string, size int64) error {
	fa, err := os.Open(a)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDiffer, err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDiffer, err)
	}
	defer fb.Close()
	n := min(size+1, 256<<10) // +1: the read past the listed size finds a grown file
	ba, bb := make([]byte, n), make([]byte, n)
	for off := int64(0); ; {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return fmt.Errorf("%w: %q and %q differ near byte %d", ErrDiffer, a, b, off)
		}
		off += int64(na)
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			if eb != ea {
				return fmt.Errorf("%w: %q and %q differ in length", ErrDiffer, a, b)
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
