package index

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blueshift-sync/blueshift/index/record"
)

// RemovedMarker is the file `share remove` leaves in a removed share's
// .blueshift folder. A folder whose .blueshift holds it is no longer a
// nested share: the share around it syncs it again. The .blueshift folder
// itself stays (its versions are the user's files) and is never synced.
const RemovedMarker = "removed"

const removedNote = "This folder's share was removed from this device (blueshift share remove).\n" +
	"A share around it now syncs the folder; this .blueshift folder is never synced.\n" +
	"Adding the folder as a share again deletes this file.\n"

// MarkRemoved records that folder dir is no longer a share, so a share
// around it stops treating it as nested. A folder without a .blueshift
// folder needs nothing.
func MarkRemoved(dir string) error {
	meta := filepath.Join(dir, record.MetaDir)
	fi, err := os.Lstat(meta)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && !fi.IsDir() {
		return nil // not a share's metadata folder: nothing to mark
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(meta, RemovedMarker), []byte(removedNote), 0o644)
	}
	if err != nil {
		return fmt.Errorf("mark %s as no longer a share: %w", dir, err)
	}
	return nil
}

// UnmarkRemoved makes folder dir a nested share boundary again, before it
// is synced as a share once more.
func UnmarkRemoved(dir string) error {
	err := os.Remove(filepath.Join(dir, record.MetaDir, RemovedMarker))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mark %s as a share again: %w", dir, err)
	}
	return nil
}
