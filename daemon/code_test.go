package daemon

import (
	"errors"
	"strings"
	"testing"
)

func TestCodes(t *testing.T) {
	code, err := newCode()
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != codeChars+1 || code[codeChars/2] != '-' {
		t.Fatalf("code %q is not XXXXX-XXXXX", code)
	}
	good := map[string]string{
		"7F3KQ-2XM9D":   "7F3KQ2XM9D",
		"7f3kq2xm9d":    "7F3KQ2XM9D",
		" 7F3KQ 2XM9D ": "7F3KQ2XM9D",
		"OIL23-45678":   "01123" + "45678", // O reads as 0, I and L as 1
	}
	for in, want := range good {
		if got, err := parseCode(in); err != nil || got != want {
			t.Errorf("parseCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "7F3KQ-2XM9", "7F3KQ-2XM9DD", "7F3KQ-2XM9U", "bs1-AAAA", "7F3KQ_2XM9D"} {
		if _, err := parseCode(bad); !errors.Is(err, ErrBadCode) {
			t.Errorf("parseCode(%q) = %v, want ErrBadCode", bad, err)
		}
	}
}

func TestSealedLinks(t *testing.T) {
	link := "bs1-" + strings.Repeat("A", 300)
	sealed, err := sealLink("7F3KQ-2XM9D", link)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openLink("7f3kq2xm9d", sealed); err != nil || got != link {
		t.Fatalf("open with the code (typed differently): %q, %v", got, err)
	}
	if _, err := openLink("7F3KQ-2XM9E", sealed); err == nil {
		t.Fatal("another code opened the invitation")
	}
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	if _, err := openLink("7F3KQ-2XM9D", flipped); err == nil {
		t.Fatal("a tampered invitation opened")
	}
	if _, err := openLink("7F3KQ-2XM9D", sealed[:20]); err == nil {
		t.Fatal("a truncated invitation opened")
	}
	if again, _ := sealLink("7F3KQ-2XM9D", link); string(again) == string(sealed) {
		t.Fatal("two seals of one link are equal: salt or nonce not random")
	}
}
