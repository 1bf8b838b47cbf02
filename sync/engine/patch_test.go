package engine

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// patchDeadline bounds a sync that encodes patches: zstd's best level is
// slow under the race detector on a shared machine.
const patchDeadline = 3 * time.Minute

// patchCounter counts what a device serves: block and patch bytes, patch
// requests and the patches answered. forge, if set, answers every patch
// with a well-formed zstd frame of the right length and the wrong bytes.
type patchCounter struct {
	conn.Handler
	c *patchCounts
}

type patchCounts struct {
	bytes, asked, patches atomic.Int64
	forge                 bool
	// reflates counts the reflated patches answered (reflate_test.go);
	// forgeReflate, if set, is the file whose expansion, one byte changed,
	// answers each instead.
	reflates     atomic.Int64
	forgeReflate string
	// both, if set, holds each reflate request until both devices' have
	// arrived (reflate_test.go).
	both *barrier
}

// barrier lets through those that wait once n have come, or after a
// minute (a bound, should the other never come).
type barrier struct {
	n    atomic.Int64
	open chan struct{}
}

func newBarrier(n int64) *barrier {
	b := &barrier{open: make(chan struct{})}
	b.n.Store(n)
	return b
}

func (b *barrier) wait(ctx context.Context) {
	if b.n.Add(-1) == 0 {
		close(b.open)
	}
	select {
	case <-b.open:
	case <-ctx.Done():
	case <-time.After(time.Minute):
	}
}

func (p patchCounter) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	if _, ok := m.(*wire.ReflateRequest); ok && p.c.both != nil {
		p.c.both.wait(ctx)
	}
	resp, err := p.Handler.HandleRequest(ctx, m)
	switch r := resp.(type) {
	case *wire.BlockResponse:
		p.c.bytes.Add(int64(len(r.Data)))
	case *wire.PatchResponse:
		if p.c.forge {
			enc, _ := zstd.NewWriter(nil)
			r.Data = enc.EncodeAll(bytes.Repeat([]byte{0xAB}, int(m.(*wire.PatchRequest).WantSize())), nil)
			enc.Close()
		}
		p.c.bytes.Add(int64(len(r.Data)))
		p.c.patches.Add(1)
	case *wire.ReflateResponse:
		if p.c.forgeReflate != "" {
			r.Data = forgeReflated(p.c.forgeReflate)
		}
		p.c.bytes.Add(int64(len(r.Data)))
		p.c.reflates.Add(1)
	}
	if _, ok := m.(*wire.PatchRequest); ok {
		p.c.asked.Add(1)
	}
	return resp, err
}

// rebuild returns old with a few bytes changed every ~300 bytes, as a
// program rebuilt after a small change: addresses move everywhere, so no
// chunk of it is reused and a chunk's rsync delta finds few windows.
func rebuild(old []byte) []byte {
	nw := bytes.Clone(old)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 100; i+4 < len(nw); i += 250 + r.IntN(100) {
		nw[i] ^= 0x5A
		nw[i+3]++
	}
	return nw
}

// install puts data at rel on d as a build does: written beside, renamed
// over the old file, executable; then d scans.
func install(t *testing.T, d *device, rel string, data []byte) {
	t.Helper()
	tmp := filepath.Join(d.base, "build.out")
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	d.rescan()
}

// patchPair is two devices syncing a program: A builds, B follows.
func patchPair(t *testing.T, forge bool) (a, b *device, counts *patchCounts, old []byte) {
	key := newKey(t)
	a, b = newDevice(t, "A", key), newDevice(t, "B", key)
	counts = &patchCounts{forge: forge}
	old = randBytes(2 << 20) // incompressible: zstd alone saves nothing
	syncProgram(t, a, b, counts, old, false)
	return a, b, counts, old
}

// syncProgram has A and B offer patches (reflated ones too if reflate is
// set), A's answers counted in counts, and brings A's first build, old, to
// B; once A keeps it as a basis, counts starts again from zero.
func syncProgram(t *testing.T, a, b *device, counts *patchCounts, old []byte, reflate bool) {
	t.Helper()
	a.wrap = func(h conn.Handler) conn.Handler { return patchCounter{h, counts} }
	for _, d := range []*device{a, b} {
		d.patch, d.reflate = true, reflate
		d.restart()
	}
	a.addShare(b)
	b.addShare(a)
	install(t, a, "bin/prog", old)
	waitScanned(t, a)
	link(t, a, b)
	waitConverged(t, a, b)
	expectFile(t, b, "bin/prog", old)
	waitCond(t, "A keeping the first build", func() bool {
		ents, _ := os.ReadDir(filepath.Join(a.dir, basisDir))
		return len(ents) == 1
	})
	counts.bytes.Store(0)
}

// TestPatchCarriesRebuiltProgram: a rebuilt program travels as a patch
// against the build the receiver holds, in a small part of its size;
// block by block (without patches) it costs all of it.
func TestPatchCarriesRebuiltProgram(t *testing.T) {
	a, b, counts, old := patchPair(t, false)
	nw := rebuild(old)
	install(t, a, "bin/prog", nw)
	waitConvergedFor(t, patchDeadline, a, b) // zstd's best level, under -race
	expectFile(t, b, "bin/prog", nw)
	if counts.patches.Load() == 0 {
		t.Fatalf("no patch served (%d asked)", counts.asked.Load())
	}
	if n := counts.bytes.Load(); n*10 > int64(len(nw)) {
		t.Fatalf("rebuilt program of %d bytes cost %d bytes on the wire, want under a tenth", len(nw), n)
	}
	t.Logf("rebuilt program of %d bytes: %d bytes served (%.3f)", len(nw), counts.bytes.Load(), float64(counts.bytes.Load())/float64(len(nw)))
}

// TestPatchForgedIsRefused: a patch that decodes to bytes other than the
// record's blocks is refused, the peer cut off, and nothing of it written:
// B keeps its build and no temp holds the forged bytes.
func TestPatchForgedIsRefused(t *testing.T) {
	a, b, counts, old := patchPair(t, true)
	install(t, a, "bin/prog", rebuild(old))
	waitCondFor(t, patchDeadline, "B refusing the forged patch", func() bool {
		return counts.patches.Load() > 0 && strings.Contains(b.logs.String(), "patch for")
	})
	if !strings.Contains(b.logs.String(), "disconnecting peer") {
		t.Errorf("B did not cut off the peer that forged a patch")
	}
	expectFile(t, b, "bin/prog", old)
	forged := bytes.Repeat([]byte{0xAB}, 4096)
	filepath.Walk(filepath.Join(b.dir, ".blueshift"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if data, _ := os.ReadFile(p); bytes.Contains(data, forged) {
				t.Errorf("%s holds the forged patch's bytes", p)
			}
		}
		return nil
	})
}

// TestPatchFallsBack: when the sender no longer holds the receiver's build
// (nothing kept), the patch is refused as not found and the blocks come one
// by one; a receiver without a previous version asks no patch at all.
func TestPatchFallsBack(t *testing.T) {
	a, b, counts, old := patchPair(t, false)
	if err := os.RemoveAll(filepath.Join(a.dir, basisDir)); err != nil {
		t.Fatal(err)
	}
	nw := rebuild(old)
	install(t, a, "bin/prog", nw)
	waitConvergedFor(t, patchDeadline, a, b)
	expectFile(t, b, "bin/prog", nw)
	if counts.asked.Load() == 0 || counts.patches.Load() != 0 {
		t.Fatalf("%d patches asked, %d served: want some asked, none served", counts.asked.Load(), counts.patches.Load())
	}
	asked := counts.asked.Load()
	install(t, a, "bin/other", randBytes(2<<20)) // B has no old version of it
	waitConverged(t, a, b)
	if n := counts.asked.Load(); n != asked {
		t.Fatalf("%d patches asked for a new file", n-asked)
	}
}

// waitCondFor is waitCond with a deadline of limit.
func waitCondFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
