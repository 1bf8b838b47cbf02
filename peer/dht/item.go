package dht

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
)

// Limits of an item.
const (
	// MaxValue is BEP 44's limit on a bencoded value.
	MaxValue = 1000
	// MaxAddrs is the most addresses an item may list; an item with more is
	// refused whole.
	MaxAddrs = 8
	// MaxDial is the most addresses of one item handed out for dialling.
	MaxDial = 4
	// maxAddrText bounds one address's text form.
	maxAddrText = 64
)

// ErrBadItem is the class of items that are not well formed.
var ErrBadItem = errors.New("bad address item")

// itemValue is the bencoded value.
type itemValue struct {
	Addrs []string `bencode:"a"`
}

// EncodeItem returns the bencoded value of an item listing addrs. It fails
// for an address DecodeItem would refuse, and for more than MaxAddrs.
func EncodeItem(addrs []string) ([]byte, error) {
	if len(addrs) > MaxAddrs {
		return nil, fmt.Errorf("encode address item: %d addresses, at most %d: %w", len(addrs), MaxAddrs, ErrBadItem)
	}
	for _, a := range addrs {
		if _, err := parseAddr(a); err != nil {
			return nil, fmt.Errorf("encode address item: %w", err)
		}
	}
	b, err := bencode.Marshal(itemValue{Addrs: append([]string{}, addrs...)})
	if err != nil {
		return nil, fmt.Errorf("encode address item: %w", err)
	}
	if len(b) > MaxValue {
		return nil, fmt.Errorf("encode address item: %d bytes, at most %d: %w", len(b), MaxValue, ErrBadItem)
	}
	return b, nil
}

// DecodeItem reads an item's value (outside input: from any DHT node). It
// returns the addresses in their canonical text form.
func DecodeItem(b []byte) ([]netip.AddrPort, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("decode address item: %d bytes, at most %d: %w", len(b), MaxValue, ErrBadItem)
	}
	var v itemValue
	if err := bencode.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode address item: %v: %w", err, ErrBadItem)
	}
	if len(v.Addrs) > MaxAddrs {
		return nil, fmt.Errorf("decode address item: %d addresses, at most %d: %w", len(v.Addrs), MaxAddrs, ErrBadItem)
	}
	out := make([]netip.AddrPort, 0, len(v.Addrs))
	for _, a := range v.Addrs {
		ap, err := parseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("decode address item: %w", err)
		}
		out = append(out, ap)
	}
	return out, nil
}

// parseAddr accepts "IP:port" with an IP a device may be reached at.
func parseAddr(s string) (netip.AddrPort, error) {
	if len(s) > maxAddrText {
		return netip.AddrPort{}, fmt.Errorf("address of %d bytes, at most %d: %w", len(s), maxAddrText, ErrBadItem)
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q is not IP:port: %w", s, ErrBadItem)
	}
	ip := ap.Addr()
	switch {
	case ap.Port() == 0:
		return netip.AddrPort{}, fmt.Errorf("address %q has port 0: %w", s, ErrBadItem)
	case ip.IsUnspecified(), ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}), ip.Zone() != "":
		return netip.AddrPort{}, fmt.Errorf("address %q is not one a device can be reached at: %w", s, ErrBadItem)
	}
	return netip.AddrPortFrom(ip.Unmap(), ap.Port()), nil
}
