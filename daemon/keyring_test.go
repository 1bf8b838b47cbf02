package daemon

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/share"
)

// TestPairLink: a pair link is a keyring invitation marked as such; a
// share's link parser refuses it and the pair parser refuses a share's link.
func TestPairLink(t *testing.T) {
	l := testLink(t)
	text := PairLink(l)
	if !IsPairLink(text) || IsPairLink(l.String()) || !IsPairLink(strings.ToUpper(text)) {
		t.Fatalf("IsPairLink wrong on %q / %q", text, l.String())
	}
	got, err := ParsePairLink(text)
	if err != nil || got.Key.ID() != l.Key.ID() || got.Token != l.Token || got.Device != l.Device {
		t.Fatalf("ParsePairLink: %+v %v", got, err)
	}
	if _, err := ParseLink(text); !errors.Is(err, ErrBadLink) {
		t.Errorf("ParseLink of a pair link: %v", err)
	}
	if _, err := ParsePairLink(l.String()); !errors.Is(err, ErrBadLink) {
		t.Errorf("ParsePairLink of a share's link: %v", err)
	}
	if _, err := ParsePairLink(text[:len(text)-3]); !errors.Is(err, ErrBadLink) {
		t.Errorf("ParsePairLink of a cut link: %v", err)
	}
}

// TestJoinPairLink: Join of a pair link puts the keyring in the home,
// records DIR, and refuses a second keyring; a share's link without a
// path is refused rather than joined into the working folder.
func TestJoinPairLink(t *testing.T) {
	home := joinHome(t)
	now := time.Unix(1_800_000_000, 0)
	l := testLink(t)
	dir := filepath.Join(t.TempDir(), "mine")
	res, err := Join(home, PairLink(l), dir, now)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	ks := keyringOf(home, cfg)
	if ks == nil || ks.ID != l.Key.ID().String() || ks.Path != KeyringPath(home) || res.Path != ks.Path ||
		ks.JoinFrom != l.Device.String() || cfg.Device.KeyringDir != dir {
		t.Fatalf("after join: keyring %+v, dir %q, result %+v", ks, cfg.Device.KeyringDir, res)
	}
	if err := CheckSharePath(home, ks.Path); err != nil {
		t.Errorf("the keyring's folder is refused as a share: %v", err)
	}
	if err := CheckSharePath(home, filepath.Join(home, "other")); !errors.Is(err, ErrUnsafeShare) {
		t.Errorf("another folder in the home: %v", err)
	}
	// The same link again is fine; another keyring is not.
	if _, err := Join(home, PairLink(l), dir, now); err != nil {
		t.Errorf("the same pair link again: %v", err)
	}
	other := testLink(t)
	secret, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	other.Key = share.FromSecret(secret)
	if _, err := Join(home, PairLink(other), dir, now); !errors.Is(err, ErrKeyring) {
		t.Errorf("a second keyring: %v", err)
	}
	if _, err := Join(home, PairLink(l), dir, l.Expires.Add(time.Second)); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("an expired pair link: %v", err)
	}
	if _, err := Join(home, testLink(t).String(), "", now); err == nil || !strings.Contains(err.Error(), "PATH") {
		t.Errorf("a share's link without a path: %v", err)
	}
}

// TestPairMakesOneKeyring: Pair makes the keyring once and hands out a
// pair link whose short code gives the pair link too.
func TestPairMakesOneKeyring(t *testing.T) {
	home := joinHome(t)
	opts := InviteOptions{Addresses: []string{"127.0.0.1:1"}}
	a, err := Pair(home, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Pair(home, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a.Keyring != b.Keyring || !IsPairLink(a.Link) || a.Link == b.Link {
		t.Fatalf("two pairs: %+v / %+v", a, b)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Shares); n != 1 {
		t.Fatalf("%d shares after two pairs, want the keyring only", n)
	}
	for _, in := range cfg.Invites {
		if in.Code == a.Code && in.Link != a.Link {
			t.Errorf("the code hands out %q, not the pair link", in.Link)
		}
	}
	if _, err := Pair(home, InviteOptions{ReadOnly: true, Addresses: opts.Addresses}); !errors.Is(err, ErrKeyring) {
		t.Errorf("a read-only pair: %v", err)
	}
}
