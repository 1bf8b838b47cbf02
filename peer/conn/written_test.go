package conn

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// reusingHandler serves each block from a buffer that its OnWritten
// function overwrites at once, as a sender reusing the buffer would.
type reusingHandler struct {
	written chan struct{}
}

func (h *reusingHandler) HandleMessage(ctx context.Context, m wire.Message) error { return nil }

func (h *reusingHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	r, ok := req.(*wire.BlockRequest)
	if !ok {
		return nil, errors.New("unsupported")
	}
	buf := blockData(r.Hash, int(r.Size))
	resp := &wire.BlockResponse{Encoding: wire.BlockRaw, Data: buf}
	resp.OnWritten(func() {
		clear(buf) // reused for another block
		h.written <- struct{}{}
	})
	return resp, nil
}

// A BlockResponse's OnWritten function runs once the frame is written, and
// not before: the block arrives whole although its buffer is overwritten
// by then.
func TestBlockResponseWritten(t *testing.T) {
	hb := &reusingHandler{written: make(chan struct{}, 64)}
	a, _ := pair(t, newHandler(), hb, Options{})
	for i, size := range []int{100, 40 << 10, 256 << 10} { // inline in the head, and a tail
		h := block.Sum([]byte{byte(i)})
		resp, err := Call[*wire.BlockResponse](context.Background(), a.c, &wire.BlockRequest{Share: share.ID{1}, Hash: h, Size: uint32(size)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp.Data, blockData(h, size)) {
			t.Fatalf("block of %d bytes arrived damaged: its buffer was reused before it was written", size)
		}
		resp.Release()
		select {
		case <-hb.written:
		case <-time.After(30 * time.Second):
			t.Fatalf("OnWritten did not run for a block of %d bytes", size)
		}
	}
}
