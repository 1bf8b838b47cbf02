//go:build !unix

package apply

import "io/fs"

func inode(fs.FileInfo) uint64 { return 0 }
