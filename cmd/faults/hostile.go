package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/record/recordpb"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// A hostile member. The victim (alice) has two shares, "open" and "secret";
// an honest device (bob) is a member of both; mallory is a member of "open"
// only, with read-write access, so she holds its signing key. Mallory joins
// through the real CLI, then her daemon is stopped and a client built from
// peer/conn and peer/wire speaks for her identity. Checked: not a byte of
// "secret" reaches her; forged and replayed records change nothing; validly
// signed records with traversal, absolute and oversize names write nothing
// outside the share; endless frames and request floods are cut off with the
// victim's memory bounded; connection floods do not stop bob's files from
// syncing; and the victim never dies.

// rssAllowance is how far the victim's RSS may rise above its idle level
// during the attacks.
const rssAllowance = 256 << 20

func hostile(ctx context.Context, s *scenario) error {
	ep := netns.Endpoint{IP: "127.0.0.1"}
	alice, err := s.newDevice(ctx, "alice", ep, filepath.Join(s.work, "alice"))
	if err != nil {
		return err
	}
	bob, err := s.newDevice(ctx, "bob", ep, filepath.Join(s.work, "bob"))
	if err != nil {
		return err
	}
	mallory, err := s.newDevice(ctx, "mallory", ep, filepath.Join(s.work, "mallory"))
	if err != nil {
		return err
	}
	alice.logLevel = "debug" // what she refuses, and why, is the evidence
	aOpen, aSecret := filepath.Join(alice.dir, "open"), filepath.Join(alice.dir, "secret")
	bOpen, bSecret := filepath.Join(bob.dir, "open"), filepath.Join(bob.dir, "secret")
	for _, d := range []string{aOpen, aSecret, bOpen, bSecret, mallory.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The secret share: one small file (one block, inline-sized) and one
	// large one (many blocks).
	secretData := map[string][]byte{
		"diary.txt": randomBytes(s.rng, 20<<10),
		"keys.bin":  randomBytes(s.rng, 3<<20),
	}
	for name, b := range secretData {
		if err := os.WriteFile(filepath.Join(aSecret, name), b, 0o600); err != nil {
			return err
		}
	}
	if _, err := writeRandom(filepath.Join(aOpen, "big.bin"), s.rng, 2<<20); err != nil {
		return err
	}
	for _, f := range []string{"a.txt", "b.txt", "replay.txt"} {
		if err := os.WriteFile(filepath.Join(aOpen, f), []byte("first version of "+f+"\n"), 0o644); err != nil {
			return err
		}
	}
	for _, d := range []*device{alice, bob, mallory} {
		if err := d.start(ctx); err != nil {
			return err
		}
	}
	openID, err := shareDir(ctx, alice, aOpen, "open", false, []*device{bob, mallory}, []string{bOpen, mallory.dir})
	if err != nil {
		return err
	}
	secretID, err := shareDir(ctx, alice, aSecret, "secret", false, []*device{bob}, []string{bSecret})
	if err != nil {
		return err
	}
	// Bob joined a second share of a device he is connected to: restart
	// him so that the join does not wait on hole 11 of issue 13 (a second
	// share's invitation presented only when a connection opens).
	bob.stop()
	if err := bob.start(ctx); err != nil {
		return err
	}
	for _, c := range [][2]string{{aOpen, bOpen}, {aSecret, bSecret}} {
		b := bob
		if _, err := converge(ctx, alice, c[0], b, c[1], s.t.timeout); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	if _, err := converge(ctx, alice, aOpen, mallory, mallory.dir, s.t.timeout); err != nil {
		return fmt.Errorf("setup: mallory: %w", err)
	}
	mallory.stop()
	s.did("alice shares \"open\" with bob and mallory (read-write) and \"secret\" with bob only; mallory's daemon stopped, her identity now speaks through a wire client")

	m, err := newMallory(ctx, s, mallory, alice, openID, secretID)
	if err != nil {
		return err
	}
	outside := filepath.Join(s.work, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		return err
	}
	before, err := snapshot(aOpen)
	if err != nil {
		return err
	}
	rss := startRSS(alice)
	defer rss.stop()
	base := rss.now()
	s.did("alice's RSS before the attacks: %s", mib(base))

	m.stealBlocks(ctx, secretData)
	m.forge(ctx, aOpen, before)
	m.replay(ctx, bob, aOpen, bOpen)
	m.traverse(ctx, aOpen, outside)
	s.did("alice cut mallory off %d times so far (log: \"disconnecting peer\", each with its reason)", alice.logCount("disconnecting peer"))
	m.endless(ctx)
	m.flood(ctx, alice, bob, aOpen, bOpen)

	peak := rss.stop()
	s.check("alice's memory bounded", peak <= base+rssAllowance, "peak RSS %s during the attacks, %s before (allowed: +%s)", mib(peak), mib(base), mib(rssAllowance))
	s.checkErr("alice never died", alice.died(), fmt.Sprintf("pid %d alive; %d panics in its log", alice.pid(), alice.logCount("panic")))
	s.check("no panic in alice's log", alice.logCount("panic:") == 0, "%d", alice.logCount("panic:"))
	escaped := findEscapes(s.work, aOpen)
	s.check("nothing written outside the share", len(escaped) == 0, "searched %s and /tmp for the attack's names%s", s.work, listIf(escaped))
	return nil
}

// mallory is the hostile member's wire client.
type mallory struct {
	s            *scenario
	dev, alice   *device
	id           *identity.Identity
	tls          *conn.TLS
	open, secret share.ID
	key          share.Key // open's read-write key
	c            *conn.Conn
	runDone      chan struct{}
	cancel       context.CancelFunc
	zd           *zstd.Decoder
	version      uint64 // next version counter for her records
	shortID      record.Device
}

// ignore answers alice's requests with nothing and drops her messages.
type ignore struct{}

func (ignore) HandleRequest(context.Context, wire.Message) (wire.Message, error) {
	return wire.Errorf(wire.CodeNotFound, "nothing here"), nil
}
func (ignore) HandleMessage(context.Context, wire.Message) error { return nil }

func newMallory(ctx context.Context, s *scenario, dev, alice *device, open, secret string) (*mallory, error) {
	id, err := identity.Load(dev.home)
	if err != nil {
		return nil, err
	}
	cfg, err := daemon.LoadConfig(dev.home)
	if err != nil {
		return nil, err
	}
	m := &mallory{s: s, dev: dev, alice: alice, id: id, tls: conn.NewTLS(id, slog.New(slog.DiscardHandler)),
		shortID: id.ID().Short(), version: uint64(time.Now().UnixNano())}
	if m.open, err = share.ParseID(open); err != nil {
		return nil, err
	}
	if m.secret, err = share.ParseID(secret); err != nil {
		return nil, err
	}
	for _, sh := range cfg.Shares {
		if sh.ID == open {
			if m.key, err = share.ParseKey(sh.Key); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := m.key.Signer(); !ok {
		return nil, fmt.Errorf("mallory holds no read-write key of the open share")
	}
	m.zd, _ = zstd.NewReader(nil)
	s.cleanup(m.zd.Close)
	s.cleanup(m.hangUp)
	return m, m.connect(ctx)
}

func (m *mallory) aliceID() identity.DeviceID {
	id, _ := identity.ParseDeviceID(m.alice.id)
	return id
}

// connect opens a protocol session to alice (after a previous one was cut).
func (m *mallory) connect(ctx context.Context) error {
	m.hangUp()
	var err error
	for try := 0; try < 20; try++ {
		var st conn.Stream
		st, err = m.tls.Dial(ctx, m.alice.addr(), m.aliceID())
		if err == nil {
			var c *conn.Conn
			c, err = conn.Open(ctx, st, wire.Hello{DeviceName: "mallory"}, ignore{}, conn.Options{})
			if err == nil {
				rctx, cancel := context.WithCancel(context.Background())
				m.c, m.cancel, m.runDone = c, cancel, make(chan struct{})
				go func() { defer close(m.runDone); c.Run(rctx) }()
				return nil
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("mallory cannot connect to alice: %w", err)
}

func (m *mallory) hangUp() {
	if m.c == nil {
		return
	}
	m.c.Close()
	m.cancel()
	<-m.runDone
	m.c = nil
}

// request sends req on the session, reconnecting once if alice cut it.
func (m *mallory) request(ctx context.Context, req wire.Message) (wire.Message, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := m.c.Request(rctx, req)
	if err != nil && m.c.Err() != nil {
		if cerr := m.connect(ctx); cerr != nil {
			return nil, cerr
		}
		resp, err = m.c.Request(rctx, req)
	}
	return resp, err
}

// stealBlocks asks for every block of the secret share, naming the open
// share (where she is a member) and the secret one.
func (m *mallory) stealBlocks(ctx context.Context, secret map[string][]byte) {
	asked, leaked, refused := 0, int64(0), 0
	var leaks []string
	for name, data := range secret {
		cs, err := chunk.SplitAll(ctx, bytes.NewReader(data), chunk.DefaultParams())
		if err != nil {
			m.s.fail("no byte of another share", "chunk %s: %v", name, err)
			return
		}
		for _, c := range cs {
			for _, sh := range []share.ID{m.open, m.secret} {
				asked++
				resp, err := m.request(ctx, &wire.BlockRequest{Share: sh, Hash: c.Hash, Size: uint32(c.Length)})
				if err != nil {
					refused++
					continue
				}
				br, ok := resp.(*wire.BlockResponse)
				if !ok {
					refused++
					continue
				}
				got := m.decodeBlock(br)
				n := int64(len(br.Data))
				if bytes.Equal(got, data[c.Offset:c.Offset+int64(c.Length)]) {
					n = int64(c.Length)
				}
				leaked += n
				which := "open"
				if sh == m.secret {
					which = "secret"
				}
				leaks = append(leaks, fmt.Sprintf("%s block at %d (%d bytes) served when asked as a member of %q", name, c.Offset, c.Length, which))
			}
		}
	}
	m.s.runs++
	m.s.did("asked alice for every block of the secret share by hash: %d requests (as a member of \"open\", and naming \"secret\")", asked)
	m.s.check("no byte of another share", leaked == 0, "%d of %d requests refused; %d bytes of the secret share returned%s", refused, asked, leaked, listIf(leaks))
	// The tree and the records of the secret share.
	var open []string
	if _, err := m.request(ctx, &wire.NodesRequest{Share: m.secret, Prefixes: []merkle.Prefix{{}}}); err == nil {
		open = append(open, "nodes")
	}
	if resp, err := m.request(ctx, &wire.RecordsRequest{Share: m.secret, Keys: []merkle.Key{{1}}}); err == nil {
		if rr, ok := resp.(*wire.RecordsResponse); ok {
			open = append(open, fmt.Sprintf("records (%d)", len(rr.Records)))
		}
	}
	m.s.check("the secret share's tree and records refused", len(open) == 0, "answered: %v", open)
}

func (m *mallory) decodeBlock(br *wire.BlockResponse) []byte {
	switch br.Encoding {
	case wire.BlockRaw:
		return br.Data
	case wire.BlockZstd:
		out, err := m.zd.DecodeAll(br.Data, nil)
		if err == nil {
			return out
		}
	}
	return nil
}

// fetchEnvelope asks alice for the record of path in the open share.
func (m *mallory) fetchEnvelope(ctx context.Context, path string) ([]byte, error) {
	resp, err := m.request(ctx, &wire.RecordsRequest{Share: m.open, Keys: []merkle.Key{m.key.PathKey(path)}})
	if err != nil {
		return nil, err
	}
	rr, ok := resp.(*wire.RecordsResponse)
	if !ok || len(rr.Records) != 1 {
		return nil, fmt.Errorf("records of %q: got %s", path, wire.Name(resp))
	}
	r := rr.Records[0]
	switch r.Encoding {
	case wire.RecordPlain:
		return r.Data, nil
	case wire.RecordZstd:
		return m.zd.DecodeAll(r.Data, nil)
	}
	return nil, fmt.Errorf("record of %q came as encoding %d", path, r.Encoding)
}

// push sends one RecordPush of envelopes (with optional inline content) on
// a fresh session, since alice may cut one that sent a bad record.
func (m *mallory) push(ctx context.Context, recs ...wire.RecordData) {
	for i := range recs {
		if recs[i].Encoding == 0 {
			recs[i].Encoding = wire.RecordPlain
		}
	}
	if err := m.c.Send(ctx, &wire.RecordPush{Share: m.open, Records: recs}); err != nil {
		if errors.Is(err, wire.ErrInvalid) {
			m.s.fail("the attack was sent", "our own encoder refused a push: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if m.c.Err() != nil {
		_ = m.connect(ctx)
	}
}

// forge pushes records not signed by the share's key.
func (m *mallory) forge(ctx context.Context, aOpen string, before map[string]fileInfo) {
	content := []byte("forged content\n")
	other, _ := share.NewSecret()
	otherKey := share.FromSecret(other)
	otherPriv, _ := otherKey.Signer()
	legit, err := m.fetchEnvelope(ctx, "a.txt")
	if err != nil {
		m.s.fail("forged records change nothing", "fetch a.txt's record: %v", err)
		return
	}
	flipped := append([]byte(nil), legit...)
	flipped[len(flipped)/2] ^= 0x40
	kinds := map[string]wire.RecordData{}
	kinds["garbage bytes"] = wire.RecordData{Key: m.key.PathKey("forged-1.txt"), Data: randomBytes(m.s.rng, 300)}
	kinds["a flipped byte in a.txt's record"] = wire.RecordData{Key: m.key.PathKey("a.txt"), Data: flipped}
	kinds["signed by another share's key"] = m.fileRecord("forged-2.txt", content, m.key.PathKey("forged-2.txt"), otherPriv)
	kinds["a.txt's content filed under b.txt's key"] = m.fileRecord("a.txt", content, m.key.PathKey("b.txt"), nil)
	for what, rd := range kinds {
		m.push(ctx, rd)
		m.s.did("pushed a forged record: %s", what)
	}
	// A flood of garbage: many records in one push, many pushes.
	var many []wire.RecordData
	for i := range 1000 {
		many = append(many, wire.RecordData{Key: m.key.PathKey(fmt.Sprintf("forged-flood-%d", i)), Data: randomBytes(m.s.rng, 200)})
	}
	for range 20 {
		m.push(ctx, many...)
	}
	m.s.runs++
	m.s.did("pushed 20 more pushes of 1,000 garbage records each")
	time.Sleep(2 * time.Second)
	after, err := snapshot(aOpen)
	if err != nil {
		m.s.fail("forged records change nothing", "%v", err)
		return
	}
	var changed []string
	for p, fi := range after {
		if b, ok := before[p]; !ok || b != fi {
			changed = append(changed, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			changed = append(changed, p+" (gone)")
		}
	}
	m.s.check("forged records change nothing", len(changed) == 0, "%d files of the open share compared with their state before%s", len(after), listIf(changed))
}

// fileRecord seals a file record for path with inline content. key is the
// tree key it is filed under; priv signs it (nil: the open share's key). The
// body is encoded here, not by the record package, so that paths the record
// package refuses to seal can be sent too.
func (m *mallory) fileRecord(path string, content []byte, key merkle.Key, priv ed25519.PrivateKey) wire.RecordData {
	h := block.Sum(content)
	m.version++
	body := &recordpb.Record{
		Path: path, Kind: recordpb.Kind(record.File), Size: int64(len(content)), Mode: 0o644,
		ModTimeSec: time.Now().Unix(), BlockHashes: h[:], BlockSizes: []uint32{uint32(len(content))},
		Version:    []*recordpb.Counter{{Device: uint64(m.shortID), Value: m.version}},
		ModifiedBy: uint64(m.shortID),
	}
	fh := chunk.FileHash([]chunk.Chunk{{Length: len(content), Hash: h}})
	body.FileHash = fh[:]
	return wire.RecordData{Key: key, Data: m.seal(body, key, priv), ContentEncoding: wire.BlockRaw, Content: content}
}

// symlinkRecord seals a symlink record.
func (m *mallory) symlinkRecord(path, target string) wire.RecordData {
	m.version++
	body := &recordpb.Record{
		Path: path, Kind: recordpb.Kind(record.Symlink), Mode: 0o777, ModTimeSec: time.Now().Unix(), Target: []byte(target),
		Version:    []*recordpb.Counter{{Device: uint64(m.shortID), Value: m.version}},
		ModifiedBy: uint64(m.shortID),
	}
	key := m.key.PathKey(path)
	return wire.RecordData{Key: key, Data: m.seal(body, key, nil)}
}

// seal encodes and signs an envelope the way index/record does (kind 1,
// path key, body, Ed25519 over the domain, kind, key and body).
func (m *mallory) seal(body *recordpb.Record, key merkle.Key, priv ed25519.PrivateKey) []byte {
	if priv == nil {
		priv, _ = m.key.Signer()
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	msg := append([]byte("blueshift/envelope/v1\x00"), 1)
	msg = append(append(msg, key[:]...), b...)
	sig := ed25519.Sign(priv, msg)
	raw := protowire.AppendTag(nil, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 1)
	raw = protowire.AppendTag(raw, 2, protowire.BytesType)
	raw = protowire.AppendBytes(raw, key[:])
	raw = protowire.AppendTag(raw, 3, protowire.BytesType)
	raw = protowire.AppendBytes(raw, b)
	raw = protowire.AppendTag(raw, 4, protowire.BytesType)
	return protowire.AppendBytes(raw, sig)
}

// replay: bob changes replay.txt; once alice has the new version, mallory
// pushes the old record (fetched earlier) again.
func (m *mallory) replay(ctx context.Context, bob *device, aOpen, bOpen string) {
	old, err := m.fetchEnvelope(ctx, "replay.txt")
	if err != nil {
		m.s.fail("a replayed record changes nothing", "fetch replay.txt's record: %v", err)
		return
	}
	// Check the sealing code against a real envelope: if it is valid, the
	// traversal records below are signed as alice expects.
	if env, err := record.Open(old); err != nil || env.Verify(m.key.PublicKey()) != nil {
		m.s.fail("a replayed record changes nothing", "alice's record of replay.txt does not verify under the key mallory holds: %v", err)
		return
	}
	newer := []byte("second version, by bob\n")
	if err := os.WriteFile(filepath.Join(bOpen, "replay.txt"), newer, 0o644); err != nil {
		m.s.fail("a replayed record changes nothing", "%v", err)
		return
	}
	if _, err := waitContent(ctx, filepath.Join(aOpen, "replay.txt"), newer, m.s.t.timeout); err != nil {
		m.s.fail("a replayed record changes nothing", "bob's edit did not reach alice: %v", err)
		return
	}
	m.push(ctx, wire.RecordData{Key: m.key.PathKey("replay.txt"), Data: old})
	m.push(ctx, wire.RecordData{Key: m.key.PathKey("replay.txt"), Data: old, ContentEncoding: wire.BlockRaw, Content: []byte("first version of replay.txt\n")})
	m.s.runs++
	m.s.did("bob saved a new replay.txt; mallory replayed its old record (with and without its old content)")
	time.Sleep(3 * time.Second)
	got, _ := os.ReadFile(filepath.Join(aOpen, "replay.txt"))
	gotB, _ := os.ReadFile(filepath.Join(bOpen, "replay.txt"))
	m.s.check("a replayed record changes nothing", bytes.Equal(got, newer) && bytes.Equal(gotB, newer), "alice has %q, bob has %q", got, gotB)
}

// escapeName marks every file the traversal attack tries to create.
const escapeName = "bsfault-escape"

// traverse pushes validly signed records whose names climb out of the
// share, are absolute, or exceed the limits, and a symlink to outside with a
// file "inside" it.
func (m *mallory) traverse(ctx context.Context, aOpen, outside string) {
	content := []byte("written by mallory\n")
	// The control: a record with a good name, sealed by the same code, must
	// arrive. Otherwise the bad names below would be refused for the wrong
	// reason and the check could not fail.
	m.push(ctx, m.fileRecord("mallory-was-here.txt", content, m.key.PathKey("mallory-was-here.txt"), nil))
	_, err := waitContent(ctx, filepath.Join(aOpen, "mallory-was-here.txt"), content, m.s.t.timeout)
	m.s.checkErr("a well-named record sealed by this client is taken (control)", err, "mallory-was-here.txt arrived at alice")
	names := []string{
		"../" + escapeName + "-1",
		"../../" + escapeName + "-2",
		"sub/../../" + escapeName + "-3",
		"/tmp/" + escapeName + "-4",
		filepath.Join(outside, escapeName+"-5"),
		"./" + escapeName + "-6/..",
		"..",
		".",
		"",
		"a//" + escapeName + "-7",
		escapeName + "-8\x00/../../x",
		strings.Repeat("n", 300),
		strings.Repeat("d/", 3000) + escapeName + "-9",
		".blueshift/versions/" + escapeName + "-10",
		".blueshift/" + escapeName + "-11",
	}
	for _, n := range names {
		m.push(ctx, m.fileRecord(n, content, m.key.PathKey(n), nil))
	}
	// A symlink out of the share, then a file through it.
	m.push(ctx, m.symlinkRecord("out", outside))
	m.push(ctx, m.symlinkRecord("up", ".."))
	time.Sleep(time.Second)
	m.push(ctx, m.fileRecord("out/"+escapeName+"-12", content, m.key.PathKey("out/"+escapeName+"-12"), nil))
	m.push(ctx, m.fileRecord("up/"+escapeName+"-13", content, m.key.PathKey("up/"+escapeName+"-13"), nil))
	m.s.runs++
	m.s.did("pushed %d validly signed records with traversal, absolute, NUL, oversize and metadata-folder names, and symlinks out of the share with files through them", len(names)+4)
	time.Sleep(3 * time.Second)
	ents, _ := os.ReadDir(outside)
	var in []string
	for _, e := range ents {
		in = append(in, e.Name())
	}
	m.s.check("nothing written through a symlink out of the share", len(in) == 0, "%s holds %d entries %v", outside, len(in), in)
}

// findEscapes looks for the traversal attack's names outside the open share.
func findEscapes(work, aOpen string) []string {
	var found []string
	_ = filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && p == aOpen {
			return filepath.SkipDir
		}
		if strings.Contains(d.Name(), escapeName) {
			found = append(found, p)
		}
		return nil
	})
	if ents, err := os.ReadDir("/tmp"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), escapeName) {
				found = append(found, "/tmp/"+e.Name())
			}
		}
	}
	// Inside the share, the metadata folder is off limits too.
	_ = filepath.WalkDir(filepath.Join(aOpen, ".blueshift"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), escapeName) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// rawSession opens a TLS stream to alice as mallory and exchanges Hello by
// hand, for attacks that write frames themselves.
func (m *mallory) rawSession(ctx context.Context) (net.Conn, error) {
	st, err := m.tls.Dial(ctx, m.alice.addr(), m.aliceID())
	if err != nil {
		return nil, err
	}
	if err := wire.WriteFrame(st, wire.Frame{Msg: &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, DeviceName: "mallory"}}); err != nil {
		st.Close()
		return nil, err
	}
	st.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := wire.NewReader(st).ReadFrame(); err != nil {
		st.Close()
		return nil, fmt.Errorf("read alice's hello: %w", err)
	}
	st.SetReadDeadline(time.Time{})
	return st, nil
}

// cutWithin reports whether alice closes c within d (reading and
// discarding what she sends).
func cutWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// endless: frames that promise more than the limit, frames that promise the
// limit and never finish (many at once), and a flood of requests whose
// answers are never read.
func (m *mallory) endless(ctx context.Context) {
	s := m.s
	// A header promising 4 GiB.
	if c, err := m.rawSession(ctx); err == nil {
		c.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
		s.check("a frame over the limit is cut off", cutWithin(c, 20*time.Second), "header promising 4 GiB: connection closed by alice")
		c.Close()
	} else {
		s.fail("a frame over the limit is cut off", "%v", err)
	}
	// Many frames promising the limit, each stalled after 1 KiB.
	const stalled = 32
	var conns []net.Conn
	for range stalled {
		c, err := m.rawSession(ctx)
		if err != nil {
			break
		}
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], wire.MaxFrameSize)
		c.Write(h[:])
		c.Write(randomBytes(s.rng, 1<<10))
		conns = append(conns, c)
	}
	time.Sleep(3 * time.Second)
	s.did("%d connections each sent a header promising %s and then 1 KiB: alice's RSS %s", len(conns), mib(wire.MaxFrameSize), mib(m.alice.rss()))
	for _, c := range conns {
		c.Close()
	}
	// A request flood, answers never read.
	c, err := m.rawSession(ctx)
	if err != nil {
		s.fail("a request flood is bounded", "%v", err)
		return
	}
	big, err := m.fetchBlockOf(ctx, "big.bin")
	if err != nil {
		c.Close()
		s.fail("a request flood is bounded", "%v", err)
		return
	}
	sent := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := io.Writer(c)
		for i := 1; i <= 50000; i++ {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := wire.WriteFrame(w, wire.Frame{ID: uint64(i), Msg: &wire.BlockRequest{Share: m.open, Hash: big.Hash, Size: uint32(big.Length)}}); err != nil {
				return
			}
			sent++
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	rss := m.alice.rss()
	c.Close()
	<-done
	s.runs++
	s.did("flooded %d block requests for a %s block, reading no answer: alice's RSS %s", sent, mib(int64(big.Length)), mib(rss))
}

// fetchBlockOf returns the first chunk of a file in alice's open share.
func (m *mallory) fetchBlockOf(ctx context.Context, name string) (chunk.Chunk, error) {
	f, err := os.Open(filepath.Join(m.alice.dir, "open", name))
	if err != nil {
		return chunk.Chunk{}, err
	}
	defer f.Close()
	cs, err := chunk.SplitAll(ctx, f, chunk.DefaultParams())
	if err != nil || len(cs) == 0 {
		return chunk.Chunk{}, fmt.Errorf("chunk %s: %v", name, err)
	}
	return cs[0], nil
}

// flood holds many connections open (bare TCP that never speaks TLS,
// strangers' TLS, mallory's own sessions) while bob saves a file, which
// must still reach alice.
func (m *mallory) flood(ctx context.Context, alice, bob *device, aOpen, bOpen string) {
	s := m.s
	n := s.t.hostileFlood
	var mu sync.Mutex
	var held []net.Conn
	hold := func(c net.Conn) {
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	var bare, strangers, sessions int
	var cmu sync.Mutex
	count := func(p *int) { cmu.Lock(); *p++; cmu.Unlock() }
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			switch i % 4 {
			case 0, 1:
				if c, err := net.DialTimeout("tcp", alice.addr(), 5*time.Second); err == nil {
					hold(c)
					count(&bare)
				}
			case 2:
				id, err := identity.Generate()
				if err != nil {
					return
				}
				if st, err := conn.NewTLS(id, slog.New(slog.DiscardHandler)).Dial(ctx, alice.addr(), m.aliceID()); err == nil {
					hold(st)
					count(&strangers)
				}
			case 3:
				if c, err := m.rawSession(ctx); err == nil {
					hold(c)
					count(&sessions)
				}
			}
		}()
	}
	wg.Wait()
	s.runs++
	s.did("holding %d connections to alice: %d bare TCP, %d TLS from strangers, %d sessions as mallory; alice's RSS %s", len(held), bare, strangers, sessions, mib(alice.rss()))
	name := "honest-during-flood.txt"
	if err := os.WriteFile(filepath.Join(bOpen, name), []byte("bob's work\n"), 0o644); err != nil {
		s.fail("honest peers still served", "%v", err)
	} else {
		took, err := waitContent(ctx, filepath.Join(aOpen, name), []byte("bob's work\n"), s.t.timeout)
		s.checkErr("honest peers still served", err, fmt.Sprintf("bob's new file reached alice %.1f s after he saved it, with the flood holding", took.Seconds()))
	}
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
}

// waitContent waits until the file at path holds want.
func waitContent(ctx context.Context, path string, want []byte, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	var got []byte
	for time.Since(t0) < timeout {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		got, _ = os.ReadFile(path)
		if bytes.Equal(got, want) {
			return time.Since(t0), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s holds %q after %v, want %q", path, got, timeout, want)
}

// rssSampler samples a daemon's RSS every 100 ms until stopped.
type rssSampler struct {
	d    *device
	mu   sync.Mutex
	peak int64
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func startRSS(d *device) *rssSampler {
	r := &rssSampler{d: d, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			r.now()
			select {
			case <-r.quit:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// now samples the RSS and returns it.
func (r *rssSampler) now() int64 {
	v := r.d.rss()
	r.mu.Lock()
	r.peak = max(r.peak, v)
	r.mu.Unlock()
	return v
}

// stop ends sampling and returns the peak.
func (r *rssSampler) stop() int64 {
	r.once.Do(func() { close(r.quit) })
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}
