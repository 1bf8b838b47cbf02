// Package reconcile decides, record by record, how a device's state and a
// peer's state become one.
//
// The nouns: a Side is one device's record for a path together with the leaf
// (hash of its stored envelope); an Outcome is what the local device does
// with a remote record. Decide is a pure function: every device, given the
// same two records, reaches the same verdict about which one wins, so a
// conflict ends with the same winner everywhere and exactly one conflict copy
// of the loser's content.
//
// The rules, in order:
//
//  1. Version vectors decide when they are ordered: the newer record wins.
//  2. Concurrent records (or equal vectors with different envelopes) are a
//     conflict. Delete versus edit keeps the edit.
//  3. Otherwise the later ModTime wins; on a tie the larger ModifiedBy
//     device; on a tie the larger leaf. The device that holds the losing
//     record on disk moves its file aside as NAME.sync-conflict-… before it
//     takes the winner; the device that holds the winner ignores the loser.
//  4. If both sides already hold the same content, no conflict copy is made:
//     the winner's envelope is simply adopted.
package reconcile

import (
	"bytes"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
)

// Outcome is what to do with a remote record.
type Outcome int

const (
	// Keep: the local record is as new or wins; nothing to do.
	Keep Outcome = iota
	// Take: the remote record is newer (or wins a conflict with no local
	// content at stake); make the disk match it.
	Take
	// TakeAfterCopy: a conflict the remote record wins while the local file
	// holds different content: move the local file aside as a conflict copy,
	// then take the remote record.
	TakeAfterCopy
)

func (o Outcome) String() string {
	switch o {
	case Keep:
		return "keep"
	case Take:
		return "take"
	case TakeAfterCopy:
		return "take-after-copy"
	}
	return "outcome?"
}

// Side is one device's view of a path.
type Side struct {
	Rec  record.Record
	Leaf merkle.Leaf
}

// Decide says what the local device does with remote, given its own record
// for the same path (nil if it has none).
func Decide(local *Side, remote Side) Outcome {
	if local == nil {
		return Take
	}
	if local.Leaf == remote.Leaf {
		return Keep
	}
	switch local.Rec.Version.Compare(remote.Rec.Version) {
	case record.Greater:
		return Keep
	case record.Lesser:
		return Take
	}
	// Concurrent, or equal vectors on different envelopes: a conflict.
	if SameContent(local.Rec, remote.Rec) {
		if Wins(remote, *local) {
			return Take
		}
		return Keep
	}
	switch {
	case remote.Rec.Deleted && !local.Rec.Deleted:
		return Keep // delete versus edit keeps the edit
	case local.Rec.Deleted && !remote.Rec.Deleted:
		return Take
	}
	if !Wins(remote, *local) {
		return Keep
	}
	if local.Rec.Kind == record.Dir && remote.Rec.Kind == record.Dir {
		return Take // a directory has no content to lose
	}
	return TakeAfterCopy
}

// Wins reports whether a beats b in a conflict. It is a strict total order on
// distinct envelopes, so two devices always agree.
func Wins(a, b Side) bool {
	if !a.Rec.ModTime.Equal(b.Rec.ModTime) {
		return a.Rec.ModTime.After(b.Rec.ModTime)
	}
	if a.Rec.ModifiedBy != b.Rec.ModifiedBy {
		return a.Rec.ModifiedBy > b.Rec.ModifiedBy
	}
	return bytes.Compare(a.Leaf[:], b.Leaf[:]) > 0
}

// sameContent reports whether two records put the same thing on disk, apart
// from the modification time.
func SameContent(a, b record.Record) bool {
	if a.Deleted || b.Deleted {
		return a.Deleted == b.Deleted
	}
	return a.Kind == b.Kind && a.FileHash == b.FileHash && a.Size == b.Size &&
		a.Target == b.Target && a.Mode == b.Mode
}
