package index

import (
	"errors"
	"fmt"

	"github.com/blueshift-sync/blueshift/index/store"
)

// Error classes, tested with errors.Is. A scan reports problems with single
// paths as *PathError values wrapping one of them, and goes on.
var (
	// ErrCorrupt: the database holds bytes it cannot read back. Delete the
	// index folder and restart; folders are rescanned, peers resend records.
	ErrCorrupt = store.ErrCorrupt
	// ErrChanged: a file changed while it was read. The next scan retries.
	ErrChanged = errors.New("file changed while it was read")
	// ErrVanished: a path disappeared between the walk and the read.
	ErrVanished = errors.New("file vanished while it was scanned")
	// ErrUnreadable: the file or folder could not be read.
	ErrUnreadable = errors.New("cannot read")
	// ErrBadName: the name cannot be synced (invalid UTF-8, too long, a
	// backslash...).
	ErrBadName = errors.New("name cannot be synced")
	// ErrUnsupported: a FIFO, socket or device file; such files are not synced.
	ErrUnsupported = errors.New("unsupported file type")
)

// PathError is a problem with one path of a share.
type PathError struct {
	Path string // share-relative, as found on disk (may be invalid UTF-8)
	Err  error  // wraps one of the classes above
	Hint string // what the user can do
}

func (e *PathError) Error() string {
	msg := fmt.Sprintf("%q: %v", e.Path, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *PathError) Unwrap() error { return e.Err }

func pathErr(path string, class error, cause error, hint string) *PathError {
	err := class
	if cause != nil {
		err = fmt.Errorf("%w: %w", class, cause)
	}
	return &PathError{Path: path, Err: err, Hint: hint}
}
