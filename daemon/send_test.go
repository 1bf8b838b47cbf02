package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

func newTestHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if _, err := identity.Create(home); err != nil {
		t.Fatal(err)
	}
	cfg := config.New("test")
	cfg.Device.Listen = "127.0.0.1:22000"
	if err := cfg.Save(home); err != nil {
		t.Fatal(err)
	}
	return home
}

// A send stages links, not copies; the same paths again while the offer
// is open give the same code; ending it removes the links only; an
// expired send is swept.
func TestSendLifecycle(t *testing.T) {
	home := newTestHome(t)
	src := t.TempDir()
	file := filepath.Join(src, "report.pdf")
	if err := os.WriteFile(file, []byte("pdf bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "album", "2026"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "album", "2026", "p.jpg"), []byte("jpg"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := StartSend(home, []string{file, filepath.Join(src, "album")}, SendOptions{Now: now, Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if s.Files != 2 || s.Bytes != int64(len("pdf bytes")+len("jpg")) || !IsCode(s.Code) {
		t.Fatalf("offer %+v", s)
	}
	a, _ := os.Stat(file)
	b, err := os.Stat(filepath.Join(s.Stage, "report.pdf"))
	if err != nil || !os.SameFile(a, b) {
		t.Fatalf("the staged report is not a link to the user's file: %v", err)
	}
	again, err := StartSend(home, []string{file, filepath.Join(src, "album")}, SendOptions{Now: now.Add(time.Minute)})
	if err != nil || again.Code != s.Code || again.ShareID != s.ShareID || !again.Resumed {
		t.Fatalf("the same send again: %+v, %v; want the open offer %s", again, err, s.Code)
	}
	if err := FinishSend(home, s.ShareID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Stage); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the staging folder stays: %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "pdf bytes" {
		t.Fatalf("ending the send touched the user's file: %q, %v", b, err)
	}
	cfg, _ := LoadConfig(home)
	if len(cfg.Shares) != 0 || len(cfg.Invites) != 0 {
		t.Fatalf("after FinishSend: %d shares, %d invites", len(cfg.Shares), len(cfg.Invites))
	}

	s2, err := StartSend(home, []string{file}, SendOptions{Now: now, Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := SweepSends(home, now.Add(30*time.Second)); n != 0 || err != nil {
		t.Fatalf("sweep before the expiry: %d, %v", n, err)
	}
	if n, err := SweepSends(home, now.Add(2*time.Minute)); n != 1 || err != nil {
		t.Fatalf("sweep after the expiry: %d, %v", n, err)
	}
	if _, err := os.Stat(s2.Stage); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an expired send's staging folder stays: %v", err)
	}
}

func TestSendRefusesTheHome(t *testing.T) {
	home := newTestHome(t)
	for _, p := range []string{home, filepath.Join(home, "device.key"), filepath.Dir(home)} {
		if _, err := StartSend(home, []string{p}, SendOptions{}); !errors.Is(err, ErrUnsafeShare) {
			t.Errorf("send %s: %v, want ErrUnsafeShare", p, err)
		}
	}
	if _, err := StartSend(home, []string{filepath.Join(t.TempDir(), "missing")}, SendOptions{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("send of a missing file: %v", err)
	}
}

func TestFreeName(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "a (2).txt"), nil, 0o644)
	if got := filepath.Base(freeName(dir, "a.txt")); got != "a (3).txt" {
		t.Fatalf("freeName = %q", got)
	}
	if got := filepath.Base(freeName(dir, "b")); got != "b" {
		t.Fatalf("freeName = %q", got)
	}
}

// A send staged inside a share's folder is a nested share from the first
// staged file on: a scan of the share around it records the staging folder
// at most, never a staged file (which may come from outside that share).
func TestStagedSendHiddenFromOuterShare(t *testing.T) {
	outer := t.TempDir()
	src := filepath.Join(t.TempDir(), "private.txt") // not in the outer share
	if err := os.WriteFile(src, []byte("only for the receiver"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(outer, sendPrefix+"0123456789ab")
	if _, _, err := stage(dir, []string{src}); err != nil {
		t.Fatal(err)
	}
	db, err := index.Open(filepath.Join(t.TempDir(), "db"), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sec, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Share(share.FromSecret(sec), outer, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(context.Background(), index.ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	err = s.Records(func(e index.Entry) error {
		if strings.Contains(string(e.Record.Path), "/") {
			return fmt.Errorf("the outer share recorded %q, a staged file", e.Record.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A send whose receiver joined (the single-use code is spent) is still
// found by the same paths: a sender killed midway and run again goes on
// with it, under the same code, rather than offering a new send.
func TestSendAgainAfterTheReceiverJoined(t *testing.T) {
	home := newTestHome(t)
	file := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(file, []byte("bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := StartSend(home, []string{file}, SendOptions{Now: now, Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// What admitting the receiver does to the configuration (invite.go).
	rid, err := identity.Create(filepath.Join(t.TempDir(), "receiver"))
	if err != nil {
		t.Fatal(err)
	}
	receiver := rid.ID().String()
	err = EditConfig(home, func(c *config.Config) error {
		sh, err := c.FindShare(s.ShareID)
		if err != nil {
			return err
		}
		if err := c.AddPeer(config.Peer{ID: receiver, Name: "receiver"}); err != nil {
			return err
		}
		sh.Peers = append(sh.Peers, receiver)
		c.Invites = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := StartSend(home, []string{file}, SendOptions{Now: now.Add(time.Minute)})
	if err != nil || again.Code != s.Code || again.ShareID != s.ShareID || !again.Resumed {
		t.Fatalf("the same send after its receiver joined: %+v, %v; want the send in progress %s", again, err, s.Code)
	}
	if cfg, _ := LoadConfig(home); len(cfg.Shares) != 1 {
		t.Fatalf("%d shares after the send ran again; want the one in progress", len(cfg.Shares))
	}
}
