package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/peer/multicast"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// Issue 18's multicast rows beyond the seeder's upload: the same fan-out
// of random data with multicast on, run with one fault added once every
// device shares the folder and before the data arrives at the seeder.
// Every receiver's completion is timed on its own (the file at full size
// in its folder; a pulled file appears only once complete), then the
// trees are compared as in every fan-out.

// mcFault is what a multicast run adds to the plain fan-out.
type mcFault int

const (
	mcClean    mcFault = iota
	mcLoss             // nftables drops 1% of the last receiver's multicast datagrams
	mcStranger         // a namespace on the bridge replays and tampers with every datagram it hears
)

// mcFaultReceivers is the receiver count of the fault cases.
const mcFaultReceivers = 4

// mcCase names a multicast case of scenario 5.
func mcCase(receivers int, f mcFault) string {
	switch f {
	case mcLoss:
		return fanoutCase(receivers, ", random data, 1% loss on one receiver's link")
	case mcStranger:
		return fanoutCase(receivers, ", random data, a stranger forging datagrams")
	}
	return fanoutCase(receivers, ", random data")
}

func (b *bench) multicastRuns(ctx context.Context, corpus string, dataBytes int64, receivers int, f mcFault, runs int) {
	cas := mcCase(receivers, f)
	for r := range runs {
		if ctx.Err() != nil {
			return // interrupted: what was measured is reported
		}
		m, err := b.multicastOnce(ctx, corpus, receivers, f)
		if err != nil {
			b.fail(scFanout, cas, toolMulticast, err)
			continue
		}
		m.extra["seeder_up_x"] = m.extra["seeder_up_bytes"] / float64(dataBytes)
		m.extra["seeder_sent_x"] = m.extra["seeder_sent_bytes"] / float64(dataBytes)
		b.add(scFanout, cas, toolMulticast, r, m)
		b.log.Info("measured", "scenario", scFanout, "case", cas, "tool", toolMulticast, "wall_s", m.wall.Seconds(),
			"seeder_up_x", m.extra["seeder_up_x"], "others_done_s", m.extra["others_done_s"], "lossy_x", m.extra["lossy_x"],
			"forged_taken", m.extra["forged_taken"], "stranger_sent", m.extra["stranger_sent"], "refused", m.extra["refused"])
	}
}

// multicastOnce is one fan-out of corpus (arriving at the seeder once all
// share the folder) with the multicast tool and fault f. Beside fanoutOnce's
// figures it records each receiver's completion: others_done_s (the
// slowest of all receivers but the last), and with loss lossy_x (the last
// receiver's, whose link drops, over others_done_s); with a stranger,
// stranger_sent, refused (the receivers' status --json counters) and
// forged_taken: blocks a receiver took from the group beyond those the
// seeder sent, or every datagram the stranger sent when no receiver
// refused one (unproven, so counted as taken).
func (b *bench) multicastOnce(ctx context.Context, corpus string, receivers int, f mcFault) (measure, error) {
	m := measure{extra: map[string]float64{}}
	devices := receivers + 1
	nss := devices
	if f == mcStranger {
		nss++
	}
	nw, err := b.network(ctx, true, nss)
	if err != nil {
		return m, err
	}
	defer nw.Close()
	ctrs, err := crossedCounters(ctx, b, nw, devices)
	if err != nil {
		return m, err
	}
	defer closeCounters(ctrs)
	var dsts []string
	for i := range receivers {
		dsts = append(dsts, b.dir(fmt.Sprintf("d%d", i+1)))
	}
	defer func() {
		for _, d := range dsts {
			os.RemoveAll(d)
		}
	}()
	arrive, err := b.cloneTree(ctx, corpus)
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(arrive)
	want, err := fileSizes(arrive)
	if err != nil {
		return m, err
	}
	src := b.dir("src")
	defer os.RemoveAll(src)
	cl, err := b.clusters[toolMulticast](ctx, b.dir("home"), nw, append([]string{src}, dsts...))
	if err != nil {
		return m, err
	}
	defer cl.close()
	c, ok := cl.(*blueshiftCluster)
	if !ok {
		return m, fmt.Errorf("%s is not a Blueshift cluster", toolMulticast)
	}
	if err := nw.RelayPorts(ctx, portMap(c.wirePorts())); err != nil {
		return m, err
	}
	if err := startAll(ctx, c, devices); err != nil {
		return m, err
	}
	win := openWindow(c.procs())
	if err := c.share(ctx); err != nil {
		return m, err
	}
	b.waitMeshed(ctx, c, devices)

	stopStranger := func() (int, error) { return 0, nil }
	switch f {
	case mcLoss:
		if err := dropMulticast(ctx, nw.Endpoints[receivers].NS, b.uniq("loss")); err != nil {
			return m, err
		}
	case mcStranger:
		sctx, stop := context.WithCancel(ctx)
		var sg sync.WaitGroup
		var sent int
		var serr error
		sg.Go(func() { sent, serr = forgeOnGroup(sctx, nw.Endpoints[devices]) })
		stopStranger = func() (int, error) { stop(); sg.Wait(); return sent, serr }
		defer stopStranger()
	}

	if err := moveInto(arrive, src); err != nil {
		return m, err
	}
	t0 := time.Now()
	done := make([]time.Duration, receivers)
	deadline := t0.Add(b.cfg.Timeout)
	for left := receivers; left > 0; {
		for i, dst := range dsts {
			if done[i] == 0 && holdsAll(dst, want) {
				done[i] = time.Since(t0)
				left--
			}
		}
		if left == 0 {
			break
		}
		for _, p := range c.procs() {
			if err := p.died(); err != nil {
				return m, err
			}
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("receivers not done after %v: completion %v", b.cfg.Timeout, done)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	last, err := waitAllConverged(ctx, c, src, dsts, b.cfg.Timeout)
	if err != nil {
		return m, err
	}
	m.wall = last.Sub(t0)
	readCrossed(ctx, ctrs, &m)
	var others time.Duration
	for _, d := range done[:receivers-1] {
		others = max(others, d)
	}
	m.extra["others_done_s"] = others.Seconds()
	if f == mcLoss {
		m.extra["lossy_x"] = float64(done[receivers-1]) / float64(others)
	}
	if f == mcStranger {
		sent, err := stopStranger()
		if err != nil {
			return m, fmt.Errorf("stranger: %w", err)
		}
		if sent == 0 {
			return m, errors.New("the stranger heard no datagram to forge: no multicast on this network?")
		}
		taken, refused, err := multicastCounters(ctx, c, receivers)
		if err != nil {
			return m, err
		}
		if refused == 0 {
			taken = int64(sent) // none refused: unproven, so counted as taken
		}
		m.extra["stranger_sent"] = float64(sent)
		m.extra["refused"] = float64(refused)
		m.extra["forged_taken"] = float64(taken)
	}
	u := win.close()
	m.cpu, m.rss = u.CPU, u.RSS
	return m, nil
}

// multicastCounters reads status --json of the seeder and the receivers:
// the blocks receivers took from the group beyond those the seeder sent
// (each receiver apart), and the datagrams they refused.
func multicastCounters(ctx context.Context, c *blueshiftCluster, receivers int) (taken, refused int64, err error) {
	read := func(i int) (engine.MulticastStats, error) {
		var st struct {
			Multicast engine.MulticastStats `json:"multicast"`
		}
		out, err := c.cli(ctx, i, "status", "--json")
		if err != nil {
			return st.Multicast, err
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return st.Multicast, fmt.Errorf("parse status --json of device %d: %w", i, err)
		}
		return st.Multicast, nil
	}
	seeder, err := read(0)
	if err != nil {
		return 0, 0, err
	}
	if seeder.BlocksSent == 0 {
		return 0, 0, fmt.Errorf("the seeder sent no block to the group: %+v", seeder)
	}
	for i := 1; i <= receivers; i++ {
		st, err := read(i)
		if err != nil {
			return 0, 0, err
		}
		taken += max(0, st.BlocksReceived-seeder.BlocksSent)
		refused += st.Refused
	}
	return taken, refused, nil
}

// dropMulticast makes ns drop 1% of the multicast datagrams it receives
// (nftables, at random); the table goes with the namespace.
func dropMulticast(ctx context.Context, ns, table string) error {
	rules := fmt.Sprintf(`table inet %s {
  chain in {
    type filter hook input priority -20; policy accept;
    udp dport %d numgen random mod 100 < 1 counter drop
  }
}
`, table, multicast.DefaultPort)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft (1%% loss in %s): %w: %s", ns, err, out)
	}
	return nil
}

// fileSizes lists the regular files under dir with their sizes.
func fileSizes(dir string) (map[string]int64, error) {
	want := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		want[rel] = fi.Size()
		return nil
	})
	return want, err
}

// holdsAll reports whether dir holds every file of want at its size.
func holdsAll(dir string, want map[string]int64) bool {
	for rel, size := range want {
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil || fi.Size() != size {
			return false
		}
	}
	return true
}

// forgeOnGroup is the stranger: from inside its namespace it joins the
// group on its link (eth0) and sends back each datagram it hears,
// alternately as it was (a replay) and with its sealed body changed (a
// forgery under the session's ID). It returns how many it sent once ctx
// ends.
func forgeOnGroup(ctx context.Context, ep netns.Endpoint) (int, error) {
	var listen, out net.PacketConn
	var eth *net.Interface
	group := &net.UDPAddr{IP: multicast.DefaultGroup4.AsSlice(), Port: multicast.DefaultPort}
	err := ep.InNS(func() error {
		var err error
		if eth, err = net.InterfaceByName("eth0"); err != nil {
			return err
		}
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) }); err != nil {
				return err
			}
			return serr
		}}
		if listen, err = lc.ListenPacket(ctx, "udp4", group.String()); err != nil {
			return err
		}
		if out, err = net.ListenPacket("udp4", ep.IP+":0"); err != nil {
			listen.Close()
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	defer out.Close()
	if err := ipv4.NewPacketConn(listen).JoinGroup(eth, group); err != nil {
		listen.Close()
		return 0, fmt.Errorf("join the group: %w", err)
	}
	po := ipv4.NewPacketConn(out)
	if err := po.SetMulticastInterface(eth); err != nil {
		listen.Close()
		return 0, err
	}
	_ = po.SetMulticastTTL(1)
	stop := context.AfterFunc(ctx, func() { listen.Close() })
	defer stop()
	buf := make([]byte, 2048)
	sent := 0
	for {
		n, from, err := listen.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return sent, nil
			}
			return sent, err
		}
		if ua, ok := from.(*net.UDPAddr); ok && ua.IP.String() == ep.IP || n < 21 {
			continue // its own, or too short to tamper with
		}
		pkt := bytes.Clone(buf[:n])
		if sent%2 == 1 {
			pkt[n-20] ^= 0xff
		}
		if _, err := po.WriteTo(pkt, nil, group); err == nil {
			sent++
		}
	}
}

// waitMeshed waits (up to a minute) until each of the n devices is
// connected to all the others, as the devices of a share many follow are
// long before a release arrives; data that arrived earlier would be pulled
// from the seeder alone by the receivers not yet connected to each other.
// It returns how long it waited; a mesh not complete by then is logged and
// measured as it is.
func (b *bench) waitMeshed(ctx context.Context, c *blueshiftCluster, n int) time.Duration {
	t0 := time.Now()
	for i := 0; i < n; {
		st, err := c.status(ctx, i)
		connected := 0
		for _, p := range st.Peers {
			if p.Connected && slices.Contains(c.ids, p.ID) {
				connected++
			}
		}
		if err == nil && connected >= n-1 {
			i++
			continue
		}
		if time.Since(t0) > time.Minute || ctx.Err() != nil {
			b.log.Warn("devices not all connected to each other", "device", i, "connected", connected, "of", n-1, "err", err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.log.Info("devices connected to each other", "devices", n, "waited_s", time.Since(t0).Seconds())
	return time.Since(t0)
}
