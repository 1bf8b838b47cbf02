package daemon

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// joinHome is a fresh device home (identity and config) in a temp folder.
func joinHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	if _, err := identity.Create(home); err != nil {
		t.Fatal(err)
	}
	if err := config.New("joiner").Save(home); err != nil {
		t.Fatal(err)
	}
	return home
}

// TestJoinWritesAPendingJoin: Join records the token as the share's
// pending join; joining again with a new link replaces a refused token;
// Unjoin takes a refused join back out, with the inviter it added.
func TestJoinWritesAPendingJoin(t *testing.T) {
	home := joinHome(t)
	l := testLink(t)
	dir := filepath.Join(t.TempDir(), "photos")
	now := time.Unix(1_800_000_000, 0)
	res, err := Join(home, l.String(), dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if !res.AddedPeer || res.Inviter != l.Device.String() {
		t.Fatalf("join result %+v", res)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cfg.FindShare(res.ShareID)
	if s.JoinFrom != l.Device.String() || s.JoinToken != hex.EncodeToString(l.Token[:]) || s.JoinRefused != "" {
		t.Fatalf("share after join: %+v", s)
	}
	if p, _ := cfg.FindPeer(res.Inviter); p == nil || p.Invite != "" {
		t.Fatalf("inviter after join: %+v", p)
	}

	// Refused; a new link for the same folder replaces the token.
	refuse := func() {
		t.Helper()
		err := EditConfig(home, func(c *config.Config) error {
			s, _ := c.FindShare(res.ShareID)
			s.JoinToken, s.JoinRefused = "", "the invitation expired"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	refuse()
	l2 := l
	l2.Token[0] ^= 0xff
	if _, err := Join(home, l2.String(), dir, now); err != nil {
		t.Fatalf("join again after a refusal: %v", err)
	}
	cfg, _ = LoadConfig(home)
	if s, _ := cfg.FindShare(res.ShareID); s.JoinToken != hex.EncodeToString(l2.Token[:]) || s.JoinRefused != "" {
		t.Fatalf("share after joining again: %+v", s)
	}
	// Into another folder, it is a second copy of the share: refused.
	if _, err := Join(home, l2.String(), filepath.Join(t.TempDir(), "elsewhere"), now); err == nil || !strings.Contains(err.Error(), "already has share") {
		t.Fatalf("join into another folder: %v", err)
	}

	// Unjoin leaves a pending or accepted join alone, and takes a refused
	// one out with the inviter Join added.
	if err := Unjoin(home, res); err != nil {
		t.Fatal(err)
	}
	if cfg, _ = LoadConfig(home); len(cfg.Shares) != 1 {
		t.Fatalf("Unjoin removed a pending join: %+v", cfg.Shares)
	}
	refuse()
	if err := Unjoin(home, res); err != nil {
		t.Fatal(err)
	}
	if cfg, _ = LoadConfig(home); len(cfg.Shares) != 0 || len(cfg.Peers) != 0 {
		t.Fatalf("after Unjoin: shares %+v, peers %+v", cfg.Shares, cfg.Peers)
	}
}
