//go:build !unix

package daemon

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile without flock: an exclusive create. A crashed daemon leaves the
// file behind; the error names it so the user can remove it.
func lockFile(path string, wait bool) (func(), error) {
	f, err := os.OpenFile(path+".held", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, errLocked
	}
	if err != nil {
		return nil, err
	}
	return func() { f.Close(); os.Remove(path + ".held") }, nil
}
