package engine

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestPatchCodecFullSpan: a patch of the largest span, against the largest
// dictionary a span uses, decodes with the same dictionary (its window is
// larger than what it decodes to) and not with another.
func TestPatchCodecFullSpan(t *testing.T) {
	c, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dict := randBytes(patchSpan + 2*patchMargin)
	target := rebuild(dict[patchMargin : patchMargin+patchSpan])
	z, err := c.encodePatch(context.Background(), target, dict)
	if err != nil {
		t.Fatal(err)
	}
	if len(z)*10 > len(target) {
		t.Errorf("patch of %d bytes for %d, want under a tenth", len(z), len(target))
	}
	got, err := c.decodePatch(z, dict, len(target))
	if err != nil || !bytes.Equal(got, target) {
		t.Fatalf("decode: %v (equal %v)", err, bytes.Equal(got, target))
	}
	other := bytes.Clone(dict)
	other[patchMargin+1000] ^= 1
	if got, err := c.decodePatch(z, other, len(target)); err == nil && bytes.Equal(got, target) {
		t.Fatal("decoded the target with another dictionary")
	} else if err != nil && !errors.Is(err, errBadData) {
		t.Fatalf("decode with another dictionary: %v, want errBadData", err)
	}
}
