package wire

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleIntroBody() []byte {
	b, err := EncodeIntroductionBody(IntroductionBody{
		Share: fill32(9), Introducer: fill32(1), Issued: time.Unix(1764720000, 0),
		Members: []IntroducedMember{
			{Device: fill32(2), PublicKey: make([]byte, 32), Addresses: []string{"192.0.2.1:22100"}, Name: "phone"},
			{Device: fill32(3)},
		},
	})
	if err != nil {
		panic(err)
	}
	return b
}

func TestIntroductionBodyRoundTrip(t *testing.T) {
	b := sampleIntroBody()
	got, err := DecodeIntroductionBody(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EncodeIntroductionBody(got)
	if err != nil || string(again) != string(b) {
		t.Fatalf("re-encoding changed the bytes (%v): signatures would break", err)
	}
	if got.Members[0].Name != "phone" || got.Members[1].Device != fill32(3) || !got.Issued.Equal(time.Unix(1764720000, 0)) {
		t.Fatalf("decoded %+v", got)
	}
}

func TestIntroductionBodyRefused(t *testing.T) {
	base := func() IntroductionBody {
		return IntroductionBody{Share: fill32(9), Introducer: fill32(1), Members: []IntroducedMember{{Device: fill32(2)}}}
	}
	many := base()
	for range MaxIntroduced {
		many.Members = append(many.Members, IntroducedMember{Device: fill32(4)})
	}
	addrs := base()
	addrs.Members[0].Addresses = []string{"192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1", "192.0.2.4:1", "192.0.2.5:1"}
	key := base()
	key.Members[0].PublicKey = []byte{1, 2, 3}
	long := base()
	long.Members[0].Addresses = []string{strings.Repeat("1", 65)}
	name := base()
	name.Members[0].Name = "\xff"
	for what, b := range map[string]IntroductionBody{
		"too many members": many, "too many addresses": addrs, "short key": key,
		"long address": long, "bad name": name,
	} {
		if _, err := EncodeIntroductionBody(b); err == nil {
			t.Errorf("%s: encoded", what)
		}
	}
	for _, junk := range [][]byte{{0xff}, {0x0a, 0x01, 0x01}, []byte(strings.Repeat("\x22\x00", 40000))} {
		if _, err := DecodeIntroductionBody(junk); err == nil {
			t.Errorf("decoded %q", junk[:min(len(junk), 8)])
		}
	}
}

// FuzzIntroductionBody: no input panics; what decodes re-encodes to a
// body that decodes the same.
func FuzzIntroductionBody(f *testing.F) {
	f.Add(sampleIntroBody())
	f.Add([]byte{0x0a, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeIntroductionBody(b)
		if err != nil {
			return
		}
		again, err := EncodeIntroductionBody(got)
		if err != nil {
			t.Fatalf("decoded body does not encode: %v", err)
		}
		back, err := DecodeIntroductionBody(again)
		if err != nil || !reflect.DeepEqual(norm(back), norm(got)) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, got)
		}
	})
}

func norm(b IntroductionBody) IntroductionBody {
	for i := range b.Members {
		if len(b.Members[i].PublicKey) == 0 {
			b.Members[i].PublicKey = nil
		}
		if len(b.Members[i].Addresses) == 0 {
			b.Members[i].Addresses = nil
		}
	}
	return b
}
