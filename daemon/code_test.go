package daemon

import (
	"bytes"
	"errors"
	"testing"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

func TestCodes(t *testing.T) {
	code, err := newCode(nil)
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
		"7F3KQ-2XM9O":   "7F3KQ2XM90",
		"7F3KQ-2XM9I":   "7F3KQ2XM91",
	}
	for in, want := range good {
		if got, err := parseCode(in); err != nil || got != want {
			t.Errorf("parseCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "7F3KQ", "7F3KQ-2XM9D-1", "7F3KQ-2XM9U", "https://x"} {
		if _, err := parseCode(bad); !errors.Is(err, ErrBadCode) {
			t.Errorf("parseCode(%q) = %v, want ErrBadCode", bad, err)
		}
	}
}

func TestNewCodeAvoidsTakenLocators(t *testing.T) {
	taken := map[string]bool{}
	for range 200 {
		c, err := newCode(func(loc string) bool { return taken[loc] })
		if err != nil {
			t.Fatal(err)
		}
		loc := c[:codeLocator]
		if taken[loc] {
			t.Fatalf("code %s reuses the taken locator %s", c, loc)
		}
		taken[loc] = true
	}
	all := func(string) bool { return true }
	if _, err := newCode(all); err == nil {
		t.Fatal("newCode with every locator taken succeeded")
	}
}

func testDevices(t *testing.T) (inviter, joiner identity.DeviceID) {
	t.Helper()
	a, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return a.ID(), b.ID()
}

// exchange runs both sides of a code's PAKE: the joiner with joinCode,
// the inviter with code.
func exchange(t *testing.T, code, joinCode, link string, inviter, joiner identity.DeviceID) (string, error) {
	t.Helper()
	jc, err := parseCode(joinCode)
	if err != nil {
		t.Fatal(err)
	}
	p, first, err := pakeStart(jc)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := splitCode(jc)
	resp, err := answerCode(code, link, inviter, joiner, &wire.CodeRequest{Locator: loc, Pake: first})
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if bytes.Contains(resp.Sealed, []byte(link)) || bytes.Contains(resp.Pake, []byte(link)) {
		t.Fatal("the link travels in the clear")
	}
	return openAnswer(p, jc, inviter, joiner, resp)
}

func TestCodeExchange(t *testing.T) {
	inviter, joiner := testDevices(t)
	const link = "blueshift://join/example-link-text"
	got, err := exchange(t, "7F3KQ-2XM9D", "7f3kq 2xm9d", link, inviter, joiner)
	if err != nil || got != link {
		t.Fatalf("right code: %q, %v", got, err)
	}
	// One character off in the password: the joiner cannot open it.
	if got, err := exchange(t, "7F3KQ-2XM9D", "7F3KQ-2XM9E", link, inviter, joiner); err == nil {
		t.Fatalf("wrong code opened the invitation: %q", got)
	}
	// The key is bound to both devices: a joiner that is not the one the
	// inviter answered cannot open the answer.
	other, _ := testDevices(t)
	jc, _ := parseCode("7F3KQ-2XM9D")
	p, first, _ := pakeStart(jc)
	resp, err := answerCode("7F3KQ-2XM9D", link, inviter, joiner, &wire.CodeRequest{Locator: "7F", Pake: first})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openAnswer(p, jc, inviter, other, resp); err == nil {
		t.Fatal("an answer made for one device opened for another")
	}
}

func TestCodeExchangeTampered(t *testing.T) {
	inviter, joiner := testDevices(t)
	jc, _ := parseCode("7F3KQ-2XM9D")
	p, first, _ := pakeStart(jc)
	resp, err := answerCode("7F3KQ-2XM9D", "blueshift://join/x", inviter, joiner, &wire.CodeRequest{Locator: "7F", Pake: first})
	if err != nil {
		t.Fatal(err)
	}
	resp.Sealed[len(resp.Sealed)-1] ^= 1
	if _, err := openAnswer(p, jc, inviter, joiner, resp); err == nil {
		t.Fatal("a tampered answer opened")
	}
}

// Hostile PAKE messages are errors, never panics.
func TestCodeBadPakeMessages(t *testing.T) {
	inviter, joiner := testDevices(t)
	for _, msg := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"Role":0}`, `{"Role":1,"Xᵤ":1,"Xᵥ":2}`,
		`{"Role":0,"Xᵤ":null,"Xᵥ":null}`, `{"Role":0,"Xᵤ":1,"Xᵥ":2}`, `{"Role":0,"Xᵤ":"a","Xᵥ":"b"}`,
		`{"Role":0,"Xᵤ":-1,"Xᵥ":0}`, `{"Role":0,"Xᵤ":0,"Xᵥ":0,"Uᵤ":null}`,
	} {
		if _, err := answerCode("7F3KQ-2XM9D", "l", inviter, joiner, &wire.CodeRequest{Locator: "7F", Pake: []byte(msg)}); err == nil {
			t.Errorf("PAKE message %s accepted", msg)
		}
	}
}

func FuzzCodeRequest(f *testing.F) {
	jc, _ := parseCode("7F3KQ-2XM9D")
	_, first, _ := pakeStart(jc)
	f.Add(first)
	f.Add([]byte(`{"Role":0,"Xᵤ":1,"Xᵥ":2}`))
	f.Add([]byte(`null`))
	a, _ := identity.Generate()
	b, _ := identity.Generate()
	f.Fuzz(func(t *testing.T, msg []byte) {
		resp, err := answerCode("7F3KQ-2XM9D", "l", a.ID(), b.ID(), &wire.CodeRequest{Locator: "7F", Pake: msg})
		if err == nil && (len(resp.Pake) == 0 || len(resp.Sealed) == 0) {
			t.Fatal("answered with an empty response")
		}
	})
}
