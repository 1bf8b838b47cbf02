// Package ignore decides which paths of a share the index leaves alone,
// from the .blueshiftignore files in the share (gitignore syntax).
//
// Every folder may hold a .blueshiftignore; its patterns apply to the paths
// below that folder, relative to it, as in git. A path is ignored when the
// rules of any folder above it ignore it (a negation "!p" only undoes a
// match of the same file, not of a parent folder's file). An ignored folder
// is not descended into. The ignore files themselves are ordinary synced
// files, so every device of a share follows the same rules. The index
// applies them to every path it scans, whether a full walk or the watcher
// found it; a path that becomes ignored keeps its record (peers keep their
// copies) and is no longer synced.
//
// Patterns are compiled by github.com/sabhiram/go-gitignore. Rules values are
// immutable and safe for concurrent use; Child returns a new value.
package ignore

import (
	"strings"

	gitignore "github.com/sabhiram/go-gitignore"
)

// FileName is the name of an ignore file.
const FileName = ".blueshiftignore"

// MaxFileSize bounds the ignore file the scanner reads; a larger one is
// reported and not used.
const MaxFileSize = 1 << 20

// Rules are the ignore rules in force in one folder: its own file's and
// those of every folder above it. The nil *Rules ignores nothing.
type Rules struct {
	parent *Rules
	dir    string // slash path of the folder, "" for the share root
	match  *gitignore.GitIgnore
}

// Child returns the rules of folder dir (a share-relative slash path, "" for
// the root) whose ignore file holds content, below r. Empty content adds no
// level.
func (r *Rules) Child(dir string, content []byte) *Rules {
	lines := strings.Split(string(content), "\n")
	m := gitignore.CompileIgnoreLines(lines...)
	return &Rules{parent: r, dir: dir, match: m}
}

// Ignored reports whether the share-relative slash path p is ignored. isDir
// says whether p is a folder (patterns ending in "/" match only folders).
func (r *Rules) Ignored(p string, isDir bool) bool {
	for l := r; l != nil; l = l.parent {
		rel := p
		if l.dir != "" {
			if !strings.HasPrefix(p, l.dir+"/") {
				continue
			}
			rel = p[len(l.dir)+1:]
		}
		if isDir {
			rel += "/"
		}
		if l.match.MatchesPath(rel) {
			return true
		}
	}
	return false
}
