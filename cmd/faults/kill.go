package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// kill -9 at random points of a large pull. Each round puts new data on the
// sender (a folder of seeded random files, moved into the share at once, as
// a user drops a folder in), picks kill points uniformly in 5-90 % of the
// round's bytes on the wire, and kills when the wire has carried that much:
// the receiver, the sender, or both at once. After every kill, with the
// device down, every file at a real path on the receiver must be absent or
// exactly the sender's content; the killed daemon must start again (its
// database opens); after the last kill the trees must converge. Bytes on the
// wire (IP, both directions, nftables on the two ports) over the data size
// give the re-sent fraction; a first round without kills, in the same run,
// is the baseline (protocol and TCP overhead).

type killKind int

const (
	killReceiver killKind = iota
	killSender
	killBoth
)

func (k killKind) String() string {
	return [...]string{"receiver", "sender", "both"}[k]
}

// resentTarget is the bound on the re-sent fraction.
const resentTarget = 0.10

func killScenario(kind killKind) scenarioFunc {
	return func(ctx context.Context, s *scenario) error {
		ep := netns.Endpoint{IP: "127.0.0.1"}
		a, err := s.newDevice(ctx, "sender", ep, filepath.Join(s.work, "sender"))
		if err != nil {
			return err
		}
		b, err := s.newDevice(ctx, "receiver", ep, filepath.Join(s.work, "receiver"))
		if err != nil {
			return err
		}
		if err := startSharing(ctx, s, "kill", a, b); err != nil {
			return err
		}
		ctr, err := netns.NewLoopbackCounter(ctx, "bsfault_kill", []int{a.port, b.port})
		if err != nil {
			return err
		}
		s.cleanup(ctr.Close)
		k := &killRun{s: s, kind: kind, a: a, b: b, ctr: ctr, known: map[string]string{}}
		base, err := k.round(ctx, 0, 0)
		if err != nil {
			return err
		}
		baseFrac := float64(base.wire)/float64(base.data) - 1
		s.did("baseline round without kills: %s of data, %s on the wire (%+.1f %%), converged in %.1f s",
			mib(base.data), mib(base.wire), 100*baseFrac, base.converge.Seconds())
		var data, wire int64
		kills := 0
		for r := 1; r <= s.t.killRounds && ctx.Err() == nil; r++ {
			res, err := k.round(ctx, r, s.t.killsPerRound)
			if err != nil {
				return err
			}
			data += res.data
			wire += res.wire
			kills += res.kills
		}
		if data == 0 {
			return ctx.Err()
		}
		frac := float64(wire)/float64(data) - 1
		s.did("%d kills of the %s in %d rounds: %s of data, %s on the wire", kills, kind, s.t.killRounds, mib(data), mib(wire))
		s.check("kills made", kills >= s.t.killRounds*s.t.killsPerRound, "%d kill -9 of the %s (planned %d)", kills, kind, s.t.killRounds*s.t.killsPerRound)
		detail := fmt.Sprintf("re-sent fraction %+.1f %% (bytes on the wire / data - 1; baseline without kills %+.1f %%, so %+.1f %% came from the kills; target under %.0f %%)",
			100*frac, 100*baseFrac, 100*(frac-baseFrac), 100*resentTarget)
		if s.t.name == "long" {
			s.check("re-sent fraction under 10 %", frac < resentTarget, "%s", detail)
		} else {
			s.did("%s [measured; the target is checked in the long tier, whose pulls are large enough for it]", detail)
		}
		return nil
	}
}

type killRun struct {
	s     *scenario
	kind  killKind
	a, b  *device
	ctr   *netns.Counter
	known map[string]string // path on the sender -> content hash, every round so far
}

type roundResult struct {
	data, wire int64
	kills      int
	converge   time.Duration
}

// round runs one pull with kills kill points.
func (k *killRun) round(ctx context.Context, r, kills int) (roundResult, error) {
	s := k.s
	var res roundResult
	stage := filepath.Join(s.work, fmt.Sprintf("stage-%d", r))
	name := fmt.Sprintf("round-%d", r)
	// Four large files take most of the data; 40 small ones (1-64 KiB) take
	// the inline-content path.
	small := int64(0)
	for i := range 40 {
		n := int64(1<<10 + s.rng.IntN(63<<10))
		h, err := writeRandom(filepath.Join(stage, "small", fmt.Sprintf("s%02d.bin", i)), s.rng, n)
		if err != nil {
			return res, err
		}
		k.known[name+"/small/"+fmt.Sprintf("s%02d.bin", i)] = h
		small += n
	}
	large := (s.t.killData - small) / 4
	for i := range 4 {
		h, err := writeRandom(filepath.Join(stage, fmt.Sprintf("large-%d.bin", i)), s.rng, large)
		if err != nil {
			return res, err
		}
		k.known[name+"/"+fmt.Sprintf("large-%d.bin", i)] = h
	}
	res.data = small + 4*large
	points := make([]int64, kills)
	for i := range points {
		points[i] = int64((0.05 + 0.85*s.rng.Float64()) * float64(res.data))
	}
	slices.Sort(points)
	w0 := k.ctr.Total(ctx)
	if err := os.Rename(stage, filepath.Join(k.a.dir, name)); err != nil {
		return res, err
	}
	s.runs++
	for _, at := range points {
		if err := k.waitWire(ctx, w0+at); err != nil {
			return res, err
		}
		got := k.ctr.Total(ctx) - w0
		switch k.kind {
		case killReceiver:
			k.b.kill9()
		case killSender:
			k.a.kill9()
		case killBoth:
			pa, pb := k.a.p, k.b.p
			k.a.p, k.b.p = nil, nil
			signalGroup(pa, pb) // both at the same instant
		}
		res.kills++
		k.checkReal(fmt.Sprintf("round %d, kill %d at %s of %s", r, res.kills, mib(got), mib(res.data)))
		for _, d := range []*device{k.a, k.b} {
			if d.p != nil {
				continue
			}
			err := d.start(ctx)
			if !s.checkErr("database opens after kill -9", err, fmt.Sprintf("%s restarted (round %d, kill %d)", d.name, r, res.kills)) {
				return res, fmt.Errorf("cannot go on without the %s", d.name)
			}
		}
	}
	took, err := converge(ctx, k.a, k.a.dir, k.b, k.b.dir, s.t.timeout)
	res.converge = took
	res.wire = k.ctr.Total(ctx) - w0
	s.checkErr("trees converge", err, fmt.Sprintf("round %d: %d files, %s compared byte for byte, %.1f s after the last kill (%d kills); %s on the wire for %s (%+.1f %%)",
		r, len(k.known), mib(res.data), took.Seconds(), res.kills, mib(res.wire), mib(res.data), 100*(float64(res.wire)/float64(res.data)-1)))
	if err != nil {
		return res, fmt.Errorf("round %d did not converge", r)
	}
	return res, nil
}

// waitWire waits until the counter reaches n bytes (the pull's progress).
func (k *killRun) waitWire(ctx context.Context, n int64) error {
	deadline := time.Now().Add(k.s.t.timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if k.ctr.Total(ctx) >= n {
			return nil
		}
		for _, d := range []*device{k.a, k.b} {
			if err := d.died(); err != nil {
				return err
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("the pull stalled: the wire did not reach %s in %v", mib(n), k.s.t.timeout)
}

// checkReal checks that every file at a real path on the receiver is a
// content the sender has at that path: none partial, none unknown.
func (k *killRun) checkReal(when string) {
	snap, err := snapshot(k.b.dir)
	if err != nil {
		k.s.fail("no partial file at a real path", "%s: %v", when, err)
		return
	}
	var bad []string
	var bytes int64
	for p, fi := range snap {
		bytes += fi.size
		if want, ok := k.known[p]; !ok {
			bad = append(bad, fmt.Sprintf("%s: a file the sender never had (%d bytes)", p, fi.size))
		} else if want != fi.hash {
			bad = append(bad, fmt.Sprintf("%s: %d bytes that are not the sender's content", p, fi.size))
		}
	}
	slices.Sort(bad)
	k.s.check("no partial file at a real path", len(bad) == 0, "%s: %d files at real paths, %s hashed against the sender's%s",
		when, len(snap), mib(bytes), listIf(bad))
}

func listIf(bad []string) string {
	if len(bad) == 0 {
		return ""
	}
	if len(bad) > 10 {
		bad = append(bad[:10], fmt.Sprintf("... and %d more", len(bad)-10))
	}
	return ":\n" + joinLines(bad)
}

func joinLines(ls []string) string {
	out := ""
	for _, l := range ls {
		out += l + "\n"
	}
	return out
}
