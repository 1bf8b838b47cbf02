package index

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// lstatAt (fstatat relative to the folder on Linux) says what os.Lstat says
// of every kind of entry a share can hold.
func TestLstatAtMatchesLstat(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "file"), []byte("12345"), 0o640))
	must(os.Mkdir(filepath.Join(dir, "folder"), 0o750|os.ModeSticky))
	must(os.Chmod(filepath.Join(dir, "folder"), 0o750|os.ModeSticky))
	must(os.Symlink("file", filepath.Join(dir, "link")))
	must(os.Symlink("nowhere", filepath.Join(dir, "dangling")))
	must(os.WriteFile(filepath.Join(dir, "exec"), nil, 0o755))
	must(os.Chmod(filepath.Join(dir, "exec"), 0o755|os.ModeSetuid|os.ModeSetgid))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	d, err := os.Open(dir)
	must(err)
	defer d.Close()
	for _, name := range []string{"file", "folder", "link", "dangling", "exec", "fifo"} {
		got, err := lstatAt(d, name)
		must(err)
		want, err := os.Lstat(filepath.Join(dir, name))
		must(err)
		if got.Name() != want.Name() || got.Mode() != want.Mode() || got.IsDir() != want.IsDir() ||
			!got.ModTime().Equal(want.ModTime()) || !want.IsDir() && got.Size() != want.Size() || inode(got) != inode(want) {
			t.Errorf("%s: lstatAt says %v %v %d %v inode %d; os.Lstat %v %v %d %v inode %d", name,
				got.Name(), got.Mode(), got.Size(), got.ModTime(), inode(got),
				want.Name(), want.Mode(), want.Size(), want.ModTime(), inode(want))
		}
		gc, gok := ctimeOf(got)
		wc, wok := ctimeOf(want)
		if gc != wc || gok != wok {
			t.Errorf("%s: ctime %d %v, want %d %v", name, gc, gok, wc, wok)
		}
	}
	if _, err := lstatAt(d, "missing"); !os.IsNotExist(err) || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Errorf("missing entry: %v, want a not-exist error naming the path", err)
	}
}
