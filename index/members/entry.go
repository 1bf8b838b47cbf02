package members

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zeebo/blake3"
	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/index/members/memberspb"
)

// Limits on what a peer can send.
const (
	MaxEntrySize    = 64 << 10 // bytes in one encoded entry
	MaxSigs         = 32       // signatures on one entry
	MaxMembers      = 1024     // members named by one entry or one log
	MaxOwners       = 16
	MaxEntries      = 1 << 16 // entries in one log
	maxSealedKeyBox = 128     // bytes of one sealed epoch key
	MaxMountPath    = 4096    // bytes of a mount's path
	MaxMounts       = 1024    // mounts one log holds at once
)

// signDomain separates membership signatures from anything else a device
// or share key signs.
const signDomain = "blueshift/members/v1\x00"

// Device is a device ID: the SHA-256 of its Ed25519 public key (the same
// value as identity.DeviceID; index packages do not import peer).
type Device [32]byte

// DeviceOf returns the device ID of pub.
func DeviceOf(pub ed25519.PublicKey) Device { return Device(sha256.Sum256(pub)) }

// Hash names an entry: BLAKE3-256 of its body. A pending change is named by
// the same hash.
type Hash [32]byte

// Level is what a member may do, as the log says.
type Level uint8

const (
	Encrypted Level = 1
	ReadOnly  Level = 2
	ReadWrite Level = 3
)

// String names the level as users read it: rw, ro, enc.
func (l Level) String() string {
	switch l {
	case Encrypted:
		return "enc"
	case ReadOnly:
		return "ro"
	case ReadWrite:
		return "rw"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel reads rw, ro or enc.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "rw":
		return ReadWrite, nil
	case "ro":
		return ReadOnly, nil
	case "enc":
		return Encrypted, nil
	}
	return 0, fmt.Errorf("level %q: want rw, ro or enc", s)
}

// Kind is what an entry changes.
type Kind uint8

const (
	KindGenesis Kind = iota + 1
	KindAdd
	KindRemove
	KindOwners
	KindMount
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindGenesis:
		return "genesis"
	case KindAdd:
		return "add"
	case KindRemove:
		return "remove"
	case KindOwners:
		return "owners"
	case KindMount:
		return "mount"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Member is one device and its level.
type Member struct {
	Device Device
	Level  Level
}

// SealedKey is an epoch key sealed to one device (epoch.go).
type SealedKey struct {
	Device Device
	Box    []byte
}

// Body is what an entry says, before it is signed.
type Body struct {
	Share  [32]byte
	Seq    uint64
	Prev   Hash // zero for the genesis
	Time   time.Time
	Author Device
	Kind   Kind

	Members  []Member    // genesis: the first members, the author first
	Migrated bool        // genesis: made from an existing share's configuration
	Member   Member      // add: the member and its level; remove: Member.Device
	Epoch    uint64      // remove: the new epoch
	Keys     []SealedKey // remove: the new epoch key, sealed per remaining member
	Owners   []Device    // owners: the new owner set
	K        int         // owners: the new threshold
	Mount    Mount       // mount: the nested share and where
}

// Mount is a share nested in this one: its folder at Path belongs to the
// share Inner. Unmount takes it back.
type Mount struct {
	Path    string // share-relative, '/'-separated, clean
	Inner   [32]byte
	Unmount bool
}

// Signature is one device's signature of an entry's body.
type Signature struct {
	Device Device
	Pub    ed25519.PublicKey
	Sig    []byte
}

// Entry is a signed change as its author made it: the body bytes are kept
// and relayed as they are, never re-encoded.
type Entry struct {
	Body
	raw      []byte // encoded body
	hash     Hash
	Sigs     []Signature
	ShareSig []byte // genesis only
}

// Hash returns the entry's ID: BLAKE3-256 of its body bytes.
func (e *Entry) Hash() Hash { return e.hash }

// NewEntry encodes b; the entry has no signatures yet.
func NewEntry(b Body) (*Entry, error) {
	pb := &memberspb.Body{
		Share: b.Share[:], Seq: b.Seq, Time: b.Time.Unix(), Author: b.Author[:],
	}
	if b.Seq > 0 {
		pb.Prev = b.Prev[:]
	}
	switch b.Kind {
	case KindGenesis:
		g := &memberspb.Genesis{Migrated: b.Migrated}
		for _, m := range b.Members {
			g.Members = append(g.Members, memberPB(m))
		}
		pb.Change = &memberspb.Body_Genesis{Genesis: g}
	case KindAdd:
		pb.Change = &memberspb.Body_Add{Add: &memberspb.Add{Member: memberPB(b.Member)}}
	case KindRemove:
		r := &memberspb.Remove{Device: b.Member.Device[:], Epoch: b.Epoch}
		for _, k := range b.Keys {
			r.Keys = append(r.Keys, &memberspb.SealedKey{Device: k.Device[:], Box: k.Box})
		}
		pb.Change = &memberspb.Body_Remove{Remove: r}
	case KindOwners:
		o := &memberspb.Owners{Threshold: uint32(b.K)}
		for _, d := range b.Owners {
			o.Owners = append(o.Owners, d[:])
		}
		pb.Change = &memberspb.Body_Owners{Owners: o}
	case KindMount:
		pb.Change = &memberspb.Body_Mount{Mount: &memberspb.Mount{Path: b.Mount.Path, Inner: b.Mount.Inner[:], Unmount: b.Mount.Unmount}}
	default:
		return nil, fmt.Errorf("new membership entry: %s: %w", b.Kind, ErrInvalid)
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encode membership entry: %w", err)
	}
	// Decode what was encoded, so a made entry obeys the same limits as a
	// received one.
	got, err := decodeBody(raw)
	if err != nil {
		return nil, err
	}
	return &Entry{Body: got, raw: raw, hash: blake3.Sum256(raw)}, nil
}

func memberPB(m Member) *memberspb.Member {
	return &memberspb.Member{Device: m.Device[:], Level: memberspb.Level(m.Level)}
}

// Sign adds priv's signature. Signing twice with one key changes nothing.
func (e *Entry) Sign(priv ed25519.PrivateKey) {
	pub := priv.Public().(ed25519.PublicKey)
	d := DeviceOf(pub)
	for _, s := range e.Sigs {
		if s.Device == d {
			return
		}
	}
	e.Sigs = append(e.Sigs, Signature{Device: d, Pub: pub, Sig: ed25519.Sign(priv, e.signed())})
}

// SignShare adds the share key's signature (a genesis needs it).
func (e *Entry) SignShare(priv ed25519.PrivateKey) {
	e.ShareSig = ed25519.Sign(priv, e.signed())
}

// signed is what every signature covers.
func (e *Entry) signed() []byte {
	return append([]byte(signDomain), e.raw...)
}

// Signers returns the devices whose signatures verify, each once.
func (e *Entry) Signers() []Device {
	var out []Device
	seen := map[Device]bool{}
	msg := e.signed()
	for _, s := range e.Sigs {
		if seen[s.Device] || len(s.Pub) != ed25519.PublicKeySize || DeviceOf(s.Pub) != s.Device || !ed25519.Verify(s.Pub, msg, s.Sig) {
			continue
		}
		seen[s.Device] = true
		out = append(out, s.Device)
	}
	return out
}

// merge adds o's signatures of the same body to e.
func (e *Entry) merge(o *Entry) {
	for _, s := range o.Sigs {
		dup := false
		for _, t := range e.Sigs {
			dup = dup || t.Device == s.Device
		}
		if !dup && len(e.Sigs) < MaxSigs {
			e.Sigs = append(e.Sigs, s)
		}
	}
}

// Encode returns the entry as it is stored and relayed.
func (e *Entry) Encode() []byte {
	pb := &memberspb.Entry{Body: e.raw, ShareSig: e.ShareSig}
	for _, s := range e.Sigs {
		pb.Sigs = append(pb.Sigs, &memberspb.Signature{PublicKey: s.Pub, Sig: s.Sig})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(pb)
	if err != nil {
		panic("members: encode a valid entry: " + err.Error()) // cannot happen: only bytes fields
	}
	return b
}

// Decode reads an entry. It checks the form and every limit, never the
// signatures' rights (Log.Append does).
func Decode(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("membership entry of %d bytes, limit %d: %w", len(b), MaxEntrySize, ErrInvalid)
	}
	var pb memberspb.Entry
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("membership entry: %v: %w", err, ErrInvalid)
	}
	if len(pb.Sigs) > MaxSigs {
		return nil, fmt.Errorf("membership entry with %d signatures, limit %d: %w", len(pb.Sigs), MaxSigs, ErrInvalid)
	}
	body, err := decodeBody(pb.Body)
	if err != nil {
		return nil, err
	}
	e := &Entry{Body: body, raw: append([]byte(nil), pb.Body...), hash: blake3.Sum256(pb.Body)}
	for _, s := range pb.Sigs {
		if len(s.PublicKey) != ed25519.PublicKeySize || len(s.Sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("membership entry: malformed signature: %w", ErrInvalid)
		}
		pub := ed25519.PublicKey(append([]byte(nil), s.PublicKey...))
		e.Sigs = append(e.Sigs, Signature{Device: DeviceOf(pub), Pub: pub, Sig: append([]byte(nil), s.Sig...)})
	}
	if len(pb.ShareSig) != 0 {
		if len(pb.ShareSig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("membership entry: malformed share signature: %w", ErrInvalid)
		}
		e.ShareSig = append([]byte(nil), pb.ShareSig...)
	}
	return e, nil
}

func decodeBody(raw []byte) (Body, error) {
	var pb memberspb.Body
	if err := proto.Unmarshal(raw, &pb); err != nil {
		return Body{}, fmt.Errorf("membership entry body: %v: %w", err, ErrInvalid)
	}
	var b Body
	bad := func(what string) (Body, error) {
		return Body{}, fmt.Errorf("membership entry %d: %s: %w", pb.Seq, what, ErrInvalid)
	}
	if !copy32(b.Share[:], pb.Share) || !copy32(b.Author[:], pb.Author) {
		return bad("share or author is not 32 bytes")
	}
	b.Seq = pb.Seq
	if b.Seq >= MaxEntries {
		return bad("sequence beyond the log's limit")
	}
	if b.Seq == 0 && len(pb.Prev) != 0 || b.Seq > 0 && !copy32(b.Prev[:], pb.Prev) {
		return bad("prev does not fit the sequence")
	}
	b.Time = time.Unix(pb.Time, 0).UTC()
	switch c := pb.Change.(type) {
	case *memberspb.Body_Genesis:
		b.Kind = KindGenesis
		if b.Seq != 0 {
			return bad("a genesis after the start")
		}
		if len(c.Genesis.Members) == 0 || len(c.Genesis.Members) > MaxMembers {
			return bad("genesis member count")
		}
		b.Migrated = c.Genesis.Migrated
		for _, m := range c.Genesis.Members {
			mm, ok := memberFromPB(m)
			if !ok {
				return bad("malformed member")
			}
			b.Members = append(b.Members, mm)
		}
	case *memberspb.Body_Add:
		b.Kind = KindAdd
		m, ok := memberFromPB(c.Add.GetMember())
		if !ok {
			return bad("malformed member")
		}
		b.Member = m
	case *memberspb.Body_Remove:
		b.Kind = KindRemove
		if !copy32(b.Member.Device[:], c.Remove.Device) {
			return bad("removed device is not 32 bytes")
		}
		b.Epoch = c.Remove.Epoch
		if len(c.Remove.Keys) > MaxMembers {
			return bad("too many sealed keys")
		}
		for _, k := range c.Remove.Keys {
			var sk SealedKey
			if !copy32(sk.Device[:], k.Device) || len(k.Box) == 0 || len(k.Box) > maxSealedKeyBox {
				return bad("malformed sealed key")
			}
			sk.Box = append([]byte(nil), k.Box...)
			b.Keys = append(b.Keys, sk)
		}
	case *memberspb.Body_Owners:
		b.Kind = KindOwners
		if len(c.Owners.Owners) == 0 || len(c.Owners.Owners) > MaxOwners {
			return bad("owner count")
		}
		for _, o := range c.Owners.Owners {
			var d Device
			if !copy32(d[:], o) {
				return bad("owner is not 32 bytes")
			}
			b.Owners = append(b.Owners, d)
		}
		if c.Owners.Threshold < 1 || int(c.Owners.Threshold) > len(b.Owners) {
			return bad("threshold outside 1..owners")
		}
		b.K = int(c.Owners.Threshold)
	case *memberspb.Body_Mount:
		b.Kind = KindMount
		if !validMountPath(c.Mount.Path) {
			return bad("mount path is not a clean share-relative folder")
		}
		if !copy32(b.Mount.Inner[:], c.Mount.Inner) {
			return bad("mounted share ID is not 32 bytes")
		}
		if b.Mount.Inner == b.Share {
			return bad("a share mounted in itself")
		}
		b.Mount.Path, b.Mount.Unmount = c.Mount.Path, c.Mount.Unmount
	default:
		return bad("no change")
	}
	return b, nil
}

func memberFromPB(m *memberspb.Member) (Member, bool) {
	var out Member
	if m == nil || !copy32(out.Device[:], m.Device) {
		return Member{}, false
	}
	out.Level = Level(m.Level)
	return out, out.Level >= Encrypted && out.Level <= ReadWrite
}

func copy32(dst, src []byte) bool {
	if len(src) != 32 {
		return false
	}
	copy(dst, src)
	return true
}

// validMountPath: a clean, relative, '/'-separated path of at most
// MaxMountPath bytes, not the share's root, not inside .blueshift.
func validMountPath(p string) bool {
	if p == "" || len(p) > MaxMountPath || !utf8.ValidString(p) || path.Clean(p) != p || path.IsAbs(p) ||
		p == "." || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	first, _, _ := strings.Cut(p, "/")
	return first != ".blueshift"
}
