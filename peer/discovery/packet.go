package discovery

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// The announcement packet. Every multi-byte integer is big endian.
//
//	offset  size  field
//	0       4     magic "BSD\x01" (the last byte is the format version)
//	4       1     family the packet was sent on: 4 or 6
//	5       8     announcement time, Unix nanoseconds (int64)
//	13      32    Ed25519 public key of the device
//	45      1     n, number of addresses (at most MaxAddresses)
//	46      ...   n addresses, each: kind (4 or 6), the IP (4 or 16 bytes), port (2 bytes)
//	end-64  64    Ed25519 signature over signContext || every byte before it
//
// The device ID is not sent: it is implied by the public key, so a packet can
// only ever speak for the key that signed it. The family is signed so that a
// packet heard on IPv4 cannot be replayed on IPv6, whose replay window is
// tracked apart (a device signs one packet per family and round).
const (
	// MaxPacketSize bounds a packet on the wire; larger ones are dropped
	// unread.
	MaxPacketSize = 512
	// MaxAddresses bounds the addresses one announcement may carry.
	MaxAddresses = 16

	headerSize = 4 + 1 + 8 + ed25519.PublicKeySize + 1
	sigSize    = ed25519.SignatureSize
	minSize    = headerSize + sigSize
)

var magic = [4]byte{'B', 'S', 'D', 1}

// signContext separates these signatures from any other use of the device key.
const signContext = "blueshift discovery announcement v1\x00"

// family is the IP family a packet was sent and received on.
type family byte

const (
	family4 family = 4
	family6 family = 6
)

// announcement is the decoded content of a packet.
type announcement struct {
	family    family
	time      time.Time
	publicKey ed25519.PublicKey
	addresses []netip.AddrPort // as announced: may be unspecified ("0.0.0.0:P")
}

// encodePacket signs a with key and returns the packet; a.publicKey is
// ignored (the key's own is sent). More than MaxAddresses is an error.
func encodePacket(key Signer, a announcement) ([]byte, error) {
	if len(a.addresses) > MaxAddresses {
		return nil, fmt.Errorf("encode announcement: %d addresses, at most %d", len(a.addresses), MaxAddresses)
	}
	pub := key.PublicKey()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("encode announcement: not an Ed25519 key")
	}
	buf := make([]byte, 0, MaxPacketSize)
	buf = append(buf, magic[:]...)
	buf = append(buf, byte(a.family))
	buf = binary.BigEndian.AppendUint64(buf, uint64(a.time.UnixNano()))
	buf = append(buf, pub...)
	buf = append(buf, byte(len(a.addresses)))
	for _, ap := range a.addresses {
		ip := ap.Addr().Unmap()
		switch {
		case ip.Is4():
			buf = append(buf, 4)
		case ip.Is6():
			buf = append(buf, 6)
		default:
			return nil, fmt.Errorf("encode announcement: invalid address %v", ap)
		}
		buf = append(buf, ip.AsSlice()...)
		buf = binary.BigEndian.AppendUint16(buf, ap.Port())
	}
	buf = append(buf, key.Sign(signedBytes(buf))...)
	return buf, nil
}

// decodePacket parses and verifies a packet. It checks every length before
// reading and never allocates more than the packet's own size. The error is
// ErrMalformed or ErrBadSignature, wrapped with the specifics.
func decodePacket(p []byte) (announcement, error) {
	var a announcement
	if len(p) > MaxPacketSize {
		return a, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(p), MaxPacketSize)
	}
	if len(p) < minSize {
		return a, fmt.Errorf("%w: %d bytes, at least %d", ErrMalformed, len(p), minSize)
	}
	if !bytes.Equal(p[:4], magic[:]) {
		return a, fmt.Errorf("%w: bad magic or version %x", ErrMalformed, p[:4])
	}
	a.family = family(p[4])
	if a.family != family4 && a.family != family6 {
		return a, fmt.Errorf("%w: family %d", ErrMalformed, p[4])
	}
	a.time = time.Unix(0, int64(binary.BigEndian.Uint64(p[5:13])))
	a.publicKey = ed25519.PublicKey(bytes.Clone(p[13 : 13+ed25519.PublicKeySize]))
	n := int(p[headerSize-1])
	if n > MaxAddresses {
		return a, fmt.Errorf("%w: %d addresses, at most %d", ErrMalformed, n, MaxAddresses)
	}
	body, sig := p[:len(p)-sigSize], p[len(p)-sigSize:]
	rest := body[headerSize:]
	a.addresses = make([]netip.AddrPort, 0, n)
	for i := range n {
		if len(rest) < 1 {
			return a, fmt.Errorf("%w: address %d truncated", ErrMalformed, i)
		}
		size := 0
		switch rest[0] {
		case 4:
			size = 4
		case 6:
			size = 16
		default:
			return a, fmt.Errorf("%w: address %d has kind %d", ErrMalformed, i, rest[0])
		}
		if len(rest) < 1+size+2 {
			return a, fmt.Errorf("%w: address %d truncated", ErrMalformed, i)
		}
		ip, _ := netip.AddrFromSlice(rest[1 : 1+size])
		port := binary.BigEndian.Uint16(rest[1+size:])
		a.addresses = append(a.addresses, netip.AddrPortFrom(ip, port))
		rest = rest[1+size+2:]
	}
	if len(rest) != 0 {
		return a, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	if !ed25519.Verify(a.publicKey, signedBytes(body), sig) {
		return a, ErrBadSignature
	}
	return a, nil
}

func signedBytes(body []byte) []byte {
	return append([]byte(signContext), body...)
}
