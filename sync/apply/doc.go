// Package apply is the only part of Blueshift that changes the user's files.
// It turns decisions of the sync engine into writes inside one share's folder,
// so that a crash never leaves a half-written file at a real path, a file the
// user changed meanwhile is never overwritten, a replaced or deleted file is
// kept in the versions folder first, and no write ever lands outside the share.
//
// Nouns:
//   - Root: one share's folder, opened once (apply.Open). Every operation goes
//     through an os.Root, so no path, however it is spelled and whatever
//     symlinks the tree holds, can reach outside the share.
//   - FileState: what is at a path now (type, size, mtime, inode). Every
//     replacing or deleting call takes the state the caller expects and fails
//     with ErrChanged if the path holds something else.
//   - Temp: a partial file under .blueshift/tmp/, keyed by target path and
//     content hash, that survives restarts: a sidecar lists the byte ranges
//     already written (fsynced, or noted at once and checked against the
//     block's hash before reuse), so an interrupted or killed pull resumes.
//     It is never preallocated, and OpenTemp refuses (ENOSPC) a pull the
//     disk has no room for (OpenSparseTemp: room for its data only). A range
//     marked Hole (all zeros) is never written, and Commit extends the file
//     to its length by truncation: holes stay holes.
//   - Version: a replaced or deleted file kept under .blueshift/versions/ as
//     DIR/STEM~YYYYMMDD-HHMMSS.EXT (UTC), pruned by count and age.
//   - Conflict copy: NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICE.EXT (UTC).
//
// Layout of the metadata folder, which is never synced and never written by a
// peer's path:
//
//	SHARE/.blueshift/tmp/<random>.tmp        one-shot temp of WriteFile
//	SHARE/.blueshift/tmp/<key>.part          resumable temp (Temp)
//	SHARE/.blueshift/tmp/<key>.done          its sidecar: ranges written
//	SHARE/.blueshift/versions/DIR/STEM~STAMP.EXT
//
// Path safety, beyond what os.Root guarantees (os.Root follows symlinks as long
// as they stay inside the root, and Chmod/Chtimes race with a symlink swap):
// every directory above the target must be a real directory, component by
// component, and a symlink there is refused (ErrUnsafePath), so a share cannot
// make us write through a link it contains, even one that points inside it.
// The hot paths (Stat, Stage, Install, WriteFile, Commit, Symlink, versions)
// do this through a bounded cache of directory descriptors (dirs.go): each is
// opened with O_NOFOLLOW from its cached parent, revalidated on every use by
// one fstatat per component (still that directory, still not a symlink), and
// the create, stat, rename or link is then made relative to that descriptor
// with a one-component name, so a batch walks each parent once, not every
// component of every path for every call.
// The final component is never followed: files are replaced by rename,
// symlinks are created beside and renamed over, opened files are checked to be
// the regular file Lstat saw. Mutating calls hold one lock per Root across
// "check parents, compare expected state, keep version, rename", so two applies
// (for example a peer's symlink and a file below it) cannot interleave. What
// remains is a local process racing us by swapping a directory for a symlink
// between our check and our rename: os.Root still keeps that write inside the
// share.
//
// Concurrency: one Root per share per process (it removes stale one-shot
// temps when it opens). All methods are safe for concurrent use; calls on
// different paths proceed in parallel except for the short commit step
// (SetAttrs calls of different paths share even that).
// A Temp is safe for concurrent WriteAt from several goroutines.
package apply
