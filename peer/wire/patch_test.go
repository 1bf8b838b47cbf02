package wire

import (
	"errors"
	"testing"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
)

func patchBlocks(sizes ...uint32) []PatchBlock {
	out := make([]PatchBlock, len(sizes))
	for i, s := range sizes {
		out[i] = PatchBlock{Hash: block.Sum([]byte{byte(i), byte(s)}), Size: s}
	}
	return out
}

// TestPatchRoundTrip: a patch request and its answer come back as sent.
func TestPatchRoundTrip(t *testing.T) {
	sh := share.ID{7}
	frames := []Frame{
		{1, &PatchRequest{Share: sh, Base: patchBlocks(100, 200), DictFrom: 50, DictTo: 300, Want: patchBlocks(1000)}},
		{1, &PatchResponse{Data: []byte("zstd frame")}},
	}
	expectRoundTrip(t, frames)
	if !IsRequest(&PatchRequest{}) || !IsResponse(&PatchResponse{}) || !Answers(&PatchRequest{}, &PatchResponse{}) || Answers(&BlockRequest{}, &PatchResponse{}) {
		t.Fatal("patch messages are classed wrong")
	}
}

// TestPatchLimits: what a peer may not ask is refused on both ends.
func TestPatchLimits(t *testing.T) {
	for name, m := range map[string]Message{
		"dictionary past the base": &PatchRequest{Base: patchBlocks(100), DictTo: 101, Want: patchBlocks(1)},
		"dictionary backwards":     &PatchRequest{Base: patchBlocks(100), DictFrom: 60, DictTo: 50, Want: patchBlocks(1)},
		"nothing wanted":           &PatchRequest{Base: patchBlocks(100), DictTo: 100},
		"too much wanted":          &PatchRequest{Base: patchBlocks(100), DictTo: 100, Want: patchBlocks(make([]uint32, MaxPatchWant/MaxBlockSize+1)...)},
		"empty block":              &PatchRequest{Base: patchBlocks(0), Want: patchBlocks(1)},
		"block too large":          &PatchRequest{Base: patchBlocks(100), DictTo: 100, Want: patchBlocks(MaxBlockSize + 1)},
		"answer too large":         &PatchResponse{Data: make([]byte, MaxPatchData+1)},
	} {
		if r, ok := m.(*PatchRequest); ok && name == "too much wanted" {
			for i := range r.Want {
				r.Want[i].Size = MaxBlockSize
			}
		}
		if _, err := AppendFrame(nil, Frame{ID: 1, Msg: m}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: AppendFrame: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := unpackBlocks("base", make([]byte, 31), []uint32{1}); err == nil {
		t.Error("hashes of the wrong length taken")
	}
}
