//go:build !unix

package index

import "io/fs"

func inode(fs.FileInfo) uint64 { return 0 }

const openFlags = 0
