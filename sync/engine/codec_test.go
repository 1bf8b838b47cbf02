package engine

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/delta"
)

func TestBlockEncodings(t *testing.T) {
	c, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	random := randBytes(64 << 10)
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog "), 1500)
	edited := append(append(append([]byte{}, random[:30000]...), 'X'), random[30000:]...)
	sig, _ := delta.Signature(random, delta.WindowFor(len(random))).MarshalBinary()
	// 4 KiB regions, one in four of them text, as the bench's small binary
	// files have.
	var mostlyRandom []byte
	for i := range 16 {
		if i%4 == 2 {
			mostlyRandom = append(mostlyRandom, text[:4096]...)
		} else {
			mostlyRandom = append(mostlyRandom, random[i*4096:(i+1)*4096]...)
		}
	}
	tests := []struct {
		name  string
		data  []byte
		sig   []byte
		basis []byte
		pack  packing
		want  wire.BlockEncoding
		// incomp: marked to go around a compressed stream
		incomp bool
	}{
		{"incompressible goes raw", random, nil, nil, packFrames, wire.BlockRaw, false},
		{"text is compressed", text, nil, nil, packFrames, wire.BlockZstd, false},
		{"not compressed where it cannot pay", text, nil, nil, packRaw, wire.BlockRaw, false},
		{"an edit travels as a delta", edited, sig, random, packFrames, wire.BlockDelta, false},
		{"text goes raw into a stream", text, nil, nil, packStream, wire.BlockRaw, false},
		{"incompressible goes around a stream", random, nil, nil, packStream, wire.BlockRaw, true},
		{"random then text goes into a stream", append(random[:32<<10:32<<10], text...), nil, nil, packStream, wire.BlockRaw, false},
		{"a delta goes raw into a stream", edited, sig, random, packStream, wire.BlockDelta, false},
		{"mostly random with text between goes into a stream", mostlyRandom, nil, nil, packStream, wire.BlockRaw, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.encodeBlock(tt.data, tt.sig, tt.pack)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Encoding != tt.want || resp.Incompressible != tt.incomp {
				t.Fatalf("encoding %v (incompressible: %v), want %v (%v)", resp.Encoding, resp.Incompressible, tt.want, tt.incomp)
			}
			got, err := c.decodeBlock(resp, block.Sum(tt.data), uint32(len(tt.data)), tt.basis)
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("round trip: %v", err)
			}
			// Any other hash, or a flipped byte, is bad data from the peer.
			if _, err := c.decodeBlock(resp, block.Sum([]byte("other")), uint32(len(tt.data)), tt.basis); !errors.Is(err, errBadData) {
				t.Fatalf("wrong hash accepted: %v", err)
			}
			bad := &wire.BlockResponse{Encoding: resp.Encoding, Data: append([]byte(nil), resp.Data...)}
			bad.Data[len(bad.Data)/2] ^= 0x55
			if _, err := c.decodeBlock(bad, block.Sum(tt.data), uint32(len(tt.data)), tt.basis); !errors.Is(err, errBadData) {
				t.Fatalf("corrupted payload accepted: %v", err)
			}
		})
	}
	if _, err := c.decodeBlock(&wire.BlockResponse{Encoding: wire.BlockDelta, Data: []byte{1, 2}}, block.Sum(nil), 0, nil); !errors.Is(err, errBadData) {
		t.Fatalf("delta without a basis: %v", err)
	}
}

func TestRecordDelta(t *testing.T) {
	c, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := newKey(t)
	mk := func(blocks []record.BlockRef) record.Envelope {
		var size int64
		for _, b := range blocks {
			size += int64(b.Size)
		}
		r := record.Record{Path: "big.bin", Kind: record.File, Size: size, Mode: 0o644, Blocks: blocks,
			Version: record.Vector{{Device: 1, Value: uint64(len(blocks))}}, ModifiedBy: 1}
		r.FileHash = block.Sum([]byte{byte(len(blocks))})
		env, err := key.Seal(r)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	var blocks []record.BlockRef
	for i := range 1600 {
		blocks = append(blocks, record.BlockRef{Hash: block.Sum([]byte{byte(i), byte(i >> 8)}), Size: 65536})
	}
	old := mk(blocks)
	blocks[800].Hash = block.Sum([]byte("edited"))
	cur := mk(blocks)

	rd := c.encodeRecord(cur, &old)
	if rd.Encoding != wire.RecordZstdDict || len(rd.Data) > 1024 {
		t.Fatalf("a one-block change costs %d bytes as %v, want a small dictionary delta (envelope %d bytes)", len(rd.Data), rd.Encoding, len(cur.Bytes()))
	}
	got, err := c.decodeRecord(rd, &old)
	if err != nil || !bytes.Equal(got.Bytes(), cur.Bytes()) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := c.decodeRecord(rd, nil); !errors.Is(err, errNoBase) {
		t.Fatalf("without the base: %v, want errNoBase", err)
	}
	rd.Key[0] ^= 1
	if _, err := c.decodeRecord(rd, &old); !errors.Is(err, errBadData) {
		t.Fatalf("record under another key: %v", err)
	}
}

// sealTiny is the signed record of tinyName(i), 1 KiB, modified at mtime
// (its version too): a touch gives the same file a new mtime.
func sealTiny(t testing.TB, key share.Key, i int, mtime int64) record.Envelope {
	t.Helper()
	data := []byte{byte(i), byte(i >> 8)}
	r := record.Record{Path: record.Path(tinyName(i)), Kind: record.File, Size: 1024, Mode: 0o644,
		ModTime: time.Unix(mtime, 0).UTC(), FileHash: block.Sum(data),
		Blocks:  []record.BlockRef{{Hash: block.Sum(data), Size: 1024}},
		Version: record.Vector{{Device: 1, Value: uint64(mtime)}}, ModifiedBy: 1}
	env, err := key.Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestSmallRecordDelta: a touched small file's record (a new mtime, version
// and signature) travels as a dictionary delta of about a hundred bytes,
// and the kept encoders, reset to each base, never mix bases up.
func TestSmallRecordDelta(t *testing.T) {
	c, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := newKey(t)
	seal := func(i int, mtime int64) record.Envelope { return sealTiny(t, key, i, mtime) }
	for i := range 50 {
		old, cur := seal(i, 1_700_000_000), seal(i, 1_700_000_600)
		rd := c.encodeRecord(cur, &old)
		if rd.Encoding != wire.RecordZstdDict || len(rd.Data) > 128 {
			t.Fatalf("a touch costs %d bytes as %v, want a dictionary delta of at most 128 (envelope %d bytes)", len(rd.Data), rd.Encoding, len(cur.Bytes()))
		}
		got, err := c.decodeRecord(rd, &old)
		if err != nil || !bytes.Equal(got.Bytes(), cur.Bytes()) {
			t.Fatalf("round trip of record %d: %v", i, err)
		}
		other := seal(i+1, 1_700_000_000)
		if _, err := c.decodeRecord(rd, &other); !errors.Is(err, errNoBase) {
			t.Fatalf("decoded against another base: %v", err)
		}
	}
}

// addrConn is a Conn that only knows its remote address: all
// onThisMachine looks at.
type addrConn struct {
	Conn
	addr net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.addr }

// Blocks go raw to a peer on this machine over TCP and over QUIC alike.
func TestOnThisMachine(t *testing.T) {
	for _, tt := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 1}, true},
		{&net.UDPAddr{IP: net.IPv6loopback, Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, false},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, false},
		{nil, false},
	} {
		if got := onThisMachine(addrConn{addr: tt.addr}); got != tt.want {
			t.Errorf("onThisMachine(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
