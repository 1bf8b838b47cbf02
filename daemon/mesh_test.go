package daemon

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/known"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// introFixture is a home (not running) holding one share, whose member
// "writer" holds the share's key, and an introduction of "newcomer" by it.
type introFixture struct {
	d        *Daemon
	key      share.Key
	writer   *identity.Identity
	newcomer *identity.Identity
}

func newIntroFixture(t *testing.T) *introFixture {
	t.Helper()
	home := newHome(t)
	writer, err := identity.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	newcomer, err := identity.Create(filepath.Join(t.TempDir(), "n"))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key := share.FromSecret(sec)
	s := config.NewShare(key.ID().String(), filepath.Join(t.TempDir(), "s"), key.String())
	s.Peers = []string{writer.ID().String()}
	err = EditConfig(home, func(c *config.Config) error {
		if err := c.AddPeer(config.Peer{ID: writer.ID().String()}); err != nil {
			return err
		}
		return c.AddShare(s)
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(filepath.Join(t.TempDir(), "db"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := &Daemon{opts: Options{Home: home}, home: home, id: id, self: id.ID(), log: testLogger(t),
		members: members.Open(db), known: known.Open(db)}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	d.mu.cfg = cfg
	return &introFixture{d: d, key: key, writer: writer, newcomer: newcomer}
}

// introduction signs an introduction of the newcomer by the writer, with
// the given share signing key.
func (f *introFixture) introduction(t *testing.T, by *identity.Identity, shareSigner ed25519.PrivateKey) *wire.Introduction {
	t.Helper()
	body, err := wire.EncodeIntroductionBody(wire.IntroductionBody{
		Share: f.key.ID(), Introducer: by.ID(), Issued: time.Now(),
		Members: []wire.IntroducedMember{{
			Device: f.newcomer.ID(), PublicKey: f.newcomer.PublicKey(),
			Addresses: []string{"127.0.0.1:9", "0.0.0.0:1"}, Name: "newcomer",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.Introduction{Body: body, DeviceKey: [32]byte(by.PublicKey())}
	copy(m.DeviceSig[:], by.Sign(m.SignedBytes()))
	copy(m.WriterSig[:], ed25519.Sign(shareSigner, m.SignedBytes()))
	return m
}

// members is the share's peers as the daemon applies them: config.toml's
// and the introduced ones.
func (f *introFixture) members(t *testing.T) []string {
	t.Helper()
	c, err := LoadConfig(f.d.opts.Home)
	if err != nil {
		t.Fatal(err)
	}
	return f.d.withKnown(c).Shares[0].Peers
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIntroductionAddsMember: a writer's introduction makes the newcomer a
// peer of the share, with its key and its dialable address only, kept in
// Pebble: config.toml is not written.
func TestIntroductionAddsMember(t *testing.T) {
	f := newIntroFixture(t)
	cfgPath := filepath.Join(f.d.home, "config.toml")
	before := readFile(t, cfgPath)
	signer, _ := f.key.Signer()
	n, err := f.d.readIntroduction(f.writer.ID(), f.introduction(t, f.writer, signer))
	if err != nil || n == 0 {
		t.Fatalf("a writer's introduction: %d, %v", n, err)
	}
	if !slices.Contains(f.members(t), f.newcomer.ID().String()) {
		t.Fatalf("the newcomer is not a member: %v", f.members(t))
	}
	c, _ := LoadConfig(f.d.opts.Home)
	p, err := f.d.withKnown(c).FindPeer(f.newcomer.ID().String())
	if err != nil || p.PublicKey == "" || !slices.Equal(p.Addresses, []string{"127.0.0.1:9"}) {
		t.Fatalf("the newcomer's entry: %+v, %v (want its key, and only the dialable address)", p, err)
	}
	list, err := f.d.known.List(f.key.ID())
	if err != nil || len(list) != 1 || identity.DeviceID(list[0].IntroducedBy) != f.writer.ID() || list[0].Name != "newcomer" || list[0].At.IsZero() {
		t.Fatalf("kept %+v, %v; want the newcomer, introduced by the writer, named, dated", list, err)
	}
	if after := readFile(t, cfgPath); !bytes.Equal(before, after) {
		t.Fatalf("config.toml changed:\n%s\nwas:\n%s", after, before)
	}
	// Again: nothing new, nothing written.
	if n, err := f.d.readIntroduction(f.writer.ID(), f.introduction(t, f.writer, signer)); err != nil || n != 0 {
		t.Fatalf("the same introduction again: %d, %v", n, err)
	}
}

func TestIntroductionRefused(t *testing.T) {
	f := newIntroFixture(t)
	signer, _ := f.key.Signer()
	_, notTheShare, _ := ed25519.GenerateKey(rand.Reader)
	stranger, err := identity.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	forgedDevice := f.introduction(t, f.writer, signer)
	forgedDevice.DeviceSig[0] ^= 1
	for _, tc := range []struct {
		name   string
		remote identity.DeviceID
		m      *wire.Introduction
		want   string
	}{
		{"not a writer (read-only member signs with another key)", f.writer.ID(), f.introduction(t, f.writer, notTheShare), "may not add members"},
		{"not a member of the share", stranger.ID(), f.introduction(t, stranger, signer), "may not add members"},
		{"sent by another device than the signer", stranger.ID(), f.introduction(t, f.writer, signer), "not signed by the device that sent it"},
		{"device signature forged", f.writer.ID(), forgedDevice, "device signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := f.d.readIntroduction(tc.remote, tc.m)
			if !errors.Is(err, errIntroduction) || !strings.Contains(err.Error(), tc.want) || n != 0 {
				t.Fatalf("got %d, %v; want errIntroduction saying %q", n, err, tc.want)
			}
			if got := f.members(t); !slices.Equal(got, []string{f.writer.ID().String()}) {
				t.Fatalf("members changed to %v", got)
			}
		})
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
