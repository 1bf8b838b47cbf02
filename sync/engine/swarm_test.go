package engine

import (
	"context"
	"fmt"
	"github.com/blueshift-sync/blueshift/index/block"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// uploaded counts the block payload bytes a device sends.
type uploaded struct {
	n   atomic.Int64
	mu  gosync.Mutex
	per map[block.Hash]int
}

// uploadCounter counts into an uploaded.
type uploadCounter struct {
	conn.Handler
	n *uploaded
}

func (c uploadCounter) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	resp, err := c.Handler.HandleRequest(ctx, m)
	if br, ok := resp.(*wire.BlockResponse); ok {
		c.n.n.Add(int64(len(br.Data)))
		c.n.mu.Lock()
		if c.n.per == nil {
			c.n.per = map[block.Hash]int{}
		}
		c.n.per[m.(*wire.BlockRequest).Hash]++
		c.n.mu.Unlock()
	}
	return resp, err
}

// swarmOf makes a seeder and n receivers, all members of one share and all
// connected to each other, the seeder holding files of random data (total
// bytes). It returns the devices (seeder first) and the seeder's counter.
func swarmOf(t testing.TB, n int, files []int) ([]*device, *uploaded, int64) {
	key := newKey(t)
	devs := []*device{newDevice(t, "S", key)}
	for i := range n {
		devs = append(devs, newDevice(t, fmt.Sprintf("R%d", i+1), key))
	}
	up := new(uploaded)
	devs[0].upload = up
	for i, d := range devs {
		var others []*device
		for j, o := range devs {
			if i != j {
				others = append(others, o)
			}
		}
		d.addShare(others...)
	}
	var total int64
	for i, size := range files {
		mustWrite(t, filepath.Join(devs[0].dir, fmt.Sprintf("f%d.bin", i)), randBytes(size))
		total += int64(size)
	}
	devs[0].rescan()
	waitScannedTB(t, devs[0])
	for i := range devs {
		for j := i + 1; j < len(devs); j++ {
			link(t, devs[i], devs[j])
		}
	}
	return devs, up, total
}

// TestSwarmSeederUploadsOnce: one seeder, four receivers that all know each
// other, random data. Receivers serve each other the blocks they already
// hold of files they are still pulling, say what they hold as they get it,
// and ask other receivers rather than the seeder where one has the block:
// the seeder sends each block about once, not once per receiver.
func TestSwarmSeederUploadsOnce(t *testing.T) {
	devs, up, total := swarmOf(t, 4, []int{12 << 20, 6 << 20, 3 << 20})
	waitConvergedFor(t, 120*time.Second, devs...)
	ratio := float64(up.n.Load()) / float64(total)
	names := map[string]string{}
	for _, d := range devs {
		names[d.id.ID().Abbrev()] = d.name
	}
	for _, d := range devs[1:] {
		line := d.name + " got:"
		for _, p := range d.e.Status().Peers {
			line += fmt.Sprintf(" %s %.1f MB", names[p.ID.Abbrev()], float64(p.BytesIn)/1e6)
		}
		t.Log(line)
	}
	hist := map[int]int{}
	for _, n := range up.per {
		hist[n]++
	}
	t.Logf("blocks served n times: %v", hist)
	t.Logf("seeder uploaded %d block bytes for %d bytes of data: %.2fx", up.n.Load(), total, ratio)
	if ratio > 2.5 {
		t.Errorf("seeder uploaded %.2fx the data to 4 receivers; want < 2.5x (each block about once, the receivers share the rest)", ratio)
	}
}
