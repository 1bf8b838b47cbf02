package wire

import (
	"errors"
	"testing"

	"github.com/blueshift-sync/blueshift/index/share"
)

// TestReflateRoundTrip: a reflate request and its answer come back as sent.
func TestReflateRoundTrip(t *testing.T) {
	frames := []Frame{
		{1, &ReflateRequest{Share: share.ID{7}, Base: patchBlocks(100, 200), Want: patchBlocks(1000), Methods: 3}},
		{1, &ReflateResponse{Data: []byte("zstd frame"), BaseSections: []ReflateSection{{10, 20, 30, 1}}, WantSections: []ReflateSection{{1, 2, 3, 2}, {4, 5, 6, 1}}}},
	}
	expectRoundTrip(t, frames)
	if !IsRequest(&ReflateRequest{}) || !IsResponse(&ReflateResponse{}) || !Answers(&ReflateRequest{}, &ReflateResponse{}) || Answers(&PatchRequest{}, &ReflateResponse{}) {
		t.Fatal("reflate messages are classed wrong")
	}
}

// TestReflateLimits: what a peer may not ask or answer is refused.
func TestReflateLimits(t *testing.T) {
	big := patchBlocks(make([]uint32, MaxReflateFile/MaxBlockSize+1)...)
	for i := range big {
		big[i].Size = MaxBlockSize
	}
	for name, m := range map[string]Message{
		"no base":           &ReflateRequest{Want: patchBlocks(1)},
		"nothing wanted":    &ReflateRequest{Base: patchBlocks(1)},
		"empty block":       &ReflateRequest{Base: patchBlocks(0), Want: patchBlocks(1)},
		"block too large":   &ReflateRequest{Base: patchBlocks(1), Want: patchBlocks(MaxBlockSize + 1)},
		"version too large": &ReflateRequest{Base: patchBlocks(1), Want: big},
		"answer too large":  &ReflateResponse{Data: make([]byte, MaxReflateData+1)},
		"too many sections": &ReflateResponse{WantSections: make([]ReflateSection, MaxReflateSections+1)},
	} {
		if _, err := AppendFrame(nil, Frame{ID: 1, Msg: m}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: AppendFrame: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := unpackSections("base", make([]uint64, 5)); err == nil {
		t.Error("sections of five numbers taken")
	}
	if _, err := unpackSections("base", make([]uint64, sectionNumbers*(MaxReflateSections+1))); err == nil {
		t.Error("too many sections taken")
	}
}
