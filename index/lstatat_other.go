//go:build !linux

package index

import (
	"io/fs"
	"os"
	"path/filepath"
)

// lstatAt returns the attributes of entry name of the open folder dir, not
// following a symlink (Linux asks relative to the folder: lstatat_linux.go).
func lstatAt(dir *os.File, name string) (fs.FileInfo, error) {
	return os.Lstat(filepath.Join(dir.Name(), name))
}
