package wire

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
)

func TestSwarmTicket(t *testing.T) {
	tk := SwarmTicket{SignerKey: bytes.Repeat([]byte{7}, 32), Receiver: fill32(2), Share: fill32(3),
		Expires: time.Unix(1700000000, 0), Hashes: []block.Hash{block.Sum([]byte("a")), block.Sum([]byte("b"))}}
	body, err := EncodeSwarmTicket(tk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSwarmTicket(body)
	if err != nil || !reflect.DeepEqual(got, tk) {
		t.Fatalf("decoded %+v %v, want %+v", got, err, tk)
	}
	// Bad input: short keys, hashes not a multiple of 32, too long.
	for name, bad := range map[string]SwarmTicket{
		"signer key": {SignerKey: []byte{1}, Receiver: tk.Receiver, Share: tk.Share},
	} {
		if _, err := EncodeSwarmTicket(bad); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	if _, err := DecodeSwarmTicket(append(body, 0x2a, 0x03, 1, 2, 3)); err == nil || !strings.Contains(err.Error(), "hashes") {
		t.Errorf("hashes of 3 bytes more: %v", err)
	}
	if _, err := DecodeSwarmTicket(make([]byte, maxSwarmBody+1)); err == nil {
		t.Error("an oversized ticket decoded")
	}

	frames := []Frame{
		{7, &SwarmTicketRequest{Share: fill32(3)}},
		{7, &SwarmTicketResponse{Body: body, Signature: bytes.Repeat([]byte{9}, 64),
			Helpers: []SwarmHelper{{Device: fill32(4), Addresses: []string{"127.0.0.1:1"}}}}},
		{7, &SwarmTicketResponse{}},
		{8, &SwarmOpen{Body: body, Signature: bytes.Repeat([]byte{9}, 64)}},
		{8, &SwarmOpened{Held: 2}},
	}
	expectRoundTrip(t, frames)
	for _, want := range frames {
		if IsRequest(want.Msg) == IsResponse(want.Msg) {
			t.Errorf("%s is neither or both a request and a response", Name(want.Msg))
		}
	}
	if !Answers(&SwarmOpen{}, &SwarmOpened{}) || !Answers(&SwarmTicketRequest{}, &SwarmTicketResponse{}) || Answers(&SwarmOpen{}, &SwarmTicketResponse{}) {
		t.Error("Answers of the swarm messages")
	}
	if err := WriteFrame(io.Discard, Frame{8, &SwarmOpen{Body: body, Signature: []byte{1}}}); err == nil {
		t.Error("a SwarmOpen with a short signature was written")
	}
}
