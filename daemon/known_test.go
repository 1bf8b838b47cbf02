package daemon

import (
	"bytes"
	"encoding/base64"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// appendEntry signs b as the fixture's device (with the share key too for
// a genesis) and appends it to the share's log.
func (f *introFixture) appendEntry(t *testing.T, b members.Body) {
	t.Helper()
	pub := f.key.PublicKey()
	st, err := f.d.members.State(f.key.ID(), pub)
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.d.sign(st, f.key.ID(), b)
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind == members.KindGenesis {
		signer, _ := f.key.Signer()
		e.SignShare(signer)
	}
	if ok, err := f.d.members.Append(f.key.ID(), pub, e); err != nil || !ok {
		t.Fatalf("append %v: %v, %v", b.Kind, ok, err)
	}
}

// TestIntroducedMemberRemoved: once the share's log removes an introduced
// member, it is dropped from the introduced ones and from the share's
// peers, an introduction naming it again does not bring it back, and
// config.toml is never written.
func TestIntroducedMemberRemoved(t *testing.T) {
	f := newIntroFixture(t)
	cfgPath := filepath.Join(f.d.home, "config.toml")
	before := readFile(t, cfgPath)
	f.appendEntry(t, members.Body{Kind: members.KindGenesis, Members: []members.Member{
		{Device: members.Device(f.d.self), Level: members.ReadWrite},
		{Device: members.Device(f.writer.ID()), Level: members.ReadWrite},
		{Device: members.Device(f.newcomer.ID()), Level: members.ReadOnly},
	}})
	signer, _ := f.key.Signer()
	if n, err := f.d.readIntroduction(f.writer.ID(), f.introduction(t, f.writer, signer)); err != nil || n != 1 {
		t.Fatalf("introduction by a current rw member: %d, %v", n, err)
	}
	if !slices.Contains(f.members(t), f.newcomer.ID().String()) {
		t.Fatalf("the newcomer is not a peer: %v", f.members(t))
	}

	st, _ := f.d.members.State(f.key.ID(), f.key.PublicKey())
	f.appendEntry(t, members.Body{Kind: members.KindRemove, Member: members.Member{Device: members.Device(f.newcomer.ID())}, Epoch: st.Epoch() + 1})
	// Still stored, the union leaves it out already (the log decides).
	if slices.Contains(f.members(t), f.newcomer.ID().String()) {
		t.Fatalf("a removed member is still a peer: %v", f.members(t))
	}
	st, _ = f.d.members.State(f.key.ID(), f.key.PublicKey())
	if !f.d.forgetRemoved(f.key.ID(), st) {
		t.Fatal("the removed member was not dropped from the introduced ones")
	}
	if l, _ := f.d.known.List(f.key.ID()); len(l) != 0 {
		t.Fatalf("still kept: %+v", l)
	}
	if n, err := f.d.readIntroduction(f.writer.ID(), f.introduction(t, f.writer, signer)); err != nil || n != 0 {
		t.Fatalf("an introduction naming the removed member: %d, %v; want nothing kept", n, err)
	}
	if l, _ := f.d.known.List(f.key.ID()); len(l) != 0 {
		t.Fatalf("brought back: %+v", l)
	}
	if after := readFile(t, cfgPath); !bytes.Equal(before, after) {
		t.Fatalf("config.toml changed:\n%s\nwas:\n%s", after, before)
	}
}

// TestIntroductionNeedsACurrentWriterByTheLog: with a log, holding the
// write key is not enough: the introducer must be a current rw member.
func TestIntroductionNeedsACurrentWriterByTheLog(t *testing.T) {
	f := newIntroFixture(t)
	f.appendEntry(t, members.Body{Kind: members.KindGenesis, Members: []members.Member{
		{Device: members.Device(f.d.self), Level: members.ReadWrite},
		{Device: members.Device(f.writer.ID()), Level: members.ReadWrite},
	}})
	st, _ := f.d.members.State(f.key.ID(), f.key.PublicKey())
	f.appendEntry(t, members.Body{Kind: members.KindRemove, Member: members.Member{Device: members.Device(f.writer.ID())}, Epoch: st.Epoch() + 1})
	signer, _ := f.key.Signer()
	if n, err := f.d.readIntroduction(f.writer.ID(), f.introduction(t, f.writer, signer)); err == nil || n != 0 {
		t.Fatalf("an introduction by a removed writer: %d, %v; want it refused", n, err)
	}
	if l, _ := f.d.known.List(f.key.ID()); len(l) != 0 {
		t.Fatalf("kept: %+v", l)
	}
}

// TestIntroducedMemberNotImported: a member introduced before this
// device's log names it is not added to the log at rw as a peer paired
// before logs (importPeers): the log that admitted it says its level.
func TestIntroducedMemberNotImported(t *testing.T) {
	f := newIntroFixture(t)
	f.appendEntry(t, members.Body{Kind: members.KindGenesis, Members: []members.Member{
		{Device: members.Device(f.d.self), Level: members.ReadWrite},
		{Device: members.Device(f.writer.ID()), Level: members.ReadWrite},
	}})
	signer, _ := f.key.Signer()
	if n, err := f.d.readIntroduction(f.writer.ID(), f.introduction(t, f.writer, signer)); err != nil || n != 1 {
		t.Fatalf("introduction: %d, %v", n, err)
	}
	c, err := LoadConfig(f.d.home)
	if err != nil {
		t.Fatal(err)
	}
	s := f.d.withKnown(c).Shares[0]
	if !slices.Contains(s.Peers, f.newcomer.ID().String()) {
		t.Fatalf("the newcomer is not a peer: %v", s.Peers)
	}
	st, _ := f.d.members.State(f.key.ID(), f.key.PublicKey())
	f.d.importPeers(f.key.ID(), f.key, s, st)
	st, _ = f.d.members.State(f.key.ID(), f.key.PublicKey())
	if in, named := st.Member(members.Device(f.newcomer.ID())); named {
		t.Fatalf("the log names the introduced member: %+v", in)
	}
}

// TestLogOnlyMemberIsAPeer: a current member only the share's log names
// (never introduced, not in config.toml) is a peer of the share all the
// same, so the manager dials and accepts it; its public key comes from the
// membership store when it has it, else from its Hello (saveKnownKey),
// kept in Pebble; an introduction giving its addresses is kept;
// config.toml is never written; once the log removes it, it is no peer.
func TestLogOnlyMemberIsAPeer(t *testing.T) {
	f := newIntroFixture(t)
	third, err := identity.Create(filepath.Join(t.TempDir(), "third"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(f.d.home, "config.toml")
	before := readFile(t, cfgPath)
	f.appendEntry(t, members.Body{Kind: members.KindGenesis, Members: []members.Member{
		{Device: members.Device(f.d.self), Level: members.ReadWrite},
		{Device: members.Device(f.writer.ID()), Level: members.ReadWrite},
		{Device: members.Device(f.newcomer.ID()), Level: members.ReadOnly},
		{Device: members.Device(third.ID()), Level: members.ReadOnly},
	}})
	union := func() *config.Config {
		t.Helper()
		c, err := LoadConfig(f.d.home)
		if err != nil {
			t.Fatal(err)
		}
		c = f.d.withKnown(c)
		f.d.mu.cfg = c
		return c
	}
	c := union()
	for _, dev := range []identity.DeviceID{f.newcomer.ID(), third.ID()} {
		if !slices.Contains(c.Shares[0].Peers, dev.String()) {
			t.Fatalf("a member only the log names is not a peer: %v", c.Shares[0].Peers)
		}
		p, err := c.FindPeer(dev.String())
		if err != nil || p.PublicKey != "" || len(p.Addresses) != 0 {
			t.Fatalf("its [[peer]]: %+v, %v; want one without key or addresses", p, err)
		}
	}
	if self, err := c.FindPeer(f.d.self.String()); err == nil {
		t.Fatalf("this device is its own peer: %+v", self)
	}

	// The membership store has the newcomer's key (from its join): the DHT
	// can find it. An introduction of it with addresses is kept.
	if err := f.d.members.PutPublicKey(f.key.ID(), members.Device(f.newcomer.ID()), f.newcomer.PublicKey()); err != nil {
		t.Fatal(err)
	}
	newKey := base64.StdEncoding.EncodeToString(f.newcomer.PublicKey())
	if p, err := union().FindPeer(f.newcomer.ID().String()); err != nil || p.PublicKey != newKey {
		t.Fatalf("with its key in the membership store: %+v, %v", p, err)
	}
	signer, _ := f.key.Signer()
	if n, err := f.d.readIntroduction(f.writer.ID(), f.introduction(t, f.writer, signer)); err != nil || n != 1 {
		t.Fatalf("an introduction with its addresses: %d, %v; want it kept", n, err)
	}
	if p, err := union().FindPeer(f.newcomer.ID().String()); err != nil || !slices.Equal(p.Addresses, []string{"127.0.0.1:9"}) {
		t.Fatalf("after the introduction: %+v, %v; want its address", p, err)
	}

	// The third's key comes with its Hello.
	text := base64.StdEncoding.EncodeToString(third.PublicKey())
	if !f.d.saveKnownKey(third.ID(), text) {
		t.Fatal("the key of a member only the log names was not kept")
	}
	if p, err := union().FindPeer(third.ID().String()); err != nil || p.PublicKey != text {
		t.Fatalf("after its Hello: %+v, %v; want its key", p, err)
	}

	st, _ := f.d.members.State(f.key.ID(), f.key.PublicKey())
	f.appendEntry(t, members.Body{Kind: members.KindRemove, Member: members.Member{Device: members.Device(third.ID())}, Epoch: st.Epoch() + 1})
	st, _ = f.d.members.State(f.key.ID(), f.key.PublicKey())
	f.d.forgetRemoved(f.key.ID(), st)
	if peers := union().Shares[0].Peers; slices.Contains(peers, third.ID().String()) {
		t.Fatalf("a removed member is still a peer: %v", peers)
	}
	if after := readFile(t, cfgPath); !bytes.Equal(before, after) {
		t.Fatalf("config.toml changed:\n%s\nwas:\n%s", after, before)
	}
}
