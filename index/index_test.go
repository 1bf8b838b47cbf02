package index

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func testKey(t testing.TB, seed byte) share.Key {
	var s share.Secret
	s[0] = seed
	return share.FromSecret(s)
}

// env is a share on disk with its index.
type env struct {
	t    testing.TB
	dir  string // index folder
	root string // share folder
	key  share.Key
	db   *DB
	sh   *Share
}

func newEnv(t testing.TB) *env {
	e := &env{t: t, dir: t.TempDir(), root: t.TempDir(), key: testKey(t, 1)}
	e.open()
	return e
}

func (e *env) open() {
	db, err := Open(e.dir, Options{Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	sh, err := db.Share(e.key, e.root, 0xA1)
	if err != nil {
		e.t.Fatal(err)
	}
	e.db, e.sh = db, sh
	e.t.Cleanup(func() { e.db.Close() })
}

func (e *env) reopen() {
	if err := e.db.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *env) write(p string, data []byte) {
	e.t.Helper()
	abs := filepath.Join(e.root, p)
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(abs, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) scan(paths ...record.Path) ScanResult {
	e.t.Helper()
	res, err := e.sh.Scan(context.Background(), ScanOptions{Paths: paths})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) lookup(p string) (record.Record, bool) {
	e.t.Helper()
	en, ok, err := e.sh.Lookup(record.Path(p))
	if err != nil {
		e.t.Fatal(err)
	}
	return en.Record, ok
}

func (e *env) live(t testing.TB) map[string]record.Record {
	m := map[string]record.Record{}
	if err := e.sh.Records(func(en Entry) error {
		if !en.Record.Deleted {
			m[string(en.Record.Path)] = en.Record
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestScanMakesRecords(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", []byte("hello"))
	e.write("dir/big.bin", randBytes(1, 700<<10))
	e.write("dir/empty", nil)
	if err := os.Mkdir(filepath.Join(e.root, "emptydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../elsewhere", filepath.Join(e.root, "dir/link")); err != nil {
		t.Fatal(err)
	}
	res := e.scan()
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if res.Records != 6 || res.Hashed != 3 || res.HashedBytes != 5+700<<10 {
		t.Fatalf("result %+v, want 6 records, 3 files hashed", res)
	}
	recs := e.live(t)
	if len(recs) != 6 {
		t.Fatalf("records: %v", recs)
	}
	big := recs["dir/big.bin"]
	var sum int64
	for _, b := range big.Blocks {
		sum += int64(b.Size)
	}
	if big.Kind != record.File || sum != 700<<10 || len(big.Blocks) < 2 || big.Mode != 0o644 {
		t.Fatalf("big file record: %d blocks summing to %d, mode %o", len(big.Blocks), sum, big.Mode)
	}
	if l := recs["dir/link"]; l.Kind != record.Symlink || l.Target != "../elsewhere" {
		t.Fatalf("symlink record: %+v", l)
	}
	if d := recs["emptydir"]; d.Kind != record.Dir || d.Mode != 0o700 {
		t.Fatalf("dir record: %+v", d)
	}
	if r := recs["a.txt"]; r.ModifiedBy != 0xA1 || r.Version.Get(0xA1) == 0 {
		t.Fatalf("a.txt: modified by %x, version %v", r.ModifiedBy, r.Version)
	}
	_, n, err := e.sh.TreeRoot()
	if err != nil || n != 6 {
		t.Fatalf("tree count %d, %v", n, err)
	}
}

func TestRescanUnchangedReadsNothing(t *testing.T) {
	e := newEnv(t)
	for i := range 50 {
		e.write(filepath.Join("d", string(rune('a'+i%26)), "f"+string(rune('a'+i/26))), randBytes(uint64(i), 3000))
	}
	first := e.scan()
	root1, _, _ := e.sh.TreeRoot()
	again := e.scan()
	if again.Hashed != 0 || again.HashedBytes != 0 || again.Records != 0 {
		t.Fatalf("rescan of an unchanged tree: %+v (first %+v)", again, first)
	}
	root2, _, _ := e.sh.TreeRoot()
	if root1 != root2 {
		t.Fatal("root changed on an unchanged rescan")
	}
	// A restart keeps the root and the state: still nothing read.
	e.reopen()
	root3, _, err := e.sh.TreeRoot()
	if err != nil || root3 != root1 {
		t.Fatalf("root after restart %x, want %x (%v)", root3[:4], root1[:4], err)
	}
	if res := e.scan(); res.Hashed != 0 || res.Records != 0 {
		t.Fatalf("rescan after restart: %+v", res)
	}
}

func TestEditAppendDeleteRename(t *testing.T) {
	e := newEnv(t)
	data := randBytes(7, 400<<10)
	e.write("f.bin", data)
	e.write("g.txt", []byte("gone soon"))
	e.scan()
	v1, _ := e.lookup("f.bin")

	// Edit one byte in the middle, same size; set a new mtime so the change is visible.
	data[200<<10] ^= 0xff
	e.write("f.bin", data)
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(e.root, "f.bin"), future, future)
	res := e.scan()
	if res.Hashed != 1 || res.Records != 1 {
		t.Fatalf("edit: %+v", res)
	}
	v2, _ := e.lookup("f.bin")
	if v2.Version.Compare(v1.Version) != record.Greater || v2.FileHash == v1.FileHash {
		t.Fatalf("edit: version %v after %v, hash changed %v", v2.Version, v1.Version, v2.FileHash != v1.FileHash)
	}
	changed := 0
	for i := range min(len(v1.Blocks), len(v2.Blocks)) {
		if v1.Blocks[i] != v2.Blocks[i] {
			changed++
		}
	}
	if changed == 0 || changed > 2 {
		t.Fatalf("a one-byte edit changed %d blocks", changed)
	}

	// Append.
	f, _ := os.OpenFile(filepath.Join(e.root, "f.bin"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("more"))
	f.Close()
	e.scan()
	v3, _ := e.lookup("f.bin")
	if v3.Size != int64(len(data)+4) || v3.Version.Compare(v2.Version) != record.Greater {
		t.Fatalf("append: size %d, version %v", v3.Size, v3.Version)
	}

	// Mode change: a new record, no rehash.
	os.Chmod(filepath.Join(e.root, "f.bin"), 0o600)
	if res := e.scan(); res.Hashed != 0 || res.Records != 1 {
		t.Fatalf("chmod: %+v", res)
	}
	if v, _ := e.lookup("f.bin"); v.Mode != 0o600 || v.FileHash != v3.FileHash {
		t.Fatalf("chmod: mode %o", v.Mode)
	}

	// Delete.
	os.Remove(filepath.Join(e.root, "g.txt"))
	res = e.scan()
	g, ok := e.lookup("g.txt")
	if !ok || !g.Deleted || res.Deleted != 1 || g.ModifiedBy != 0xA1 {
		t.Fatalf("delete: %+v, result %+v", g, res)
	}
	if _, ok, _ := e.sh.LocalState("g.txt"); ok {
		t.Fatal("local state of a deleted file kept")
	}
	if res := e.scan(); res.Records != 0 {
		t.Fatalf("a tombstone was made twice: %+v", res)
	}

	// Rename: the old path gets a tombstone, the new one the same content,
	// and the block index finds the blocks at the new path only.
	before, _ := e.lookup("f.bin")
	if err := os.Rename(filepath.Join(e.root, "f.bin"), filepath.Join(e.root, "moved.bin")); err != nil {
		t.Fatal(err)
	}
	e.scan()
	old, _ := e.lookup("f.bin")
	moved, ok := e.lookup("moved.bin")
	if !old.Deleted || !ok || moved.FileHash != before.FileHash {
		t.Fatalf("rename: old deleted %v, new hash equal %v", old.Deleted, moved.FileHash == before.FileHash)
	}
	locs, err := e.db.Locate(moved.Blocks[1].Hash)
	if err != nil || len(locs) != 1 || locs[0].Path != "moved.bin" || locs[0].Offset != int64(moved.Blocks[0].Size) ||
		locs[0].Length != moved.Blocks[1].Size || locs[0].Share != e.key.ID() {
		t.Fatalf("locate after rename: %+v, %v", locs, err)
	}
	// Reading the location gives the block.
	got := make([]byte, locs[0].Length)
	fh, _ := os.Open(filepath.Join(e.root, locs[0].Path.OS()))
	fh.ReadAt(got, locs[0].Offset)
	fh.Close()
	if blockHash(got) != moved.Blocks[1].Hash {
		t.Fatal("location does not hold the block")
	}
}

func TestIgnoreAndMetaFolder(t *testing.T) {
	e := newEnv(t)
	e.write(".blueshiftignore", []byte("*.tmp\nbuild/\n"))
	e.write("keep.txt", []byte("k"))
	e.write("x.tmp", []byte("t"))
	e.write("build/out", []byte("o"))
	e.write("src/.blueshiftignore", []byte("gen/\n"))
	e.write("src/gen/a", []byte("a"))
	e.write("src/main.go", []byte("m"))
	e.write(".blueshift/versions/old", []byte("v"))
	e.write("nested/.blueshift/marker", []byte("n"))
	e.write("nested/inner.txt", []byte("i"))
	res := e.scan()
	got := e.live(t)
	want := []string{".blueshiftignore", "keep.txt", "src", "src/.blueshiftignore", "src/main.go", "nested"}
	if len(got) != len(want) {
		t.Fatalf("indexed %v, want %v (%+v)", keys(got), want, res)
	}
	for _, p := range want {
		if _, ok := got[p]; !ok {
			t.Fatalf("indexed %v, want %v", keys(got), want)
		}
	}
	// Ignoring an indexed file later does not delete it for the peers.
	e.write(".blueshiftignore", []byte("*.tmp\nbuild/\nkeep.txt\n"))
	e.scan()
	if r, _ := e.lookup("keep.txt"); r.Deleted {
		t.Fatal("a newly ignored file got a tombstone")
	}
}

func keys(m map[string]record.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	e.write("good.txt", []byte("fine"))
	e.write("bad\xffname", []byte("x"))
	e.write(`back\slash`, []byte("x"))
	if err := syscall.Mkfifo(filepath.Join(e.root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.write("vanish.txt", []byte("v"))
	e.write("grows.txt", []byte("g"))
	e.write("becomes-dir.txt", []byte("d"))
	e.sh.testHookBeforeOpen = func(abs string) {
		switch filepath.Base(abs) {
		case "vanish.txt":
			os.Remove(abs)
		case "becomes-dir.txt":
			os.Remove(abs)
			os.Mkdir(abs, 0o755)
		}
	}
	e.sh.testHookAfterRead = func(abs string) {
		if filepath.Base(abs) == "grows.txt" {
			f, _ := os.OpenFile(abs, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more"))
			f.Close()
		}
	}
	res := e.scan()
	wantErr := map[string]error{
		"bad\xffname":     ErrBadName,
		`back\slash`:      ErrBadName,
		"fifo":            ErrUnsupported,
		"vanish.txt":      ErrVanished,
		"grows.txt":       ErrChanged,
		"becomes-dir.txt": ErrChanged,
	}
	if len(res.Errors) != len(wantErr) {
		t.Fatalf("errors %v, want %d", res.Errors, len(wantErr))
	}
	for _, err := range res.Errors {
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *PathError", err)
		}
		class, ok := wantErr[pe.Path]
		if !ok || !errors.Is(err, class) || !strings.Contains(err.Error(), strconv.Quote(pe.Path)) || pe.Hint == "" {
			t.Errorf("error %v for %q: want class %v, the path and a hint", err, pe.Path, class)
		}
	}
	if _, ok := e.lookup("good.txt"); !ok {
		t.Fatal("the scan did not go on past bad inputs")
	}
	// The next scan picks up what was busy.
	e.sh.testHookBeforeOpen, e.sh.testHookAfterRead = nil, nil
	res = e.scan()
	if r, ok := e.lookup("grows.txt"); !ok || r.Size != 5 {
		t.Fatalf("grows.txt not picked up by the next scan: %+v %+v", r, res)
	}
}

func TestPartialScan(t *testing.T) {
	e := newEnv(t)
	e.write("a/x", []byte("x"))
	e.write("a/y", []byte("y"))
	e.write("b/z", []byte("z"))
	e.scan()
	e.write("a/x", []byte("x changed"))
	os.Remove(filepath.Join(e.root, "a/y"))
	e.write("b/z", []byte("z changed, not scanned"))
	e.write("a/new", []byte("new"))
	res := e.scan("a")
	if res.Hashed != 2 || res.Records != 3 || res.Deleted != 1 {
		t.Fatalf("partial scan of a: %+v", res)
	}
	if r, _ := e.lookup("b/z"); r.Size != 1 {
		t.Fatal("a partial scan touched a path outside its scope")
	}
	if r, _ := e.lookup("a/y"); !r.Deleted {
		t.Fatal("a partial scan missed a deletion in its scope")
	}
	// A path that no longer exists, named directly.
	os.Remove(filepath.Join(e.root, "b/z"))
	if res := e.scan("b/z"); res.Deleted != 1 {
		t.Fatalf("partial scan of a deleted file: %+v", res)
	}
}

func TestCommitFromPeer(t *testing.T) {
	a := newEnv(t)
	b := newEnv(t)
	b.key = a.key
	b.db.Close()
	b.open()
	a.write("doc.txt", randBytes(3, 100<<10))
	a.write("d/e.txt", []byte("e"))
	a.scan()

	var heard []record.Envelope
	var mu sync.Mutex
	cancel := b.sh.Subscribe(func(u Update) {
		mu.Lock()
		heard = append(heard, u.Envelopes...)
		mu.Unlock()
	})
	defer cancel()
	err := a.sh.Records(func(en Entry) error {
		// The engine would write the file, then commit with what it wrote.
		var st *FileState
		if en.Record.Kind == record.File {
			b.write(en.Record.Path.OS(), mustRead(t, filepath.Join(a.root, en.Record.Path.OS())))
			fi, _ := os.Lstat(filepath.Join(b.root, en.Record.Path.OS()))
			s := stateOf(fi)
			st = &s
		}
		return b.sh.Commit(en.Envelope, st)
	})
	if err != nil {
		t.Fatal(err)
	}
	ra, _, _ := a.sh.TreeRoot()
	rb, nb, _ := b.sh.TreeRoot()
	if ra != rb || nb != 3 || len(heard) != 3 {
		t.Fatalf("after commit roots differ (%v) or count %d, heard %d", ra != rb, nb, len(heard))
	}
	doc, _ := b.lookup("doc.txt")
	if locs, err := b.db.Locate(doc.Blocks[0].Hash); err != nil || len(locs) != 1 || locs[0].Path != "doc.txt" {
		t.Fatalf("block index after commit: %+v %v", locs, err)
	}
	// B's scan finds nothing new: the committed state matches its disk.
	if res := b.scan(); res.Hashed != 0 || res.Records != 0 {
		t.Fatalf("scan after commit: %+v", res)
	}
	// An envelope of another share is refused.
	other := newEnv(t)
	other.key = testKey(t, 9)
	other.db.Close()
	other.open()
	other.write("doc.txt", []byte("forged"))
	other.scan()
	forged, _, _ := other.sh.Lookup("doc.txt")
	if err := b.sh.Commit(forged.Envelope, nil); err == nil {
		t.Fatal("an envelope signed by another share was committed")
	}
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadOnlyKeyMakesNoRecords(t *testing.T) {
	e := newEnv(t)
	ro, err := e.key.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	e.key = ro
	e.db.Close()
	e.open()
	e.write("f", randBytes(5, 5000))
	res := e.scan()
	if !res.ReadOnly || res.Records != 0 || res.Hashed != 1 {
		t.Fatalf("read-only scan: %+v", res)
	}
	st, ok, _ := e.sh.LocalState("f")
	if !ok || len(st.Blocks) != 1 {
		t.Fatalf("read-only scan local state: %+v", st)
	}
	if locs, _ := e.db.Locate(st.Blocks[0].Hash); len(locs) != 1 {
		t.Fatalf("block of a read-only share not located: %v", locs)
	}
	if res := e.scan(); res.Hashed != 0 {
		t.Fatalf("read-only rescan read files: %+v", res)
	}
}

func TestProgressReported(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		e.write("f"+string(rune('a'+i)), randBytes(uint64(i), 10000))
	}
	var last Progress
	_, err := e.sh.Scan(context.Background(), ScanOptions{Progress: func(p Progress) { last = p }, ProgressInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !last.Done || last.FilesDone != 20 || last.BytesDone != 200000 || last.BytesTotal != 200000 {
		t.Fatalf("final progress %+v", last)
	}
}

func TestMissingRootIsNotDeletion(t *testing.T) {
	e := newEnv(t)
	e.write("f", []byte("x"))
	e.scan()
	os.RemoveAll(e.root)
	if _, err := e.sh.Scan(context.Background(), ScanOptions{}); err == nil || !strings.Contains(err.Error(), "mounted") {
		t.Fatalf("scan of a missing folder: %v", err)
	}
	if r, _ := e.lookup("f"); r.Deleted {
		t.Fatal("a missing share folder deleted its files")
	}
}

func TestCorruptIndex(t *testing.T) {
	e := newEnv(t)
	e.write("f", []byte("x"))
	e.scan()
	e.db.Close()
	ents, _ := os.ReadDir(e.dir)
	for _, en := range ents {
		p := filepath.Join(e.dir, en.Name())
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			os.WriteFile(p, bytes.Repeat([]byte{0x5a}, int(max(fi.Size(), 64))), 0o600)
		}
	}
	_, err := Open(e.dir, Options{Logger: testLogger(t)})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "delete") {
		t.Fatalf("open of a corrupt index: %v", err)
	}
	e.db, _ = Open(t.TempDir(), Options{}) // for the cleanup's Close
}

// A view keeps answering for the tree as it was, however the share changes
// after it was taken: a diff reads its local side from one while the puller
// applies what the diff finds.
func TestViewIsFrozen(t *testing.T) {
	e := newEnv(t)
	for i := range 50 {
		e.write("d/f"+strconv.Itoa(i), randBytes(uint64(i), 100))
	}
	e.scan()
	view, err := e.sh.View()
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	before, err := view.Nodes(context.Background(), []merkle.Prefix{{}})
	if err != nil {
		t.Fatal(err)
	}
	e.write("d/new", []byte("new"))
	e.write("d/f7", []byte("changed"))
	e.scan()
	root, count, err := e.sh.TreeRoot()
	if err != nil {
		t.Fatal(err)
	}
	if root == view.Root || count != view.Count+1 {
		t.Fatalf("the share did not move: root equal %v, count %d then %d", root == view.Root, view.Count, count)
	}
	after, err := view.Nodes(context.Background(), []merkle.Prefix{{}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatal("the view's root node changed after commits")
	}
	if view.Count != 51 { // 50 files and their folder
		t.Fatalf("view count %d, want 51", view.Count)
	}
}
