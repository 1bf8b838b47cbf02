package multicast

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// A datagram:
//
//	0      4     5      6          14         22
//	+------+-----+------+----------+----------+---------------------------+
//	|"BSMC"| ver | kind | session  | seq (BE) | sealed body | 16-byte tag |
//	+------+-----+------+----------+----------+---------------------------+
//
// The header (the first 22 bytes) is the AEAD's additional data; the nonce
// is 4 zero bytes and seq. A sender never repeats a seq within a session
// and a session's key is used by one sender only, so no nonce repeats.
//
// Bodies by kind:
//
//	KindProbe: empty. The sender checks the group works before data.
//	KindShard: block u32 | size u32 | enc u8 | group u16 | index u8 |
//	           k u8 | m u8 | shard (ShardSize bytes)
//	  block: the block's index in its file; size: the payload's length;
//	  enc: the payload's encoding (opaque here); group: which group of
//	  shards; index: the shard within it (< k data, then m parity).
//	KindEnd: empty. The sender sent everything it will.
const (
	headerLen = 22
	tagLen    = chacha20poly1305.Overhead
	// shardHead is the fixed part of a KindShard body.
	shardHead = 4 + 4 + 1 + 2 + 1 + 1 + 1
	// ShardSize is the payload bytes in one shard: a shard datagram
	// (header, shard head, shard, tag) fills a 1500-byte Ethernet frame
	// less the IPv6 and UDP headers (1452 bytes), so it is never fragmented
	// on a LAN of the usual MTU.
	ShardSize = 1452 - headerLen - shardHead - tagLen
	// MaxDatagram is the largest datagram this package makes or reads.
	MaxDatagram = headerLen + shardHead + ShardSize + tagLen
	// MaxPayload bounds one payload (a block of at most 1 MiB, compressed
	// or not, with room for zstd's overhead on incompressible data).
	MaxPayload = 1<<20 + 64<<10
	// Version is the datagram format's version.
	Version = 1
	// KeySize is the length of a session key.
	KeySize = chacha20poly1305.KeySize
)

// Kind says what a datagram carries.
type Kind uint8

// Kinds of datagram.
const (
	KindProbe Kind = 1
	KindShard Kind = 2
	KindEnd   Kind = 3
)

var magic = [4]byte{'B', 'S', 'M', 'C'}

// Sentinel errors for datagrams refused; the specifics are in the message.
var (
	ErrMalformed = errors.New("malformed multicast datagram")
	ErrForged    = errors.New("multicast datagram does not open under the session key")
	ErrReplay    = errors.New("multicast datagram replayed")
)

// Key is a session's secret.
type Key [KeySize]byte

// SessionID names a session in its datagrams.
type SessionID [8]byte

// NewSession returns a fresh random session ID and key.
func NewSession() (SessionID, Key) {
	var id SessionID
	var k Key
	rand.Read(id[:])
	rand.Read(k[:])
	return id, k
}

// Shard is one shard of a payload, the body of a KindShard datagram.
type Shard struct {
	Block uint32 // the block's index in its file
	Size  uint32 // the payload's length
	Enc   uint8  // the payload's encoding, opaque to this package
	Group uint16 // the group of shards
	Index uint8  // the shard in its group: < K data, then parity
	K, M  uint8  // the group's data and parity shards
	Data  []byte // ShardSize bytes
}

// Datagram is an opened datagram.
type Datagram struct {
	Kind    Kind
	Session SessionID
	Seq     uint64
	Shard   Shard // for KindShard
}

// Sealer seals a session's datagrams. It is not safe for concurrent use
// (the sequence number).
type Sealer struct {
	id   SessionID
	aead cipherAEAD
	seq  uint64
}

// cipherAEAD is the part of cipher.AEAD used.
type cipherAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// NewSealer returns a Sealer for session id under key k.
func NewSealer(id SessionID, k Key) *Sealer {
	a, err := chacha20poly1305.New(k[:])
	if err != nil {
		panic(err) // only for a key of the wrong size, which Key rules out
	}
	return &Sealer{id: id, aead: a}
}

// Probe returns a sealed probe datagram.
func (s *Sealer) Probe() []byte { return s.seal(KindProbe, nil) }

// End returns a sealed end datagram.
func (s *Sealer) End() []byte { return s.seal(KindEnd, nil) }

// Shard returns a sealed shard datagram. sh.Data must be ShardSize bytes.
func (s *Sealer) Shard(sh Shard) []byte {
	body := make([]byte, shardHead, shardHead+len(sh.Data))
	binary.BigEndian.PutUint32(body[0:], sh.Block)
	binary.BigEndian.PutUint32(body[4:], sh.Size)
	body[8] = sh.Enc
	binary.BigEndian.PutUint16(body[9:], sh.Group)
	body[11], body[12], body[13] = sh.Index, sh.K, sh.M
	return s.seal(KindShard, append(body, sh.Data...))
}

func (s *Sealer) seal(kind Kind, body []byte) []byte {
	s.seq++
	out := make([]byte, headerLen, headerLen+len(body)+tagLen)
	copy(out, magic[:])
	out[4], out[5] = Version, byte(kind)
	copy(out[6:14], s.id[:])
	binary.BigEndian.PutUint64(out[14:22], s.seq)
	return s.aead.Seal(out, nonce(s.seq), body, out[:headerLen])
}

func nonce(seq uint64) []byte {
	var n [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n[:]
}

// PeekSession returns the session a datagram names, without opening it,
// so a Group finds the Opener to give it to.
func PeekSession(p []byte) (SessionID, error) {
	var id SessionID
	if len(p) < headerLen+tagLen || len(p) > MaxDatagram || [4]byte(p[:4]) != magic || p[4] != Version {
		return id, fmt.Errorf("%w: %d bytes, not a version %d datagram", ErrMalformed, len(p), Version)
	}
	copy(id[:], p[6:14])
	return id, nil
}

// Opener opens one session's datagrams and drops replays. It is not safe
// for concurrent use.
type Opener struct {
	id     SessionID
	aead   cipherAEAD
	window replayWindow
	buf    []byte
}

// NewOpener returns an Opener for session id under key k.
func NewOpener(id SessionID, k Key) *Opener {
	a, err := chacha20poly1305.New(k[:])
	if err != nil {
		panic(err)
	}
	return &Opener{id: id, aead: a}
}

// Open checks and decodes datagram p. The returned Shard.Data is valid
// until the next call.
func (o *Opener) Open(p []byte) (Datagram, error) {
	var d Datagram
	id, err := PeekSession(p)
	if err != nil {
		return d, err
	}
	if id != o.id {
		return d, fmt.Errorf("%w: session %x is not %x", ErrMalformed, id, o.id)
	}
	d.Session, d.Kind, d.Seq = id, Kind(p[5]), binary.BigEndian.Uint64(p[14:22])
	if d.Seq == 0 || o.window.seen(d.Seq) {
		return d, fmt.Errorf("%w: sequence %d", ErrReplay, d.Seq)
	}
	body, err := o.aead.Open(o.buf[:0], nonce(d.Seq), p[headerLen:], p[:headerLen])
	if err != nil {
		return d, ErrForged
	}
	o.buf = body
	// Authentic from here on; the window takes it only now, so a forged
	// datagram cannot burn a sequence number.
	o.window.mark(d.Seq)
	switch d.Kind {
	case KindProbe, KindEnd:
		if len(body) != 0 {
			return d, fmt.Errorf("%w: %d bytes of body in a kind %d datagram", ErrMalformed, len(body), d.Kind)
		}
	case KindShard:
		d.Shard, err = decodeShard(body)
	default:
		err = fmt.Errorf("%w: unknown kind %d", ErrMalformed, d.Kind)
	}
	return d, err
}

func decodeShard(b []byte) (Shard, error) {
	var sh Shard
	if len(b) != shardHead+ShardSize {
		return sh, fmt.Errorf("%w: shard body of %d bytes, want %d", ErrMalformed, len(b), shardHead+ShardSize)
	}
	sh.Block = binary.BigEndian.Uint32(b[0:])
	sh.Size = binary.BigEndian.Uint32(b[4:])
	sh.Enc = b[8]
	sh.Group = binary.BigEndian.Uint16(b[9:])
	sh.Index, sh.K, sh.M = b[11], b[12], b[13]
	sh.Data = b[shardHead:]
	if err := sh.check(); err != nil {
		return sh, err
	}
	return sh, nil
}

// check verifies a shard's fields agree with each other and the limits.
func (sh Shard) check() error {
	switch {
	case sh.Size == 0 || sh.Size > MaxPayload:
		return fmt.Errorf("%w: payload of %d bytes (limit %d)", ErrMalformed, sh.Size, MaxPayload)
	case sh.K == 0 || sh.K > MaxGroupShards || sh.M > maxParity || int(sh.Index) >= int(sh.K)+int(sh.M):
		return fmt.Errorf("%w: shard %d of a group of %d+%d", ErrMalformed, sh.Index, sh.K, sh.M)
	case int(sh.Group) >= groups(int(sh.Size)):
		return fmt.Errorf("%w: group %d of a %d-byte payload", ErrMalformed, sh.Group, sh.Size)
	case int(sh.K) != groupK(int(sh.Size), int(sh.Group)):
		return fmt.Errorf("%w: group %d of a %d-byte payload has not %d data shards", ErrMalformed, sh.Group, sh.Size, sh.K)
	}
	return nil
}

// windowSize is how far behind the newest sequence number a datagram may
// still arrive (reordered) and be taken.
const windowSize = 4096

// replayWindow remembers the sequence numbers seen in the last windowSize.
type replayWindow struct {
	top  uint64                  // the highest seen
	bits [windowSize / 64]uint64 // bit seq%windowSize: seen
}

func (w *replayWindow) seen(seq uint64) bool {
	if seq > w.top {
		return false
	}
	if w.top-seq >= windowSize {
		return true // too old to tell: refused
	}
	return w.bits[seq%windowSize/64]&(1<<(seq%64)) != 0
}

func (w *replayWindow) mark(seq uint64) {
	if seq > w.top {
		if seq-w.top >= windowSize {
			clear(w.bits[:])
		} else {
			for s := w.top + 1; s < seq; s++ {
				w.bits[s%windowSize/64] &^= 1 << (s % 64)
			}
		}
		w.top = seq
	}
	w.bits[seq%windowSize/64] |= 1 << (seq % 64)
}
