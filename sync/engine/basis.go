package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/record"
)

// Kept versions: the dictionaries of patches (patch.go) on the sending
// side. A patch needs the receiver's previous version on the sender too,
// and a rebuild replaces that version here before any peer asks. So when a
// scan indexes a program (an executable or a library, between basisMinFile
// and basisMaxFile), the share keeps a hard link to it in
// .blueshift/basis, named by its record's file hash: free while the file
// stays, it holds the old inode once a build renames a new one over it (a
// build that rewrites in place changes the kept bytes too, which the block
// hashes then refuse). At most basisKeepFiles and basisKeepBytes are kept;
// the oldest go first. A link is a new status change of the file, so its
// blocks are hashed again when served (index.Share.Proves).
const (
	basisDir        = record.MetaDir + "/basis"
	basisMinFile    = smallFile
	basisMaxFile    = 256 << 20
	basisKeepFiles  = 32
	basisKeepBytes  = 512 << 20
	basisQueue      = 256
	basisNameLength = 2 * len(block.Hash{})
)

// programExts names libraries and programs that lack an executable bit
// (and every program on Windows).
var programExts = []string{".exe", ".dll", ".so", ".dylib", ".a", ".o", ".wasm", ".jar", ".apk", ".msi"}

// keptBases is a share's kept versions. Its run goroutine (owned by the
// folder's run) adds them; servePatch reads them concurrently.
type keptBases struct {
	dir string // absolute path of .blueshift/basis
	log *slog.Logger
	mu  struct {
		gosync.Mutex
		kept  []keptBase // oldest first
		bytes int64
	}
}

type keptBase struct {
	name string
	size int64
}

func newKeptBases(root string, log *slog.Logger) *keptBases {
	return &keptBases{dir: filepath.Join(root, filepath.FromSlash(basisDir)), log: log}
}

// run keeps the programs f's scans index until ctx is done.
func (k *keptBases) run(ctx context.Context, f *folder) {
	k.load()
	envs := make(chan []record.Envelope, basisQueue)
	unsubscribe := f.idx.Subscribe(func(u index.Update) {
		if !u.FromScan {
			return
		}
		select {
		case envs <- u.Envelopes:
		default: // best effort: a version not kept costs a patch, not data
		}
	})
	defer unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-envs:
			for _, env := range batch {
				if rec, err := env.Record(); err == nil && keepable(rec) {
					k.keep(f.root.Dir(), rec)
				}
			}
		}
	}
}

// keepable says whether a record's file is kept: a program of a size a
// patch serves.
func keepable(rec record.Record) bool {
	if rec.Deleted || rec.Kind != record.File || rec.Size < basisMinFile || rec.Size > basisMaxFile {
		return false
	}
	return rec.Mode&0o111 != 0 || slices.Contains(programExts, strings.ToLower(filepath.Ext(string(rec.Path))))
}

// keep links the file of rec (under root) into the kept versions.
func (k *keptBases) keep(root string, rec record.Record) {
	name := hex.EncodeToString(rec.FileHash[:])
	k.mu.Lock()
	known := slices.ContainsFunc(k.mu.kept, func(b keptBase) bool { return b.name == name })
	k.mu.Unlock()
	if known {
		return
	}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		k.log.Debug("keep a version for patches", "path", rec.Path, "err", err)
		return
	}
	err := os.Link(filepath.Join(root, rec.Path.OS()), filepath.Join(k.dir, name))
	if err != nil && !errors.Is(err, fs.ErrExist) {
		k.log.Debug("keep a version for patches", "path", rec.Path, "err", err)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.addLocked(keptBase{name: name, size: rec.Size})
}

// addLocked notes b as the newest kept version and removes the oldest
// beyond the limits.
func (k *keptBases) addLocked(b keptBase) {
	k.mu.kept = append(k.mu.kept, b)
	k.mu.bytes += b.size
	for len(k.mu.kept) > 1 && (len(k.mu.kept) > basisKeepFiles || k.mu.bytes > basisKeepBytes) {
		old := k.mu.kept[0]
		k.mu.kept = k.mu.kept[1:]
		k.mu.bytes -= old.size
		if err := os.Remove(filepath.Join(k.dir, old.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.log.Debug("drop a kept version", "name", old.name, "err", err)
		}
	}
}

// load lists the versions kept before a restart, oldest first.
func (k *keptBases) load() {
	ents, err := os.ReadDir(k.dir)
	if err != nil {
		return
	}
	type found struct {
		keptBase
		at int64
	}
	var all []found
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || len(e.Name()) != basisNameLength {
			continue
		}
		all = append(all, found{keptBase{e.Name(), fi.Size()}, fi.ModTime().UnixNano()})
	}
	slices.SortFunc(all, func(a, b found) int { return int(min(max(a.at-b.at, -1), 1)) })
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, b := range all {
		k.addLocked(b.keptBase)
	}
}

// read returns bytes [from, to) of base from the version kept under its
// file hash, every block checked.
func (k *keptBases) read(base patchBase, from, to int64) ([]byte, error) {
	chunks := make([]chunk.Chunk, len(base.blocks))
	for i, b := range base.blocks {
		chunks[i] = chunk.Chunk{Offset: base.starts[i], Length: int(b.Size), Hash: b.Hash}
	}
	fh := chunk.FileHash(chunks)
	p := filepath.Join(k.dir, hex.EncodeToString(fh[:]))
	// Only a regular file: a link made while a symlink stood at the
	// program's path must not lead a read outside the share.
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("no kept version %s", fh.Short())
	}
	file, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("no kept version %s: %w", fh.Short(), err)
	}
	defer file.Close()
	return base.assemble(from, to, func(i int, buf []byte) bool {
		n, err := file.ReadAt(buf, base.starts[i])
		return err == nil && n == len(buf) && block.Sum(buf) == base.blocks[i].Hash
	})
}
