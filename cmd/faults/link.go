package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// Link faults. Two devices in network namespaces joined by a bridge (rate
// limited with tbf; a one-way delay from netem, or, where the kernel has no
// sch_netem, from the user-space relay cmd/bench uses). Each fault hits a
// pull of new data:
//   - delay alone;
//   - loss: nftables drops a share of the receiver's packets both ways for a
//     while;
//   - a cut: nftables drops everything on the receiver's link for longer than
//     a keepalive should take to notice; status must show the peer
//     disconnected during the cut, and the devices must find each other
//     again and converge (with files added during the cut) once it ends;
//   - a stall: the sender is stopped (SIGSTOP) mid-pull, then continued.

const linkDelayMs = 25

func linkFaults(ctx context.Context, s *scenario) error {
	nw, err := netns.NewShaped(ctx, "bsfault-l", 2, netns.Link{RateMbit: s.t.linkRateMbit, DelayMs: linkDelayMs})
	if err != nil {
		return fmt.Errorf("make namespaces: %w", err)
	}
	s.cleanup(nw.Close)
	s.did("namespaces bsfault-l-0 and bsfault-l-1 on a bridge: %s", nw.Note)
	a, err := s.newDevice(ctx, "sender", nw.Endpoints[0], filepath.Join(s.work, "sender"))
	if err != nil {
		return err
	}
	b, err := s.newDevice(ctx, "receiver", nw.Endpoints[1], filepath.Join(s.work, "receiver"))
	if err != nil {
		return err
	}
	if err := nw.RelayPorts(ctx, map[int]int{0: a.port, 1: b.port}); err != nil {
		return err
	}
	if err := startSharing(ctx, s, "link", a, b); err != nil {
		return err
	}
	ctr, err := netns.NewLinkCounter(ctx, b.ep.NS, "bsfault_count")
	if err != nil {
		return err
	}
	s.cleanup(ctr.Close)
	l := &linkRun{s: s, a: a, b: b, ctr: ctr}

	// Delay alone.
	if err := l.pull(ctx, "delay", nil); err != nil {
		return err
	}
	// Loss.
	if err := l.pull(ctx, "loss", func(ctx context.Context) error {
		rule := fmt.Sprintf("numgen random mod 100 < %d drop", s.t.lossPercent)
		if err := dropRules(ctx, b.ep.NS, "bsfault_loss", rule); err != nil {
			return err
		}
		s.did("dropping %d %% of the receiver's packets both ways for %v", s.t.lossPercent, s.t.stall)
		sleep(ctx, s.t.stall)
		undrop(b.ep.NS, "bsfault_loss")
		s.did("loss ended")
		return nil
	}); err != nil {
		return err
	}
	// A long cut.
	if err := l.pull(ctx, "cut", func(ctx context.Context) error {
		if err := dropRules(ctx, b.ep.NS, "bsfault_cut", "drop"); err != nil {
			return err
		}
		t0 := time.Now()
		s.did("cut the receiver's link (every packet dropped, no FIN, no RST) for %v", s.t.cut)
		// Files added on the sender during the cut must arrive after it.
		if _, err := writeRandom(filepath.Join(a.dir, "during-cut", "late.bin"), s.rng, 1<<20); err != nil {
			return err
		}
		var seenB, seenA time.Duration
		for time.Since(t0) < s.t.cut && ctx.Err() == nil {
			if st, err := b.status(ctx); err == nil && !st.connected(a.id) && seenB == 0 {
				seenB = time.Since(t0)
			}
			if st, err := a.status(ctx); err == nil && !st.connected(b.id) && seenA == 0 {
				seenA = time.Since(t0)
			}
			time.Sleep(time.Second)
		}
		undrop(b.ep.NS, "bsfault_cut")
		s.did("link restored after %.0f s", time.Since(t0).Seconds())
		s.check("receiver shows the sender disconnected during the cut", seenB > 0, "%s", seenAfter(seenB, s.t.cut))
		s.check("sender shows the receiver disconnected during the cut", seenA > 0, "%s", seenAfter(seenA, s.t.cut))
		return nil
	}); err != nil {
		return err
	}
	// A stalled sender.
	return l.pull(ctx, "stall", func(ctx context.Context) error {
		if err := a.signal(syscall.SIGSTOP); err != nil {
			return err
		}
		s.did("stopped the sender (SIGSTOP) for %v", s.t.stall)
		t0 := time.Now()
		var seen time.Duration
		for time.Since(t0) < s.t.stall && ctx.Err() == nil {
			if st, err := b.status(ctx); err == nil && !st.connected(a.id) && seen == 0 {
				seen = time.Since(t0)
			}
			time.Sleep(time.Second)
		}
		if err := a.signal(syscall.SIGCONT); err != nil {
			return err
		}
		s.did("continued the sender (SIGCONT); the receiver %s", seenAfter(seen, s.t.stall))
		if s.t.stall >= s.t.cut {
			// As long as the cut: a silent peer must be noticed alike.
			s.check("receiver shows a stalled sender disconnected", seen > 0, "%s", seenAfter(seen, s.t.stall))
		}
		return nil
	})
}

func seenAfter(d, within time.Duration) string {
	if d == 0 {
		return fmt.Sprintf("showed it connected throughout the %v", within)
	}
	return fmt.Sprintf("showed it disconnected %.0f s into the %v", d.Seconds(), within)
}

type linkRun struct {
	s    *scenario
	a, b *device
	ctr  *netns.Counter
	n    int
}

// pull puts new data on the sender and, once a third of it has crossed the
// link, runs fault (nil: none); then waits for convergence.
func (l *linkRun) pull(ctx context.Context, name string, fault func(ctx context.Context) error) error {
	s := l.s
	l.n++
	stage := filepath.Join(s.work, "stage-"+name)
	const files = 4
	for i := range files {
		if _, err := writeRandom(filepath.Join(stage, fmt.Sprintf("f%d.bin", i)), s.rng, s.t.linkData/files); err != nil {
			return err
		}
	}
	w0 := l.ctr.Total(ctx)
	t0 := time.Now()
	if err := os.Rename(stage, filepath.Join(l.a.dir, name)); err != nil {
		return err
	}
	s.runs++
	if fault != nil {
		for l.ctr.Total(ctx)-w0 < s.t.linkData/3 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Since(t0) > s.t.timeout {
				return fmt.Errorf("%s: a third of the data did not cross the link in %v", name, s.t.timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := fault(ctx); err != nil {
			return err
		}
	}
	took, err := converge(ctx, l.a, l.a.dir, l.b, l.b.dir, s.t.timeout)
	s.checkErr("converges after the "+name, err, fmt.Sprintf("%s of new data: converged %.1f s after the fault ended (%.1f s in all), %s on the receiver's link",
		mib(s.t.linkData), took.Seconds(), time.Since(t0).Seconds(), mib(l.ctr.Total(ctx)-w0)))
	return nil
}

// dropRules loads an nftables table named table in namespace ns that applies
// verdict to every packet in and out of eth0.
func dropRules(ctx context.Context, ns, table, verdict string) error {
	script := fmt.Sprintf(`table inet %s {
  chain in {
    type filter hook input priority -20; policy accept;
    iifname "eth0" %s
  }
  chain out {
    type filter hook output priority -20; policy accept;
    oifname "eth0" %s
  }
}
`, table, verdict, verdict)
	return netns.Script(ctx, ns, script)
}

func undrop(ns, table string) {
	_ = netns.NFT(context.Background(), ns, "delete", "table", "inet", table).Run()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
