package engine

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record/recordpb"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestHostileMemberCannotEscape: a member that holds the real write key
// signs records whose paths climb out of the share or into its metadata.
// The receiver refuses them, cuts the member off, and writes nothing,
// inside the share or outside it.
func TestHostileMemberCannotEscape(t *testing.T) {
	key := newKey(t)
	victim, rogue := hostilePair(t, key)
	priv, _ := key.Signer()
	var forged []wire.RecordData
	for _, p := range []string{"../escape.txt", "../../escape.txt", "/tmp/escape.txt", "a/../../escape.txt",
		".blueshift/versions/evil.txt", "nul\x00name.txt", "back\\slash.txt"} {
		forged = append(forged, forge(t, priv, key.PathKey(p), p))
	}
	rogue.forge = forged
	link(t, victim, rogue)
	waitCutOff(t, victim, "forged paths")
	base := filepath.Dir(victim.dir)
	for _, dir := range []string{base, filepath.Dir(base), "/tmp"} {
		if _, err := os.Lstat(filepath.Join(dir, "escape.txt")); err == nil {
			t.Fatalf("a forged record wrote %s", filepath.Join(dir, "escape.txt"))
		}
	}
	if got := snapshot(t, victim.dir); got != "" {
		t.Fatalf("the victim's share changed:\n%s", got)
	}
	if _, err := os.Lstat(filepath.Join(victim.dir, ".blueshift/versions/evil.txt")); err == nil {
		t.Fatal("a forged record wrote into .blueshift")
	}
}

// forge signs a record for path p the way a writer would, without the
// validation Seal does.
func forge(t *testing.T, priv ed25519.PrivateKey, key [32]byte, p string) wire.RecordData {
	t.Helper()
	content := []byte("escaped")
	h := block.Sum(content)
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(&recordpb.Record{
		Path: p, Kind: recordpb.Kind_KIND_FILE, Size: int64(len(content)), Mode: 0o644,
		ModTimeSec: time.Now().Unix(), BlockHashes: h[:], BlockSizes: []uint32{uint32(len(content))},
		FileHash: h[:], Version: []*recordpb.Counter{{Device: 7, Value: 1 << 40}}, ModifiedBy: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := append(append(append([]byte("blueshift/envelope/v1\x00"), 1), key[:]...), body...)
	raw := protowire.AppendTag(nil, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 1)
	raw = protowire.AppendTag(raw, 2, protowire.BytesType)
	raw = protowire.AppendBytes(raw, key[:])
	raw = protowire.AppendTag(raw, 3, protowire.BytesType)
	raw = protowire.AppendBytes(raw, body)
	raw = protowire.AppendTag(raw, 4, protowire.BytesType)
	raw = protowire.AppendBytes(raw, ed25519.Sign(priv, msg))
	return wire.RecordData{Key: key, Encoding: wire.RecordPlain, Data: raw}
}

// forger answers every request for records with forged ones.
type forger struct {
	*Session
	records []wire.RecordData
}

func (f forger) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	if _, ok := m.(*wire.RecordsRequest); ok {
		return &wire.RecordsResponse{Records: f.records}, nil
	}
	return f.Session.HandleRequest(ctx, m)
}

// TestForgedInlineContentRefused: content that comes with a record must be
// the record's block. A member that sends other content under a genuine
// signature is cut off, and nothing of it lands.
func TestForgedInlineContentRefused(t *testing.T) {
	key := newKey(t)
	victim, rogue := hostilePair(t, key)
	priv, _ := key.Signer()
	rd := forge(t, priv, key.PathKey("note.txt"), "note.txt")
	rd.ContentEncoding, rd.Content = wire.BlockRaw, []byte("not what the hash says")
	rogue.forge = []wire.RecordData{rd}
	link(t, victim, rogue)
	waitCutOff(t, victim, "forged content")
	if _, err := os.Lstat(filepath.Join(victim.dir, "note.txt")); err == nil {
		t.Fatal("forged inline content was written")
	}
}

// hostilePair makes a victim and a rogue member of one share, the rogue
// holding a file the victim lacks so that the victim asks it for records.
func hostilePair(t *testing.T, key share.Key) (victim, rogue *device) {
	t.Helper()
	victim, rogue = newDevice(t, "victim", key), newDevice(t, "rogue", key)
	victim.addShare(rogue)
	rogue.addShare(victim)
	write(t, rogue, "decoy.txt", []byte("makes the roots differ"))
	waitScanned(t, rogue)
	return victim, rogue
}

// waitCutOff waits until victim disconnects a peer for misbehaving.
func waitCutOff(t *testing.T, victim *device, sent string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(victim.logs.String(), "disconnecting peer") {
		if time.Now().After(deadline) {
			t.Fatalf("the victim did not cut off a member that sent %s:\n%s", sent, victim.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(victim.logs.String(), "peer misbehaved") {
		t.Fatalf("cut off for another reason:\n%s", victim.logs)
	}
}
