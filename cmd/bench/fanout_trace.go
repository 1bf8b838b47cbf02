package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// traceSeeder logs what the seeder's daemon counted of a fan-out run: the
// bytes it sent to each peer (TLS records) and the block bytes it served,
// next to the link counter's upload (seeder_up_bytes), so the link's
// overhead and the copies served show apart.
func traceSeeder(ctx context.Context, log *slog.Logger, nw *netns.Network, c cluster, tool string) {
	for i, ep := range nw.Endpoints {
		if ep.NS == "" {
			continue
		}
		tc, _ := exec.CommandContext(ctx, "tc", "-n", ep.NS, "-s", "qdisc", "show", "dev", "eth0").CombinedOutput()
		snmp, _ := exec.CommandContext(ctx, "ip", "netns", "exec", ep.NS, "cat", "/proc/net/snmp").CombinedOutput()
		var tcp string
		for _, l := range strings.Split(string(snmp), "\n") {
			if strings.HasPrefix(l, "Tcp:") {
				tcp += l + " | "
			}
		}
		log.Info("fan-out device link", "tool", tool, "device", i, "tc", strings.Join(strings.Fields(string(tc)), " "), "tcp", tcp)
	}
	bc, ok := c.(*blueshiftCluster)
	if !ok {
		return
	}
	for i := range bc.dirs {
		out, err := bc.cli(ctx, i, "status", "--json")
		if err != nil {
			continue
		}
		var s struct {
			Shares []struct {
				BytesIn  int64 `json:"bytes_in"`
				BytesOut int64 `json:"bytes_out"`
			} `json:"shares"`
			Peers []struct {
				ID       string `json:"id"`
				BytesIn  int64  `json:"bytes_in"`
				BytesOut int64  `json:"bytes_out"`
			} `json:"peers"`
		}
		if json.Unmarshal([]byte(out), &s) != nil {
			continue
		}
		args := []any{"tool", tool, "device", i}
		for _, sh := range s.Shares {
			args = append(args, "share_blocks_in", sh.BytesIn, "share_blocks_out", sh.BytesOut)
		}
		for _, p := range s.Peers {
			for j, id := range bc.ids {
				if id == p.ID {
					args = append(args, "to", j, "out", p.BytesOut, "in", p.BytesIn)
				}
			}
		}
		log.Info("fan-out device counts", args...)
	}
}

// crossedCounters counts what crosses the links of the network's first n
// endpoints (the devices; a stranger's is left out).
func crossedCounters(ctx context.Context, b *bench, nw *netns.Network, n int) ([]*netns.CrossedCounter, error) {
	var ctrs []*netns.CrossedCounter
	for i := range n {
		c, err := nw.NewCrossedCounter(ctx, i, b.uniq("t"))
		if err != nil {
			closeCounters(ctrs)
			return nil, err
		}
		ctrs = append(ctrs, c)
	}
	return ctrs, nil
}

func closeCounters(ctrs []*netns.CrossedCounter) {
	for _, c := range ctrs {
		c.Close()
	}
}

// readCrossed adds the devices' uploads that crossed their links to
// m.wire, and sets the seeder's (device 0) seeder_up_bytes, and
// seeder_sent_bytes: its upload as counted before its own qdisc, which
// counts again what that qdisc dropped and TCP sent again (the figure
// this scenario reported before the hub-side count).
func readCrossed(ctx context.Context, ctrs []*netns.CrossedCounter, m *measure) {
	for i, c := range ctrs {
		_, out, _ := c.Read(ctx)
		m.wire += out
		if i == 0 {
			m.extra["seeder_up_bytes"] = float64(out)
			sent, _ := c.Sent(ctx)
			m.extra["seeder_sent_bytes"] = float64(sent)
		}
	}
}
