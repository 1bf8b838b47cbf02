package record

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Path limits. They match common filesystems (NAME_MAX, PATH_MAX), so a
// path one device accepts can be written by the others.
const (
	MaxNameLen = 255  // bytes in one component
	MaxPathLen = 4096 // bytes in a whole path
)

// MetaDir is the per-share metadata folder at the share root (temp files,
// versions). It is never synced, so no record path starts with it.
const MetaDir = ".blueshift"

// ErrInvalidPath is the class of every path error.
var ErrInvalidPath = errors.New("invalid path")

// ParsePath validates s as a share-relative path.
func ParsePath(s string) (Path, error) {
	if why := pathProblem(s); why != "" {
		return "", &pathError{path: s, why: why}
	}
	return Path(s), nil
}

// FromOS converts a path relative to the share root, in the operating
// system's form (filepath.Rel's result), into a Path.
func FromOS(rel string) (Path, error) {
	if filepath.Separator != '/' && strings.ContainsRune(rel, '/') {
		// On Windows a '/' would silently become a separator; refuse it
		// like a backslash is refused elsewhere.
		return "", &pathError{path: rel, why: "contains '/' in an OS path"}
	}
	return ParsePath(filepath.ToSlash(rel))
}

// String returns the path as written.
func (p Path) String() string { return string(p) }

// OS returns the path in the operating system's form, relative to the share
// root.
func (p Path) OS() string { return filepath.FromSlash(string(p)) }

// Dir returns the parent directory, or "" for a top-level path ("" stands
// for the share root and is not a valid record path).
func (p Path) Dir() Path {
	i := strings.LastIndexByte(string(p), '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Base returns the last component.
func (p Path) Base() string {
	return string(p[strings.LastIndexByte(string(p), '/')+1:])
}

// Join returns dir/name, validated. dir may be "" (the share root).
func Join(dir Path, name string) (Path, error) {
	if dir == "" {
		return ParsePath(name)
	}
	return ParsePath(string(dir) + "/" + name)
}

// pathProblem returns why s is not a valid Path, or "".
func pathProblem(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > MaxPathLen:
		return fmt.Sprintf("longer than %d bytes", MaxPathLen)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains NUL"
	case strings.IndexByte(s, '\\') >= 0:
		return "contains a backslash"
	case s[0] == '/':
		return "absolute"
	case s[len(s)-1] == '/':
		return "ends with '/'"
	}
	first := true
	for rest := s; ; {
		name, tail, more := strings.Cut(rest, "/")
		switch {
		case name == "":
			return "has an empty component"
		case name == "." || name == "..":
			return fmt.Sprintf("has a %q component", name)
		case len(name) > MaxNameLen:
			return fmt.Sprintf("has a component longer than %d bytes", MaxNameLen)
		case first && name == MetaDir:
			return fmt.Sprintf("is inside the %s metadata folder, which is never synced", MetaDir)
		}
		if !more {
			return ""
		}
		first, rest = false, tail
	}
}

type pathError struct {
	path, why string
}

func (e *pathError) Error() string {
	return fmt.Sprintf("invalid path %q: %s", e.path, e.why)
}

func (e *pathError) Unwrap() error { return ErrInvalidPath }
