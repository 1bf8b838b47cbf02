package dht

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestItemRoundTrip(t *testing.T) {
	addrs := []string{"192.0.2.7:22100", "[2001:db8::1]:22100"}
	b, err := EncodeItem(addrs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeItem(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort(addrs[0]), netip.MustParseAddrPort(addrs[1])}
	if !slices.Equal(got, want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
	// Pinned: the format is what other devices decode.
	if golden := "d1:al15:192.0.2.7:2210019:[2001:db8::1]:22100ee"; string(b) != golden {
		t.Fatalf("encoded %q, want %q", b, golden)
	}
}

// rawItem bencodes a value listing addrs as they are, valid or not.
func rawItem(addrs ...string) string {
	var b strings.Builder
	b.WriteString("d1:al")
	for _, a := range addrs {
		fmt.Fprintf(&b, "%d:%s", len(a), a)
	}
	b.WriteString("ee")
	return b.String()
}

func TestDecodeItemRefuses(t *testing.T) {
	many := make([]string, MaxAddrs+1)
	for i := range many {
		many[i] = fmt.Sprintf("192.0.2.%d:1", i+1)
	}
	if _, err := DecodeItem([]byte(rawItem(many[:MaxAddrs]...))); err != nil {
		t.Fatalf("MaxAddrs addresses: %v", err)
	}
	for _, tc := range []struct{ name, in string }{
		{"not bencode", "hello"},
		{"a list, not a dict", "l15:192.0.2.7:22100e"},
		{"a name, not an IP", rawItem("example.com:2210")},
		{"port 0", rawItem("192.0.2.7:0")},
		{"no port", rawItem("192.0.2.7")},
		{"unspecified", rawItem("0.0.0.0:1")},
		{"multicast", rawItem("239.1.2.3:2210")},
		{"broadcast", rawItem("255.255.255.255:1")},
		{"zone", rawItem("[fe80::1%eth0]:1")},
		{"one bad among good", rawItem("192.0.2.7:1", "nope")},
		{"too many", rawItem(many...)},
		{"too long", rawItem("[2001:db8::1]:1" + strings.Repeat("1", 60))},
		{"too big", rawItem(slices.Repeat([]string{"192.0.2.7:22100"}, 60)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := DecodeItem([]byte(tc.in)); !errors.Is(err, ErrBadItem) {
				t.Fatalf("DecodeItem(%q) = %v, %v; want ErrBadItem", tc.in, got, err)
			}
		})
	}
}

func TestEncodeItemRefuses(t *testing.T) {
	for _, addrs := range [][]string{
		{"example.com:1"},
		{"192.0.2.1:0"},
		slices.Repeat([]string{"192.0.2.1:1"}, MaxAddrs+1),
	} {
		if _, err := EncodeItem(addrs); !errors.Is(err, ErrBadItem) {
			t.Errorf("EncodeItem(%v): %v, want ErrBadItem", addrs, err)
		}
	}
}

// FuzzDecodeItem: arbitrary bytes never panic, and what decodes encodes
// back to a value that decodes to the same addresses.
func FuzzDecodeItem(f *testing.F) {
	f.Add([]byte("d1:al15:192.0.2.7:2210019:[2001:db8::1]:22100ee"))
	f.Add([]byte("d1:ale1:xi3ee"))
	f.Add([]byte("d1:al9:0.0.0.0:1ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		addrs, err := DecodeItem(b)
		if err != nil {
			return
		}
		var text []string
		for _, a := range addrs {
			text = append(text, a.String())
		}
		b2, err := EncodeItem(text)
		if err != nil {
			t.Fatalf("decoded %q to %v, which does not encode: %v", b, addrs, err)
		}
		again, err := DecodeItem(b2)
		if err != nil || !slices.Equal(again, addrs) {
			t.Fatalf("round trip of %q: %v, %v; want %v", b, again, err, addrs)
		}
	})
}
