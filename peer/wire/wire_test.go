package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

func fill32(b byte) (a [32]byte) {
	for i := range a {
		a[i] = b + byte(i)
	}
	return a
}

// samples holds one valid frame of every message type.
func samples() []Frame {
	sh := share.ID(fill32(1))
	children := new([16]merkle.Child)
	for i := range children {
		children[i] = merkle.Child{Hash: merkle.Hash(fill32(byte(i))), Count: uint64(i)}
	}
	odd := merkle.Prefix{Len: 3}
	odd.Nibbles[0], odd.Nibbles[1] = 0xab, 0xc0
	return []Frame{
		{0, &Hello{Version: 1, MinVersion: 1, DeviceName: "laptop", Capabilities: []string{"zstd", "delta"}}},
		{0, &Ping{}},
		{7, &Ping{}},
		{7, &Pong{}},
		{0, &Close{Reason: "shutting down"}},
		{0, &Close{Reason: "not paired", Code: CodeRefused}},
		{9, &ErrorResponse{Code: CodeNotFound, Message: "no such block"}},
		{0, &ShareState{Share: sh, Root: merkle.Hash(fill32(2)), Count: 42}},
		{0, &ShareState{Share: sh, Root: merkle.Hash(fill32(2)), Count: 42, Pulling: true}},
		{1, &NodesRequest{Share: sh, Prefixes: []merkle.Prefix{{}, odd}}},
		{1, &NodesRequest{Share: sh, Prefixes: []merkle.Prefix{odd}, Root: merkle.Hash(fill32(9))}},
		{1, &NodesResponse{Nodes: []merkle.Node{}, Root: merkle.Hash(fill32(10))}},
		{1, &NodesResponse{Nodes: []merkle.Node{
			{Prefix: merkle.Prefix{}, Hash: merkle.Hash(fill32(3)), Count: 120, Children: children},
			{Prefix: odd, Hash: merkle.Hash(fill32(4)), Count: 2, Entries: []merkle.Entry{
				{Key: merkle.Key(fill32(5)), Leaf: merkle.Leaf(fill32(6))},
				{Key: merkle.Key(fill32(7)), Leaf: merkle.Leaf(fill32(8))},
			}},
		}}},
		{2, &RecordsRequest{Share: sh, Keys: []merkle.Key{merkle.Key(fill32(5))}, Have: []merkle.Leaf{{}}}},
		{2, &RecordsRequest{Share: sh, Keys: []merkle.Key{merkle.Key(fill32(5))}, ContentOnly: true}},
		{2, &RecordsResponse{Records: []RecordData{{Key: merkle.Key(fill32(5)), ContentEncoding: BlockZstd, Content: []byte("its content")}}}},
		{2, &RecordsResponse{Records: []RecordData{
			{Key: merkle.Key(fill32(5)), Encoding: RecordPlain, Data: []byte("envelope")},
			{Key: merkle.Key(fill32(7)), Encoding: RecordZstdDict, Base: merkle.Leaf(fill32(9)), Data: []byte{1, 2, 3}},
			{Key: merkle.Key(fill32(8)), Encoding: RecordPlain, Data: []byte("small file"), ContentEncoding: BlockRaw, Content: []byte("its content")},
		}}},
		{0, &RecordPush{Share: sh, Records: []RecordData{{Key: merkle.Key(fill32(5)), Encoding: RecordZstd, Data: []byte{4}}}}},
		{0, &RecordPush{Share: sh, Records: []RecordData{{Key: merkle.Key(fill32(5)), Encoding: RecordPlain, Data: []byte{4}, Batch: 1}},
			Batches: []RecordBatch{{Signature: [64]byte{1}, Hashes: [][32]byte{fill32(2), fill32(3)}}}}},
		{2, &RecordsResponse{Records: []RecordData{{Key: merkle.Key(fill32(5)), Encoding: RecordPlain, Data: []byte{4}, Batch: 1}},
			Batches: []RecordBatch{{Signature: [64]byte{1}}}}},
		{3, &BlockRequest{Share: sh, Hash: block.Sum([]byte("x")), Size: 65536, Signature: []byte{1, 2}}},
		{3, &BlockResponse{Encoding: BlockZstd, Data: bytes.Repeat([]byte{7}, 1000)}},
		{4, &JoinRequest{Token: [TokenSize]byte{1, 2, 3}, Share: sh}},
		{4, &JoinResponse{}},
		{5, &CodeRequest{Locator: "7K", Pake: []byte(`{"Role":0}`)}},
		{5, &CodeResponse{Pake: []byte(`{"Role":1}`), Sealed: bytes.Repeat([]byte{9}, 60)}},
		{0, &Have{Share: sh, File: block.Sum([]byte("f")), Blocks: 10, Held: []byte{0x81, 0x02}}},
		{0, &Have{Share: sh, File: block.Sum([]byte("f")), Blocks: 10}},
		{0, &Hello{Version: 4, MinVersion: 1, DeviceName: "p", Capabilities: []string{CapPunch}, Observed: mustAddr("quic://203.0.113.7:40123")}},
		{5, &PunchRequest{Device: identity.DeviceID(fill32(3))}},
		{5, &PunchResponse{Addrs: []transport.Addr{mustAddr("quic://203.0.113.8:22100")}}},
		{0, &PunchOffer{Device: identity.DeviceID(fill32(4)), Addrs: []transport.Addr{mustAddr("quic://203.0.113.7:22100"), mustAddr("quic://[2001:db8::1]:9")}}},
		{5, &MembersRequest{Share: sh, Have: 3, Head: fill32(4), PublicKey: fill32(5)}},
		{5, &MembersResponse{Entries: [][]byte{[]byte("entry")}, Pending: [][]byte{[]byte("p")}, Keys: []SealedEpochKey{{Epoch: 1, Box: []byte("box")}}}},
		{0, &MembersChanged{Share: sh}},
		{5, &Introduction{Body: sampleIntroBody(), DeviceKey: fill32(1), DeviceSig: [64]byte{2}, WriterSig: [64]byte{3}}},
		{5, &IntroductionAck{}},
		{0, &RelayConnect{Device: identity.DeviceID(fill32(6))}},
		{0, &RelayAccept{Token: [RelayTokenSize]byte{7, 8}}},
		{0, &RelayStatus{}},
		{0, &RelayStatus{Code: CodeRefused, Reason: "no"}},
		{5, &RelayInvite{Device: identity.DeviceID(fill32(7)), Token: [RelayTokenSize]byte{9}}},
		{5, &RelayInviteAck{}},
		{6, &VaultPut{Share: sh, Items: [][]byte{[]byte("item")}, Blocks: [][]byte{[]byte("sealed")}}},
		{6, &VaultPutAck{Items: 1, Blocks: 2, Missing: 3}},
		{6, &VaultList{Share: sh, After: bytes.Repeat([]byte{3}, VaultKeySize), Since: 4}},
		{6, &VaultListResponse{Entries: []VaultEntry{{Key: [VaultKeySize]byte{1}, Seq: 2, Tag: fill32(3), ListsBlocks: true}}, More: true, Generation: 9}},
		{6, &VaultListResponse{Generation: 9, Unchanged: true}},
		{6, &VaultGet{Share: sh, Keys: [][VaultKeySize]byte{{4}}}},
		{6, &VaultGetResponse{Items: [][]byte{[]byte("item")}}},
		{6, &VaultBlocks{Share: sh, Names: [][VaultNameSize]byte{fill32(5)}, Data: true}},
		{6, &VaultBlocksResponse{Held: []byte{1}, Data: [][]byte{[]byte("sealed")}}},
		{7, &VaultAddrs{Addrs: []string{"192.0.2.7:22100", "[2001:db8::7]:22100"}}},
		{7, &VaultAddrsAck{}},
		{6, &MulticastWant{Share: sh, File: block.Sum([]byte("f")), Blocks: 10, Path: "a/b.bin"}},
		{6, &MulticastOffer{Session: [8]byte{1}, Key: [32]byte{2}}},
		{6, &MulticastOffer{}},
		{6, &MulticastReady{Session: [8]byte{1}, Families: []uint32{4, 6}}},
		{6, &MulticastStart{Family: 4}},
		{6, &MulticastReport{Session: [8]byte{1}, LossPPM: 1000, Datagrams: 99, Leave: true}},
		{6, &MulticastStatus{Done: true}},
		{8, &RendezvousOffer{Locator: "7Q"}},
		{8, &RendezvousAck{Observed: mustAddr("quic://203.0.113.2:22100"), Knocks: []transport.Addr{mustAddr("quic://203.0.113.3:22100")}}},
		{8, &RendezvousAck{}},
		{8, &RendezvousFind{Locator: "7Q"}},
		{8, &RendezvousFound{Addrs: []transport.Addr{mustAddr("quic://203.0.113.2:22100")}}},
		{0, &Zstream{Data: []byte{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3}}},
	}
}

func mustAddr(s string) transport.Addr {
	a, err := transport.Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestRoundTrip(t *testing.T) { expectRoundTrip(t, samples()) }

// expectRoundTrip writes frames to a stream and checks that they read back
// equal, and nothing after them.
func expectRoundTrip(t *testing.T, frames []Frame) {
	t.Helper()
	var stream bytes.Buffer
	for _, f := range frames {
		if err := WriteFrame(&stream, f); err != nil {
			t.Fatalf("write %s: %v", Name(f.Msg), err)
		}
	}
	r := NewReader(bufio.NewReader(&stream))
	for _, want := range frames {
		got, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("read %s: %v", Name(want.Msg), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %+v, want %+v", Name(want.Msg), got, want)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// Answers and the request/response classes agree with checkFrame's ID rules.
func TestClasses(t *testing.T) {
	for _, f := range samples() {
		if IsRequest(f.Msg) && IsResponse(f.Msg) {
			t.Fatalf("%s is both request and response", Name(f.Msg))
		}
	}
	if !Answers(&NodesRequest{}, &NodesResponse{}) || !Answers(&BlockRequest{}, &ErrorResponse{}) ||
		Answers(&BlockRequest{}, &NodesResponse{}) || !Answers(&Ping{}, &Pong{}) {
		t.Fatal("Answers is wrong")
	}
}

func TestCompatible(t *testing.T) {
	for _, tc := range []struct {
		a, b   Hello
		v      uint32
		wantOK bool
	}{
		{Hello{Version: 1, MinVersion: 1}, Hello{Version: 1, MinVersion: 1}, 1, true},
		{Hello{Version: 3, MinVersion: 1}, Hello{Version: 2, MinVersion: 2}, 2, true},
		{Hello{Version: 5, MinVersion: 4}, Hello{Version: 3, MinVersion: 1}, 3, false},
		{Hello{Version: 2, MinVersion: 1}, Hello{Version: 9, MinVersion: 3}, 2, false},
		{Hello{}, Hello{}, 0, false},
	} {
		v, ok := Compatible(&tc.a, &tc.b)
		v2, ok2 := Compatible(&tc.b, &tc.a)
		if ok != tc.wantOK || ok2 != ok || v != v2 || (ok && v != tc.v) {
			t.Errorf("Compatible(%+v, %+v) = %d, %v; want %d, %v (symmetric)", tc.a, tc.b, v, ok, tc.v, tc.wantOK)
		}
	}
}

// envelope marshals a raw protobuf envelope, bypassing our checks.
func envelope(t testing.TB, e *wirepb.Envelope) []byte {
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withHeader(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestBadFrames(t *testing.T) {
	share32 := make([]byte, 32)
	manyFields := protowire.AppendTag(nil, 11, protowire.BytesType)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, share32)
	for i := 0; i < MaxFields; i++ {
		req = protowire.AppendTag(req, 2, protowire.BytesType)
		req = protowire.AppendBytes(req, nil)
	}
	manyFields = protowire.AppendBytes(manyFields, req)
	manyFields = append(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), manyFields...)

	for _, tc := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"zero length", []byte{0, 0, 0, 0}, ErrMalformed},
		{"oversized length", []byte{0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		{"just over the limit", binary.BigEndian.AppendUint32(nil, MaxFrameSize+1), ErrMalformed},
		{"truncated header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"truncated body", []byte{0, 0, 0, 10, 1, 2}, io.ErrUnexpectedEOF},
		{"garbage", withHeader([]byte{0xff, 0xff, 0xff, 0xff, 0xff}), ErrMalformed},
		{"empty envelope", withHeader(envelope(t, &wirepb.Envelope{Id: 3})), ErrMalformed},
		{"empty zstream piece", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_Zstream{}})), ErrMalformed},
		{"zstream piece over the limit", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_Zstream{Zstream: make([]byte, MaxZstreamChunk+1)}})), ErrMalformed},
		{"zstream with an ID", withHeader(envelope(t, &wirepb.Envelope{Id: 3, Body: &wirepb.Envelope_Zstream{Zstream: []byte{1}}})), ErrMalformed},
		{"one-way with an ID", withHeader(envelope(t, &wirepb.Envelope{Id: 3, Body: &wirepb.Envelope_Close{Close: &wirepb.Close{}}})), ErrMalformed},
		{"request without an ID", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_BlockRequest{BlockRequest: &wirepb.BlockRequest{Share: share32, Hash: share32}}})), ErrMalformed},
		{"short share ID", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_ShareState{ShareState: &wirepb.ShareState{Share: share32[:31], Root: share32}}})), ErrMalformed},
		{"prefix too long", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_NodesRequest{NodesRequest: &wirepb.NodesRequest{Share: share32, Prefixes: []*wirepb.Prefix{{Len: 65, Nibbles: make([]byte, 33)}}}}})), ErrMalformed},
		{"prefix bits past its length", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_NodesRequest{NodesRequest: &wirepb.NodesRequest{Share: share32, Prefixes: []*wirepb.Prefix{{Len: 1, Nibbles: []byte{0x1f}}}}}})), ErrMalformed},
		{"short nodes root", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_NodesRequest{NodesRequest: &wirepb.NodesRequest{Share: share32, Root: share32[:31]}}})), ErrMalformed},
		{"short answered root", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_NodesResponse{NodesResponse: &wirepb.NodesResponse{Root: share32[:1]}}})), ErrMalformed},
		{"node with 3 children", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_NodesResponse{NodesResponse: &wirepb.NodesResponse{Nodes: []*wirepb.Node{{Prefix: &wirepb.Prefix{}, Hash: share32, Children: make([]*wirepb.Child, 3)}}}}})), ErrMalformed},
		{"unknown block encoding", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_BlockResponse{BlockResponse: &wirepb.BlockResponse{Encoding: 99}}})), ErrMalformed},
		{"dictionary without base", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RecordPush{RecordPush: &wirepb.RecordPush{Share: share32, Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_ZSTD_DICT}}}}})), ErrMalformed},
		{"inline content without encoding", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RecordPush{RecordPush: &wirepb.RecordPush{Share: share32, Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_PLAIN, Content: []byte{1}}}}}})), ErrMalformed},
		{"inline content as a delta", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RecordPush{RecordPush: &wirepb.RecordPush{Share: share32, Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_PLAIN, ContentEncoding: wirepb.BlockEncoding_BLOCK_ENCODING_DELTA, Content: []byte{1}}}}}})), ErrMalformed},
		{"inline content too long", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RecordPush{RecordPush: &wirepb.RecordPush{Share: share32, Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_PLAIN, ContentEncoding: wirepb.BlockEncoding_BLOCK_ENCODING_RAW, Content: make([]byte, MaxInline+1)}}}}})), ErrMalformed},
		{"record of a batch not in the message", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RecordPush{RecordPush: &wirepb.RecordPush{Share: share32, Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_PLAIN, Batch: 2}}, Batches: []*wirepb.RecordBatch{{Signature: make([]byte, 64)}}}}})), ErrMalformed},
		{"batch no record names", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RecordPush{RecordPush: &wirepb.RecordPush{Share: share32, Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_PLAIN}}, Batches: []*wirepb.RecordBatch{{Signature: make([]byte, 64)}}}}})), ErrMalformed},
		{"short batch signature", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_RecordsResponse{RecordsResponse: &wirepb.RecordsResponse{Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_PLAIN, Batch: 1}}, Batches: []*wirepb.RecordBatch{{Signature: make([]byte, 63)}}}}})), ErrMalformed},
		{"short batch hash", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_RecordsResponse{RecordsResponse: &wirepb.RecordsResponse{Records: []*wirepb.RecordData{{Key: share32, Encoding: wirepb.RecordEncoding_RECORD_ENCODING_PLAIN, Batch: 1}}, Batches: []*wirepb.RecordBatch{{Signature: make([]byte, 64), Hashes: [][]byte{share32[:31]}}}}}})), ErrMalformed},
		{"have without keys", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_RecordsRequest{RecordsRequest: &wirepb.RecordsRequest{Share: share32, Have: [][]byte{share32}}}})), ErrMalformed},
		{"long device name", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_Hello{Hello: &wirepb.Hello{DeviceName: strings.Repeat("x", MaxNameLen+1)}}})), ErrMalformed},
		{"too many fields", withHeader(manyFields), ErrMalformed},
		{"too many prefixes", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_NodesRequest{NodesRequest: &wirepb.NodesRequest{Share: share32, Prefixes: make([]*wirepb.Prefix, MaxPrefixes+1)}}})), ErrMalformed},
		{"punch offer with 3 addresses", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_PunchOffer{PunchOffer: &wirepb.PunchOffer{Device: share32, Addrs: []string{"1.2.3.4:5", "1.2.3.4:6", "1.2.3.4:7"}}}})), ErrMalformed},
		{"punch offer to a host name", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_PunchOffer{PunchOffer: &wirepb.PunchOffer{Device: share32, Addrs: []string{"victim.example:80"}}}})), ErrMalformed},
		{"punch response with a bad address", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_PunchResponse{PunchResponse: &wirepb.PunchResponse{Addrs: []string{"nonsense"}}}})), ErrMalformed},
		{"punch request with a short device", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_PunchRequest{PunchRequest: &wirepb.PunchRequest{Device: share32[:5]}}})), ErrMalformed},
		{"relay accept with a short token", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RelayAccept{RelayAccept: &wirepb.RelayAccept{Token: share32[:5]}}})), ErrMalformed},
		{"relay invite with a short device", withHeader(envelope(t, &wirepb.Envelope{Id: 1, Body: &wirepb.Envelope_RelayInvite{RelayInvite: &wirepb.RelayInvite{Device: share32[:5], Token: share32[:16]}}})), ErrMalformed},
		{"relay connect with no device", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RelayConnect{RelayConnect: &wirepb.RelayConnect{}}})), ErrMalformed},
		{"relay status with a long reason", withHeader(envelope(t, &wirepb.Envelope{Body: &wirepb.Envelope_RelayStatus{RelayStatus: &wirepb.RelayStatus{Code: 1, Reason: strings.Repeat("x", MaxTextLen+1)}}})), ErrMalformed},
		{"invalid UTF-8 reason", withHeader(append(protowire.AppendTag(nil, 5, protowire.BytesType), 3, 0x0a, 1, 0xff)), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.stream)).ReadFrame()
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeRefusesWhatDecodeRefuses(t *testing.T) {
	for _, f := range []Frame{
		{0, &BlockResponse{Encoding: BlockRaw}},
		{1, &BlockResponse{Encoding: BlockRaw, Data: make([]byte, MaxBlockData+1)}},
		{1, &BlockResponse{Encoding: 0}},
		{1, &Close{}},
		{0, &Hello{DeviceName: strings.Repeat("x", MaxNameLen+1)}},
		{1, &RecordsRequest{Keys: make([]merkle.Key, 2), Have: make([]merkle.Leaf, 1)}},
		{1, &RecordsRequest{Keys: make([]merkle.Key, 1), Have: make([]merkle.Leaf, 1), ContentOnly: true}},
		{1, &RecordsResponse{Records: []RecordData{{Data: []byte{1}, ContentEncoding: BlockRaw, Content: []byte{2}}}}},
		{1, &RecordsResponse{Records: []RecordData{{}}}},
		{0, &RecordPush{Records: []RecordData{{ContentEncoding: BlockRaw, Content: []byte{2}}}}},
		{1, &NodesRequest{Prefixes: []merkle.Prefix{{Len: 65}}}},
		{0, &RecordPush{Records: []RecordData{{Encoding: RecordPlain, Base: merkle.Leaf{1}}}}},
		{0, &RecordPush{Records: []RecordData{{Encoding: RecordPlain, ContentEncoding: BlockRaw}}}},
		{0, &RecordPush{Records: []RecordData{{Encoding: RecordPlain, ContentEncoding: BlockZstd, Content: make([]byte, MaxInline+1)}}}},
		{0, &RecordPush{Records: []RecordData{{Encoding: RecordPlain, Batch: 1}}}},
		{0, &RecordPush{Records: []RecordData{{Encoding: RecordPlain}}, Batches: []RecordBatch{{}}}},
		{1, &PunchOffer{}},
		{0, &PunchOffer{Addrs: make([]transport.Addr, MaxPunchAddrs+1)}},
		{0, &PunchRequest{}},
		{0, nil},
	} {
		if _, err := AppendFrame(nil, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("AppendFrame(%+v): %v, want ErrInvalid", f, err)
		}
	}
}

// The fast BlockResponse encoding is byte for byte the protobuf one, and its
// decoder takes it without copying.
func TestBlockResponseFastPath(t *testing.T) {
	for _, size := range []int{0, 100, aliasMin - 1, aliasMin, 128 << 10, MaxBlockData} {
		for _, id := range []uint64{1, 300, 1 << 40} {
			f := Frame{ID: id, Msg: &BlockResponse{Encoding: BlockDeltaZstd, Data: bytes.Repeat([]byte{9}, size)}}
			slow, err := AppendFrame(nil, f)
			if err != nil {
				t.Fatal(err)
			}
			head, tail, err := EncodeFrame(nil, f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(head, tail...), slow) {
				t.Fatalf("size %d id %d: fast encoding differs", size, id)
			}
			r := NewReader(bytes.NewReader(append(slow, slow...)))
			got, err := r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			got.Msg.(*BlockResponse).Release()
			got, err = r.ReadFrame() // into the released buffer, if large
			if err == nil {
				got.Msg.(*BlockResponse).release = nil
			}
			if err != nil || !reflect.DeepEqual(normalize(got), normalize(f)) {
				t.Fatalf("size %d id %d: read back %v", size, id, err)
			}
		}
	}
	if _, _, err := EncodeFrame(nil, Frame{ID: 0, Msg: &BlockResponse{Encoding: BlockRaw, Data: make([]byte, aliasMin)}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("EncodeFrame without ID: %v", err)
	}
	if _, _, err := EncodeFrame(nil, Frame{ID: 1, Msg: &BlockResponse{Encoding: BlockRaw, Data: make([]byte, MaxBlockData+1)}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("EncodeFrame of too much data: %v", err)
	}
}

func TestText(t *testing.T) {
	long := strings.Repeat("é", MaxTextLen) // 2 bytes each: the cut splits a rune
	got := Text(long)
	if len(got) > MaxTextLen || !strings.HasPrefix(long, strings.TrimSuffix(got, "?")) {
		t.Fatalf("Text cut badly: %d bytes", len(got))
	}
	if _, err := AppendFrame(nil, Frame{0, &Close{Reason: Text("bad \xff utf8 " + long)}}); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		b, err := AppendFrame(nil, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[HeaderSize:])
	}
	big, _ := AppendFrame(nil, Frame{5, &BlockResponse{Encoding: BlockRaw, Data: make([]byte, aliasMin)}})
	f.Add(big[HeaderSize:])
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := Decode(body)
		// The fast BlockResponse decoder accepts only what Decode accepts, and
		// reads it the same.
		if fast, ok := decodeBlockResponse(body); ok {
			if err != nil || !reflect.DeepEqual(normalize(fast), normalize(fr)) {
				t.Fatalf("fast path: %+v, slow path: %+v, %v", fast, fr, err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error is not ErrMalformed: %v", err)
			}
			return
		}
		// What we accept we can send, and it reads back the same.
		b, err := AppendFrame(nil, fr)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", fr, err)
		}
		back, err := Decode(b[HeaderSize:])
		if err != nil || !reflect.DeepEqual(normalize(back), normalize(fr)) {
			t.Fatalf("round trip: %+v -> %+v, %v", fr, back, err)
		}
	})
}

// normalize maps empty slices to nil (protobuf does not tell them apart).
func normalize(f Frame) Frame {
	v := reflect.ValueOf(f.Msg).Elem()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Slice:
			if v.Len() == 0 && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(v)
	return f
}

func FuzzReadFrame(f *testing.F) {
	var all []byte
	for _, s := range samples() {
		b, _ := AppendFrame(nil, s)
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add(all[:len(all)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewReader(bytes.NewReader(stream))
		for {
			_, err := r.ReadFrame()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error class: %v", err)
				}
				return
			}
		}
	})
}

func BenchmarkDecodeBlockResponse(b *testing.B) {
	fr, _ := AppendFrame(nil, Frame{1, &BlockResponse{Encoding: BlockRaw, Data: make([]byte, 128<<10)}})
	b.SetBytes(int64(len(fr)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(fr[HeaderSize:]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGoldenFrames pins the bytes of a few frames: changing them breaks
// every deployed peer, so it must come with a new Version.
func TestGoldenFrames(t *testing.T) {
	for _, tc := range []struct {
		f    Frame
		want string
	}{
		{Frame{Msg: &Hello{Version: 1, MinVersion: 1, DeviceName: "a", Capabilities: []string{"z"}}}, "0000000c120a080110011a016122017a"},
		{Frame{ID: 7, Msg: &Pong{}}, "0000000408072200"},
		{Frame{ID: 300, Msg: &BlockResponse{Encoding: BlockZstd, Data: []byte{1, 2, 3}}}, "0000000d08ac02fa010708021203010203"},
		{Frame{ID: 2, Msg: &ErrorResponse{Code: CodeBusy, Message: "x"}}, "00000009080232050803120178"},
	} {
		b, err := AppendFrame(nil, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != tc.want {
			t.Errorf("%s: got %s, want %s", Name(tc.f.Msg), got, tc.want)
		}
	}
}

// TestNodesMoved: a response says "root moved" only when the request named
// a root and the answer names another; a version 1 peer (no root in either)
// never does.
func TestNodesMoved(t *testing.T) {
	r1, r2 := merkle.Hash(fill32(1)), merkle.Hash(fill32(2))
	for _, tc := range []struct {
		asked, answered merkle.Hash
		moved           bool
	}{
		{merkle.Hash{}, merkle.Hash{}, false},
		{merkle.Hash{}, r1, false},
		{r1, merkle.Hash{}, false},
		{r1, r1, false},
		{r1, r2, true},
	} {
		if got := (&NodesResponse{Root: tc.answered}).Moved(&NodesRequest{Root: tc.asked}); got != tc.moved {
			t.Errorf("asked %x, answered %x: moved %v, want %v", tc.asked[:2], tc.answered[:2], got, tc.moved)
		}
	}
}

// A length prefix alone does not make the reader set aside the frame's
// size: a peer that announces 16 MiB and sends a little costs about what it
// sent (a buffer grows with the bytes that arrive).
func TestLargeFrameGrowsWithBytes(t *testing.T) {
	var hdr [HeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:], MaxFrameSize)
	in := append(hdr[:], make([]byte, 100<<10)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(in)).ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a frame cut short: %v, want io.ErrUnexpectedEOF", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Fatalf("reading 100 KiB of a frame announced at %d bytes allocated %d bytes", MaxFrameSize, got)
	}
}

// TestLargeFramesReuseBuffer: a large frame that protobuf copies out of
// (anything but the BlockResponse fast path) leaves its buffer to the next
// one, so reading one costs about its copy, not a new buffer grown through
// 256 KiB..1 MiB ones; and what was decoded from the buffer before keeps
// its bytes.
func TestLargeFramesReuseBuffer(t *testing.T) {
	const frames, size = 12, 1 << 20
	var stream []byte
	var sent []Frame
	for i := range frames {
		f := Frame{Msg: &Zstream{Data: bytes.Repeat([]byte{byte(i + 1)}, size)}}
		var err error
		if stream, err = AppendFrame(stream, f); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, f)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // a GC may empty the pool
	r := NewReader(bytes.NewReader(stream))
	var got []Frame
	read := func() {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	read() // grows the first buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range frames - 1 {
		read()
	}
	runtime.ReadMemStats(&after)
	perFrame := float64(after.TotalAlloc-before.TotalAlloc) / (frames - 1)
	if perFrame > 1.5*size {
		t.Errorf("reading a frame of %d bytes allocated %.0f bytes (%.2fx)", size, perFrame, perFrame/size)
	}
	for i := range sent {
		if !reflect.DeepEqual(normalize(got[i]), normalize(sent[i])) {
			t.Fatalf("frame %d changed after the frames read after it", i)
		}
	}
}
