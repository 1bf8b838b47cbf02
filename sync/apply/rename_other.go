//go:build !linux

package apply

// renameNoReplace renames oldName in oldDir to newName in newDir only if
// newName does not exist; it fails with EEXIST otherwise.
func renameNoReplace(oldDir int, oldName string, newDir int, newName string) error {
	return linkNoReplace(oldDir, oldName, newDir, newName)
}

// exchange swaps two entries atomically where the system can; here it
// cannot.
func exchange(aDir int, aName string, bDir int, bName string) error {
	return errNoExchange
}
