package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestE2EShareRemoveLeavesKeyring: a share removed on one device of a
// person leaves the keyring (its record file is deleted), so the person's
// other device, which followed it from the keyring, stops following it
// (its files stay); the other shares are followed as before.
func TestE2EShareRemoveLeavesKeyring(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, l := newDevice(t, "alice"), newDevice(t, "laptop")
	work := t.TempDir()
	in := func(parts ...string) string { return filepath.Join(append([]string{work}, parts...)...) }
	write(t, in("a", "docs", "plan.txt"), "the plan\n")
	write(t, in("a", "keep", "notes.txt"), "notes\n")
	a.ok("share", "add", in("a", "docs"), "--name", "docs")
	a.ok("share", "add", in("a", "keep"), "--name", "keep")
	a.start()
	l.start()
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nlaptop:\n%s", a.logText(), l.logText())
		}
	}()
	var pr daemon.PairResult
	if err := json.Unmarshal([]byte(a.ok("pair", "--json")), &pr); err != nil {
		t.Fatal(err)
	}
	l.ok("join", pr.Link, in("l"))
	waitTrees(t, in("a", "docs"), in("l", "docs"), "the laptop follows docs", a, l)
	waitTrees(t, in("a", "keep"), in("l", "keep"), "the laptop follows keep", a, l)
	docsID := ""
	for _, s := range a.waitFor("docs listed", func(daemon.Status) bool { return true }).Shares {
		if s.Name == "docs" {
			docsID = s.ID
		}
	}
	record := daemon.KeyringDir + "/" + docsID + ".cap"
	if _, err := os.Stat(filepath.Join(l.home, record)); err != nil {
		t.Fatalf("the laptop's keyring has no record of docs: %v", err)
	}

	_, errOut, code := a.cli("share", "remove", "docs")
	if code != 0 || !strings.Contains(errOut, "keyring") {
		t.Fatalf("share remove docs: exit %d, %q: want a note that it left the keyring", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(a.home, record)); !os.IsNotExist(err) {
		t.Fatalf("alice's keyring still holds the record of docs (%v)", err)
	}
	has := func(st daemon.Status, name string) bool {
		return slices.ContainsFunc(st.Shares, func(s daemon.ShareStatus) bool { return s.Name == name })
	}
	l.waitFor("the laptop stops following docs", func(st daemon.Status) bool { return !has(st, "docs") && has(st, "keep") })
	if _, err := os.Stat(filepath.Join(l.home, record)); !os.IsNotExist(err) {
		t.Errorf("the laptop's keyring still holds the record of docs (%v)", err)
	}
	if b, err := os.ReadFile(in("l", "docs", "plan.txt")); err != nil || string(b) != "the plan\n" {
		t.Errorf("the laptop's copy of docs is gone: %q %v", b, err)
	}
	// keep still syncs to the laptop.
	write(t, in("a", "keep", "more.txt"), "more\n")
	waitTrees(t, in("a", "keep"), in("l", "keep"), "keep still syncs", a, l)
}

// newSwarmSet is the swarmed sends' set-up: alice shares docs, holding the
// files named (size random bytes each); her laptop follows docs, and
// alice has its address (LAN discovery or the DHT would tell her; both
// are off in tests); bob receives slowly enough (2 MiB/s) for a device to
// be killed midway. in makes paths under the test's folder: docs is
// in("a", "docs"), the laptop's copy in("l", "docs").
func newSwarmSet(t *testing.T, size int, files ...string) (a, l, b *device, in func(...string) string) {
	t.Helper()
	a, l, b = newDevice(t, "alice"), newDevice(t, "laptop"), newDevice(t, "bob")
	work := t.TempDir()
	in = func(parts ...string) string { return filepath.Join(append([]string{work}, parts...)...) }
	for _, f := range files {
		randomFile(t, in("a", "docs", f), size)
	}
	a.ok("share", "add", in("a", "docs"), "--name", "docs")
	a.start()
	l.start()
	b.startRun("--max-recv-rate", "2MiB")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nlaptop:\n%s\nbob:\n%s", a.logText(), l.logText(), b.logText())
		}
	})
	var pr daemon.PairResult
	if err := json.Unmarshal([]byte(a.ok("pair", "--json")), &pr); err != nil {
		t.Fatal(err)
	}
	l.ok("join", pr.Link, in("l"))
	waitTrees(t, in("a", "docs"), in("l", "docs"), "the laptop follows docs", a, l)
	stL, _ := l.status()
	a.ok("peer", "add", strings.TrimSpace(l.ok("id")), "--addr", stL.Listen)
	return a, l, b, in
}

// TestE2ESendSwarm: alice sends a file of her share docs, which her
// paired laptop holds too, to bob, a device paired with neither. Bob
// fetches from the laptop as well as from alice (the laptop's status
// counts what it served), and a second send still completes when alice
// is killed (SIGKILL) midway, from the laptop alone. A ticket that is
// forged, expired, made for another device (a captured one replayed), or
// shown for a block it does not name gets nothing from the laptop.
func TestE2ESendSwarm(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const size = 24 << 20
	a, l, b, in := newSwarmSet(t, size, "one.bin", "two.bin")
	stA, _ := a.status()

	receive := func(s *sender, into string) *receiving {
		return startReceive(t, b, s.offer.Code, into, stA.Listen, e2eDeadline)
	}
	same := func(a, b string) {
		t.Helper()
		x, err1 := os.ReadFile(a)
		y, err2 := os.ReadFile(b)
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Fatalf("%s and %s differ (%v %v)", a, b, err1, err2)
		}
	}

	// 1. Both of alice's devices serve bob.
	s := startSend(t, a, in("a", "docs"), "one.bin", "--addr", stA.Listen)
	if err := receive(s, in("b1")).wait(); err != nil {
		t.Fatalf("receive: %v", err)
	}
	same(in("a", "docs", "one.bin"), in("b1", "one.bin"))
	stL, _ := l.status()
	stB, _ := b.status()
	t.Logf("the laptop served %d of %d bytes (%.0f %%); bob fetched %d from it",
		stL.Swarm.ServedBytes, size, 100*float64(stL.Swarm.ServedBytes)/size, stB.Swarm.FetchedBytes)
	if stL.Swarm.ServedBytes < size/8 || stB.Swarm.FetchedBytes < size/8 {
		t.Fatalf("the laptop served %d bytes of %d and bob counts %d from it: want a real share of the file, the same on both",
			stL.Swarm.ServedBytes, size, stB.Swarm.FetchedBytes)
	}
	s.wait(t)
	// The staging folder alice made inside docs is a share of its own from
	// the start: docs never carried the staged files to the laptop (the
	// folder itself is a nested share's placeholder there).
	staged := regexp.MustCompile(`path=\.blueshift-send-[0-9a-f]+/`)
	for _, line := range strings.Split(l.logText(), "\n") {
		if staged.MatchString(line) {
			t.Fatalf("docs synced alice's staging folder to the laptop: %s", line)
		}
	}

	// 2. alice dies midway; the laptop alone completes the send.
	served := stL.Swarm.ServedBytes
	s = startSend(t, a, in("a", "docs"), "two.bin", "--addr", stA.Listen)
	rc := receive(s, in("b2"))
	b.waitFor("a quarter of two.bin arrived, and the ticket", func(st daemon.Status) bool {
		if st.Swarm.Helpers == 0 {
			return false
		}
		for _, sh := range st.Shares {
			if strings.HasPrefix(sh.Name, "receive-") && sh.BytesIn >= size/4 {
				return true
			}
		}
		return false
	})
	a.kill()
	if err := rc.wait(); err != nil {
		t.Fatalf("receive after the sender was killed: %v\n%s", err, rc.out)
	}
	same(in("a", "docs", "two.bin"), in("b2", "two.bin"))
	stL, _ = l.status()
	// alice was gone: what she had not sent came from the laptop.
	if got := stL.Swarm.ServedBytes - served; got < size/4 {
		t.Fatalf("the laptop served %d bytes of two.bin, which completed after alice was killed", got)
	}

	// 3. Tickets the laptop refuses, shown by a device of the test's own.
	hostileTickets(t, a.home, b.home, stL.Listen, identityID(t, l.home), in("a", "docs", "one.bin"))
}

func identityID(t *testing.T, home string) identity.DeviceID {
	t.Helper()
	id, err := identity.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	return id.ID()
}

type answerNothing struct{}

func (answerNothing) HandleRequest(context.Context, wire.Message) (wire.Message, error) {
	return wire.Errorf(wire.CodeRefused, "no"), nil
}
func (answerNothing) HandleMessage(context.Context, wire.Message) error { return nil }

// hostileTickets shows the laptop (at addr) tickets it must refuse, from
// a device of the test's own, and checks that a block is served only
// under a good ticket that names it. file is a file the laptop holds.
func hostileTickets(t *testing.T, aliceHome, bobHome, addr string, laptop identity.DeviceID, file string) {
	t.Helper()
	alice, err := identity.Load(aliceHome)
	if err != nil {
		t.Fatal(err)
	}
	bob := identityID(t, bobHome)
	me, _ := identity.Generate()
	stranger, _ := identity.Generate()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sp, _ := chunk.NewSplitter(chunk.DefaultParams())
	var chunks []chunk.Chunk
	if err := sp.Split(context.Background(), f, func(c chunk.Chunk, _ []byte) error { chunks = append(chunks, c); return nil }); err != nil || len(chunks) < 2 {
		t.Fatalf("chunks of %s: %d, %v", file, len(chunks), err)
	}
	var sendID share.ID
	sendID[0] = 0x5e
	ticket := func(signer *identity.Identity, receiver identity.DeviceID, expires time.Time, hs ...block.Hash) *wire.SwarmOpen {
		body, err := wire.EncodeSwarmTicket(wire.SwarmTicket{SignerKey: signer.PublicKey(), Receiver: receiver, Share: sendID, Expires: expires, Hashes: hs})
		if err != nil {
			t.Fatal(err)
		}
		return &wire.SwarmOpen{Body: body, Signature: signer.Sign(wire.SwarmSignedBytes(body))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eDeadline)
	defer cancel()
	var wg gosync.WaitGroup
	defer wg.Wait()
	defer cancel()
	dial := func() *conn.Conn {
		s, err := conn.NewTLS(me, slog.New(slog.DiscardHandler)).DialAny(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "test", Capabilities: []string{wire.SwarmCapability, "swarm-ticket"}}, answerNothing{}, conn.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Remote() != laptop {
			t.Fatalf("%s is not the laptop", addr)
		}
		wg.Go(func() { c.Run(ctx) })
		return c
	}
	c := dial()
	defer c.Close()
	// ask sends req; a refusal (an ErrorResponse) is a nil answer.
	ask := func(why string, req wire.Message) wire.Message {
		t.Helper()
		resp, err := c.Request(ctx, req)
		var refused *wire.ErrorResponse
		if errors.As(err, &refused) {
			t.Logf("%s: %v", why, refused)
			return nil
		}
		if err != nil {
			t.Fatalf("%s: %v", why, err)
		}
		return resp
	}
	block0 := func(why string, id share.ID, k int) wire.Message {
		return ask(why, &wire.BlockRequest{Share: id, Hash: chunks[k].Hash, Size: uint32(chunks[k].Length)})
	}
	refusedBlock := func(why string, id share.ID, k int) {
		t.Helper()
		if resp := block0(why, id, k); resp != nil {
			t.Fatalf("%s: the laptop answered %s", why, wire.Name(resp))
		}
	}
	refusedBlock("no ticket shown", sendID, 0)
	now := time.Now()
	good := ticket(alice, me.ID(), now.Add(time.Hour), chunks[0].Hash)
	tampered := *good
	tampered.Body = slices.Clone(good.Body)
	tampered.Body[len(tampered.Body)-1] ^= 1 // another block's hash
	for why, open := range map[string]*wire.SwarmOpen{
		"forged (signed by a device not in the keyring)": ticket(stranger, me.ID(), now.Add(time.Hour), chunks[0].Hash),
		"made for another device (bob's, replayed)":      ticket(alice, bob, now.Add(time.Hour), chunks[0].Hash),
		"expired":                     ticket(alice, me.ID(), now.Add(-time.Minute), chunks[0].Hash),
		"changed after it was signed": &tampered,
	} {
		if resp := ask(why, open); resp != nil {
			t.Errorf("the laptop accepted a ticket %s: %s", why, wire.Name(resp))
		}
		refusedBlock("after a ticket "+why, sendID, 0)
	}
	// A good ticket: its block is served, no other.
	if _, ok := ask("a good ticket", good).(*wire.SwarmOpened); !ok {
		t.Fatal("a good ticket was refused")
	}
	br, ok := block0("the block a good ticket names", sendID, 0).(*wire.BlockResponse)
	if !ok || block.Sum(br.Data) != chunks[0].Hash {
		t.Fatal("the block a good ticket names was not served")
	}
	refusedBlock("a block of the same file the ticket does not name", sendID, 1)
	other := sendID
	other[1] = 1
	refusedBlock("the ticket's block asked under another share", other, 0)
}

// TestE2EShareRemoveHeldElsewhere: alice removes docs, which her laptop
// holds on its own (it joined docs by an invitation before it was paired,
// not through the keyring). The laptop keeps docs, and so the person still
// holds it: its record comes back into the keyring, from the laptop.
// `share remove` says so (it names the laptop as a device of the keyring
// that holds docs), and alice does not follow docs again from the record
// that came back: what she removed stays removed on her device.
func TestE2EShareRemoveHeldElsewhere(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, l := newDevice(t, "alice"), newDevice(t, "laptop")
	work := t.TempDir()
	in := func(parts ...string) string { return filepath.Join(append([]string{work}, parts...)...) }
	write(t, in("a", "docs", "plan.txt"), "the plan\n")
	a.ok("share", "add", in("a", "docs"), "--name", "docs")
	// Where alice would follow shares from her keyring (never the user's
	// real home in a test).
	if err := daemon.EditConfig(a.home, func(c *config.Config) error { c.Device.KeyringDir = in("a-follows"); return nil }); err != nil {
		t.Fatal(err)
	}
	a.start()
	l.start()
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nlaptop:\n%s", a.logText(), l.logText())
		}
	}()
	link := strings.SplitN(a.ok("invite", "docs"), "\n", 2)[0]
	l.ok("join", link, in("l", "docs-own"))
	waitTrees(t, in("a", "docs"), in("l", "docs-own"), "the laptop joined docs on its own", a, l)
	var pr daemon.PairResult
	if err := json.Unmarshal([]byte(a.ok("pair", "--json")), &pr); err != nil {
		t.Fatal(err)
	}
	l.ok("join", pr.Link, in("l"))
	docsID := configuredShare(t, a.home, "docs").ID
	record := daemon.KeyringDir + "/" + docsID + ".cap"
	waitFile := func(what, path string, there bool) {
		t.Helper()
		deadline := time.Now().Add(e2eDeadline)
		for {
			_, err := os.Stat(path)
			if (err == nil) == there {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s exists %v, want %v", what, path, err == nil, there)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFile("the laptop's keyring has docs' record", filepath.Join(l.home, record), true)

	_, errOut, code := a.cli("share", "remove", "docs")
	t.Logf("share remove docs:\n%s", errOut)
	if code != 0 || !strings.Contains(errOut, "laptop") || !strings.Contains(errOut, "on its own") {
		t.Fatalf("share remove docs: exit %d, %q: want it to name the laptop, which holds docs on its own", code, errOut)
	}
	// The laptop keeps docs and puts its record back; alice sees it come back.
	waitFile("docs' record is back in alice's keyring, from the laptop", filepath.Join(a.home, record), true)
	// A share added on the laptop after that: once alice follows it, her
	// keyring loop has seen docs' record back too.
	write(t, in("l", "later", "x.txt"), "later\n")
	l.ok("share", "add", in("l", "later"), "--name", "later")
	st := a.waitFor("alice follows later from the keyring", func(st daemon.Status) bool {
		return slices.ContainsFunc(st.Shares, func(s daemon.ShareStatus) bool { return s.Name == "later" })
	})
	if slices.ContainsFunc(st.Shares, func(s daemon.ShareStatus) bool { return s.Name == "docs" }) {
		t.Fatalf("alice follows docs again after she removed it (its record came back from the laptop)")
	}
	if _, err := os.Stat(in("a-follows", "docs")); err == nil {
		t.Errorf("alice made %s to follow docs again", in("a-follows", "docs"))
	}
	if b, err := os.ReadFile(in("l", "docs-own", "plan.txt")); err != nil || string(b) != "the plan\n" {
		t.Errorf("the laptop's own docs lost its file: %q %v", b, err)
	}
	if !slices.ContainsFunc(mustStatus(t, l).Shares, func(s daemon.ShareStatus) bool { return s.Name == "docs" }) {
		t.Errorf("the laptop, which holds docs on its own, left it")
	}
}

func mustStatus(t *testing.T, d *device) daemon.Status {
	t.Helper()
	st, ok := d.status()
	if !ok {
		t.Fatalf("%s does not answer", d.name)
	}
	return st
}
