package daemon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

func testLink(t testing.TB) Link {
	var s share.Secret
	for i := range s {
		s[i] = byte(i)
	}
	var dev identity.DeviceID
	dev[0] = 7
	return Link{
		Device: dev, Addresses: []string{"127.0.0.1:22100", "[::1]:22100"}, ShareName: "photos",
		Key: share.FromSecret(s), Token: [TokenSize]byte{1, 2, 3}, Expires: time.Unix(1_900_000_000, 0).UTC(),
	}
}

func TestLinkRoundTrip(t *testing.T) {
	l := testLink(t)
	ro, err := l.Key.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []share.Key{l.Key, ro} {
		l.Key = k
		text := l.String()
		for _, in := range []string{text, strings.ToLower(text), " " + text + "\n"} {
			got, err := ParseLink(in)
			if err != nil {
				t.Fatalf("parse %q: %v", in, err)
			}
			if got.String() != text || got.Key.Level() != k.Level() || got.Expires != l.Expires || got.ShareName != "photos" || len(got.Addresses) != 2 {
				t.Fatalf("round trip: %+v", got)
			}
		}
	}
}

func TestLinkBad(t *testing.T) {
	text := testLink(t).String()
	flip := func(i int) string {
		c := byte('A')
		if text[i] == 'A' {
			c = 'B'
		}
		return text[:i] + string(c) + text[i+1:]
	}
	bad := map[string]string{
		"empty":        "",
		"no prefix":    text[len(linkPrefix):],
		"cut short":    text[:len(text)-5],
		"typo early":   flip(len(linkPrefix) + 3),
		"typo middle":  flip(len(text) / 2),
		"typo late":    flip(len(text) - 2),
		"not base32":   linkPrefix + "!!!!",
		"huge":         linkPrefix + strings.Repeat("A", maxLinkText),
		"extra char":   text + "A",
		"share key id": "rw-AAAA",
	}
	for name, in := range bad {
		if _, err := ParseLink(in); !errors.Is(err, ErrBadLink) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	if got, err := Addresses(nil, "127.0.0.1:5"); err != nil || len(got) != 1 || got[0] != "127.0.0.1:5" {
		t.Fatalf("specific host: %v %v", got, err)
	}
	if got, _ := Addresses([]string{"192.0.2.1:9"}, ":0"); len(got) != 1 || got[0] != "192.0.2.1:9" {
		t.Fatalf("announce wins: %v", got)
	}
	if _, err := Addresses(nil, ":0"); err == nil {
		t.Fatal("port 0 without a daemon gave addresses")
	}
	got, err := Addresses(nil, ":22100")
	if err != nil || len(got) == 0 {
		t.Fatalf("unspecified host: %v %v", got, err)
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add(testLink(f).String())
	f.Add(linkPrefix)
	f.Add(linkPrefix + "AEAQ")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLink(s)
		if err != nil {
			return
		}
		again, err := ParseLink(l.String())
		if err != nil || again.String() != l.String() {
			t.Fatalf("re-encode of a parsed link: %v", err)
		}
	})
}
