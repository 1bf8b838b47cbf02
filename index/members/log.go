package members

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Error classes, tested with errors.Is.
var (
	// ErrInvalid: bytes that are not a well-formed entry.
	ErrInvalid = errors.New("malformed membership entry")
	// ErrRefused: a well-formed entry this log does not accept: a wrong or
	// missing signature, a signer without the right (removed, a lower
	// level, not an owner), or a change the rules forbid.
	ErrRefused = errors.New("membership change refused")
	// ErrFork: an entry at a position this log already holds another
	// entry at, or one that does not link to the entry before it.
	ErrFork = errors.New("membership log forked")
	// ErrNeedsApproval: a valid change with fewer owner signatures than
	// the threshold; it waits as a pending change for more.
	ErrNeedsApproval = errors.New("membership change needs more owner approvals")
)

// Info is what the log says of one device.
type Info struct {
	Device    Device
	Level     Level
	Owner     bool
	AddedBy   Device
	AddedAt   time.Time
	Removed   bool
	RemovedBy Device
	RemovedAt time.Time
}

// State is a log replayed: who is a member at which level, the owners, the
// threshold and the key epoch. It is a plain value owned by its caller.
type State struct {
	share    [32]byte
	sharePub ed25519.PublicKey
	entries  []*Entry
	members  map[Device]*Info
	order    []Device // in order of addition
	owners   []Device
	k        int
	epoch    uint64
	mounts   map[string][32]byte // mount path -> the nested share
}

// NewState returns the empty log of the share whose ID is share and whose
// public key (which signs the genesis) is sharePub.
func NewState(share [32]byte, sharePub ed25519.PublicKey) *State {
	return &State{share: share, sharePub: sharePub, members: map[Device]*Info{}, mounts: map[string][32]byte{}}
}

// Len is the number of entries.
func (s *State) Len() int { return len(s.entries) }

// Head is the hash of the last entry; zero for an empty log.
func (s *State) Head() Hash {
	if len(s.entries) == 0 {
		return Hash{}
	}
	return s.entries[len(s.entries)-1].hash
}

// Entries returns the entries from seq on; callers must not modify them.
func (s *State) Entries(from int) []*Entry {
	if from < 0 || from > len(s.entries) {
		return nil
	}
	return s.entries[from:]
}

// Mounts are the shares nested in this one, by share-relative path.
func (s *State) Mounts() map[string][32]byte { return maps.Clone(s.mounts) }

// Owners and Threshold are the owner set and k.
func (s *State) Owners() []Device { return slices.Clone(s.owners) }
func (s *State) Threshold() int   { return s.k }

// Epoch is the current key epoch (0 until the first removal).
func (s *State) Epoch() uint64 { return s.epoch }

// Member returns what the log says of d.
func (s *State) Member(d Device) (Info, bool) {
	in, ok := s.members[d]
	if !ok {
		return Info{}, false
	}
	return *in, true
}

// Members returns every device the log names, removed ones too, in order of
// addition.
func (s *State) Members() []Info {
	out := make([]Info, 0, len(s.order))
	for _, d := range s.order {
		out = append(out, *s.members[d])
	}
	return out
}

// active returns d's info if d is a current member.
func (s *State) active(d Device) (*Info, bool) {
	in, ok := s.members[d]
	if !ok || in.Removed {
		return nil, false
	}
	return in, true
}

// Append checks e against the log and adds it. ErrNeedsApproval leaves the
// log as it was: the change is valid but waits for more owners.
func (s *State) Append(e *Entry) error {
	if err := s.check(e); err != nil {
		return err
	}
	s.apply(e)
	return nil
}

// Check reports whether Append would take e, without adding it.
func (s *State) Check(e *Entry) error { return s.check(e) }

func (s *State) check(e *Entry) error {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("membership entry %d (%s by %s): %s: %w", e.Seq, e.Kind, short(e.Author), fmt.Sprintf(format, args...), ErrRefused)
	}
	if e.Share != s.share {
		return refuse("it belongs to another share")
	}
	if e.Seq != uint64(len(s.entries)) {
		if e.Seq < uint64(len(s.entries)) && s.entries[e.Seq].hash == e.hash {
			return fmt.Errorf("membership entry %d: already in the log (a replay): %w", e.Seq, ErrRefused)
		}
		if e.Seq < uint64(len(s.entries)) {
			return fmt.Errorf("membership entry %d by %s: the log already holds another entry there: %w", e.Seq, short(e.Author), ErrFork)
		}
		return refuse("the log has only %d entries", len(s.entries))
	}
	if e.Seq > 0 && e.Prev != s.Head() {
		return fmt.Errorf("membership entry %d by %s: does not follow entry %d: %w", e.Seq, short(e.Author), e.Seq-1, ErrFork)
	}
	if len(s.entries) >= MaxEntries {
		return refuse("the log is full")
	}
	signers := e.Signers()
	if !slices.Contains(signers, e.Author) {
		return refuse("not signed by its author")
	}
	if e.Kind == KindGenesis {
		if len(s.sharePub) != ed25519.PublicKeySize || !ed25519.Verify(s.sharePub, e.signed(), e.ShareSig) {
			return refuse("a genesis not signed by the share key")
		}
		if e.Members[0] != (Member{Device: e.Author, Level: ReadWrite}) {
			return refuse("the genesis does not start with its author at rw")
		}
		seen := map[Device]bool{}
		for _, m := range e.Members {
			if seen[m.Device] {
				return refuse("a member named twice")
			}
			seen[m.Device] = true
		}
		return nil
	}
	// Only current members' signatures count.
	signers = slices.DeleteFunc(signers, func(d Device) bool { _, ok := s.active(d); return !ok })
	author, ok := s.active(e.Author)
	if !ok {
		if in, was := s.members[e.Author]; was && in.Removed {
			return refuse("its author was removed")
		}
		return refuse("its author is not a member")
	}
	owners := 0
	for _, d := range signers {
		if slices.Contains(s.owners, d) {
			owners++
		}
	}
	needOwners := false
	switch e.Kind {
	case KindAdd:
		m := e.Member
		cur, isMember := s.members[m.Device]
		switch {
		case isMember && cur.Removed:
			needOwners = true // a removed device comes back only by the owners
		case isMember && cur.Owner && m.Level < ReadWrite:
			return refuse("an owner must stay rw; change the owners first")
		case isMember && cur.Level == m.Level:
			return refuse("%s is already a member at %s", short(m.Device), m.Level)
		}
		if !isMember && len(s.order) >= MaxMembers {
			return refuse("the share has %d members, the limit", MaxMembers)
		}
		writes := m.Level == ReadWrite || isMember && cur.Level == ReadWrite
		if writes && s.k >= 2 {
			needOwners = true
		}
		if !needOwners && author.Level < max(m.Level, ReadOnly) {
			return refuse("a %s member cannot add a %s member", author.Level, m.Level)
		}
		if !needOwners && isMember && cur.Level > m.Level && author.Level < ReadWrite {
			return refuse("only a writer lowers a member's level")
		}
	case KindRemove:
		target, ok := s.active(e.Member.Device)
		if !ok {
			return refuse("%s is not a member", short(e.Member.Device))
		}
		if e.Epoch != s.epoch+1 {
			return refuse("epoch %d does not follow epoch %d", e.Epoch, s.epoch)
		}
		switch {
		case target.Owner:
			needOwners = true
			if len(s.owners)-1 < s.k {
				return refuse("removing owner %s would leave fewer owners than the threshold %d; lower it first", short(target.Device), s.k)
			}
		case target.Level == ReadWrite && s.k >= 2:
			needOwners = true
		case e.Author == target.Device:
			// a member may always leave
		case author.Level < ReadWrite:
			return refuse("only a writer removes members")
		}
	case KindOwners:
		needOwners = true
		seen := map[Device]bool{}
		for _, d := range e.Owners {
			in, ok := s.active(d)
			if !ok || in.Level != ReadWrite {
				return refuse("owner %s is not a current rw member", short(d))
			}
			if seen[d] {
				return refuse("owner %s named twice", short(d))
			}
			seen[d] = true
		}
	case KindMount:
		// Only a writer says which folder is another share's: a mount hides
		// the folder's files from every member of this share.
		if author.Level < ReadWrite {
			return refuse("only a writer mounts a share (a %s member cannot)", author.Level)
		}
		m := e.Mount
		inner, mounted := s.mounts[m.Path]
		switch {
		case m.Unmount && (!mounted || inner != m.Inner):
			return refuse("no share %X is mounted at %q", m.Inner[:4], m.Path)
		case m.Unmount:
		case mounted:
			return refuse("share %X is already mounted at %q; unmount it first", inner[:4], m.Path)
		case len(s.mounts) >= MaxMounts:
			return refuse("the share has %d mounts, the limit", MaxMounts)
		default:
			for p, id := range s.mounts {
				if id == m.Inner {
					return refuse("share %X is already mounted at %q: a share is mounted once", m.Inner[:4], p)
				}
			}
		}
	default:
		return refuse("a second genesis")
	}
	if needOwners && owners < s.k {
		return fmt.Errorf("membership entry %d (%s by %s): %d of %d owner signatures: %w", e.Seq, e.Kind, short(e.Author), owners, s.k, ErrNeedsApproval)
	}
	return nil
}

// apply adds a checked entry.
func (s *State) apply(e *Entry) {
	s.entries = append(s.entries, e)
	add := func(m Member) {
		in, ok := s.members[m.Device]
		if !ok {
			in = &Info{Device: m.Device}
			s.members[m.Device] = in
			s.order = append(s.order, m.Device)
		}
		in.Level, in.AddedBy, in.AddedAt = m.Level, e.Author, e.Time
		in.Removed, in.RemovedBy, in.RemovedAt = false, Device{}, time.Time{}
	}
	switch e.Kind {
	case KindGenesis:
		for _, m := range e.Members {
			add(m)
		}
		s.owners, s.k = []Device{e.Author}, 1
		s.members[e.Author].Owner = true
	case KindAdd:
		add(e.Member)
	case KindRemove:
		in := s.members[e.Member.Device]
		in.Removed, in.RemovedBy, in.RemovedAt, in.Owner = true, e.Author, e.Time, false
		s.owners = slices.DeleteFunc(s.owners, func(d Device) bool { return d == e.Member.Device })
		s.epoch = e.Epoch
	case KindMount:
		if e.Mount.Unmount {
			delete(s.mounts, e.Mount.Path)
		} else {
			s.mounts[e.Mount.Path] = e.Mount.Inner
		}
	case KindOwners:
		for _, d := range s.owners {
			s.members[d].Owner = false
		}
		s.owners, s.k = slices.Clone(e.Owners), e.K
		for _, d := range s.owners {
			s.members[d].Owner = true
		}
	}
}

// Replay builds the state of a whole log, checking every entry.
func Replay(share [32]byte, sharePub ed25519.PublicKey, entries []*Entry) (*State, error) {
	s := NewState(share, sharePub)
	for _, e := range entries {
		if err := s.Append(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// yields reports whether a log holding only a migrated genesis (s) gives
// way to another valid log o for the same share: devices that had the
// share before logs existed each made one, and all must end with the same.
// A longer log wins, then a genesis that was not migrated, then the
// smaller genesis hash.
func (s *State) yields(o *State) bool {
	if len(s.entries) != 1 || !s.entries[0].Migrated || o.Len() == 0 {
		return false
	}
	if o.Len() > 1 || !o.entries[0].Migrated {
		return true
	}
	a, b := s.entries[0].hash, o.entries[0].hash
	return bytes.Compare(b[:], a[:]) < 0
}

func short(d Device) string {
	return fmt.Sprintf("%X", d[:4])
}
