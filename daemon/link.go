package daemon

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// Link format, version 1. The text is linkPrefix followed by base32 (RFC
// 4648 alphabet, no padding, case-insensitive) of:
//
//	+---------+-----------+---------+-------+----------+------+--------+-----------+
//	| version | device ID | expires | token | key text | name | naddrs | addresses |
//	|  1 (1)  |    32     | int64 8 |  16   | len+text | len+ |  1     | len+text… |
//	+---------+-----------+---------+-------+----------+------+--------+-----------+
//	followed by a 4-byte checksum: BLAKE3-256 (keyed by linkContext) of all
//	of the above, truncated.
//
// Lengths are one byte (every field is far shorter than 256 bytes); expires
// is Unix seconds, big-endian. A typo anywhere fails the checksum.
const (
	linkPrefix   = "bs1-"
	linkVersion  = 1
	linkContext  = "blueshift 2026 invite link checksum v1"
	linkChecksum = 4
	TokenSize    = 16

	maxLinkText  = 2048
	maxLinkAddrs = 16
	maxLinkField = 255
)

// ErrBadLink is the class of links that cannot be read: mistyped, cut
// short, or from a newer version.
var ErrBadLink = errors.New("invalid invite link")

// ErrLinkExpired: the link's time is up; its owner must make a new one.
var ErrLinkExpired = errors.New("invite link expired")

var linkEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Link is what an invite link carries.
type Link struct {
	Device    identity.DeviceID // the inviter
	Addresses []string          // where the inviter listens (host:port)
	ShareName string
	Key       share.Key // at the granted level
	Token     [TokenSize]byte
	Expires   time.Time
}

// String encodes the link.
func (l Link) String() string {
	var b bytes.Buffer
	b.WriteByte(linkVersion)
	b.Write(l.Device[:])
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(l.Expires.Unix())))
	b.Write(l.Token[:])
	field := func(s string) {
		if len(s) > maxLinkField {
			s = s[:maxLinkField]
		}
		b.WriteByte(byte(len(s)))
		b.WriteString(s)
	}
	field(l.Key.String())
	field(l.ShareName)
	addrs := l.Addresses
	if len(addrs) > maxLinkAddrs {
		addrs = addrs[:maxLinkAddrs]
	}
	b.WriteByte(byte(len(addrs)))
	for _, a := range addrs {
		field(a)
	}
	sum := linkSum(b.Bytes())
	b.Write(sum[:linkChecksum])
	return linkPrefix + linkEncoding.EncodeToString(b.Bytes())
}

// ParseLink decodes a link made by Link.String. It does not check expiry.
func ParseLink(text string) (Link, error) {
	text = strings.TrimSpace(text)
	if len(text) > maxLinkText {
		return Link{}, fmt.Errorf("read link: %d characters is too long: %w", len(text), ErrBadLink)
	}
	if !strings.HasPrefix(strings.ToLower(text), linkPrefix) {
		return Link{}, fmt.Errorf("read link: it does not start with %q: %w; copy the whole line `blueshift invite` printed", linkPrefix, ErrBadLink)
	}
	raw, err := linkEncoding.DecodeString(strings.ToUpper(text[len(linkPrefix):]))
	if err != nil || len(raw) < 1+linkChecksum {
		return Link{}, fmt.Errorf("read link: not valid base32: %w; it was probably mistyped, copy it again", ErrBadLink)
	}
	body, sum := raw[:len(raw)-linkChecksum], raw[len(raw)-linkChecksum:]
	want := linkSum(body)
	if !bytes.Equal(sum, want[:linkChecksum]) {
		return Link{}, fmt.Errorf("read link: checksum mismatch: %w; it was probably mistyped, copy it again", ErrBadLink)
	}
	if body[0] != linkVersion {
		return Link{}, fmt.Errorf("read link: version %d is not known: %w; upgrade Blueshift", body[0], ErrBadLink)
	}
	r := linkReader{b: body[1:]}
	var l Link
	copy(l.Device[:], r.take(len(l.Device)))
	exp := r.take(8)
	copy(l.Token[:], r.take(TokenSize))
	keyText := r.field()
	l.ShareName = r.field()
	n := r.take(1)
	if r.err == nil {
		for range int(n[0]) {
			l.Addresses = append(l.Addresses, r.field())
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the addresses", len(r.b))
	}
	if r.err != nil {
		return Link{}, fmt.Errorf("read link: %v: %w", r.err, ErrBadLink)
	}
	l.Expires = time.Unix(int64(binary.BigEndian.Uint64(exp)), 0).UTC()
	if l.Key, err = share.ParseKey(keyText); err != nil {
		return Link{}, fmt.Errorf("read link: %v: %w", err, ErrBadLink)
	}
	return l, nil
}

func linkSum(b []byte) [32]byte {
	var out [32]byte
	h := blake3.NewDeriveKey(linkContext)
	h.Write(b)
	h.Digest().Read(out[:])
	return out
}

// linkReader keeps the first error; every read is bounds-checked.
type linkReader struct {
	b   []byte
	err error
}

func (r *linkReader) take(n int) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if len(r.b) < n {
		r.err = errors.New("link is cut short")
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *linkReader) field() string {
	n := r.take(1)
	return string(r.take(int(n[0])))
}
