package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/zeebo/blake3"
)

// Data: every byte comes from the scenario's seeded generator, incompressible
// (so wire bytes measure what was sent, not how well it compressed), and
// every file's content is remembered by hash, so a check can say whether a
// file at a real path is exactly a version some device had.

// contentSet is a set of contents by hash (hex BLAKE3-256).
type contentSet map[string]bool

// writeRandom writes size seeded random bytes to path and returns their hash.
func writeRandom(path string, r *rand.Rand, size int64) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], r.Uint64())
	binary.LittleEndian.PutUint64(key[8:], r.Uint64())
	src := rand.NewChaCha8(key)
	h := blake3.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		src.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return "", err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// randomBytes returns n seeded random bytes.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

func hashBytes(b []byte) string {
	s := blake3.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hashFile returns the hash and size of a file's content.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := blake3.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// fileInfo is one regular file of a snapshot.
type fileInfo struct {
	hash string
	size int64
}

// snapshot hashes every regular file under root (paths relative,
// slash-separated), skipping .blueshift. It also returns the names of
// entries that are neither files, folders nor symlinks.
func snapshot(root string) (map[string]fileInfo, error) {
	out := map[string]fileInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking (users at work)
			}
			return err
		}
		if d.IsDir() && d.Name() == ".blueshift" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		h, n, err := hashFile(p)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		out[filepath.ToSlash(rel)] = fileInfo{h, n}
		return nil
	})
	return out, err
}

// versionsUnder hashes every regular file under root/.blueshift (versions
// folder, temps), which is where a replaced user file must be kept.
func versionsUnder(root string) (contentSet, error) {
	set := contentSet{}
	meta := filepath.Join(root, ".blueshift")
	err := filepath.WalkDir(meta, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		h, _, err := hashFile(p)
		if err == nil {
			set[h] = true
		}
		return nil
	})
	return set, err
}

// isConflictCopy reports whether a name is a conflict copy.
func isConflictCopy(name string) bool { return strings.Contains(name, ".sync-conflict-") }
