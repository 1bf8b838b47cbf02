package netns

import (
	"context"
	"fmt"
	"strings"
)

// CrossedCounter counts the bytes that crossed a shaped endpoint's link:
// its upload where it arrives at the hub (the ingress of the hub's end of
// the veth, after the device's own qdisc), its download at the device's
// input. A Counter (NewLinkCounter) counts the upload at the device's
// output hook, before its qdisc: a packet the qdisc drops, and TCP sends
// again, counts there twice though it crossed the link once. Several TCP
// flows out of one device overflow the qdisc's 50 ms queue (each socket
// may queue up to net.ipv4.tcp_limit_output_bytes, 4 MiB on recent
// kernels), so a device serving four peers at once was counted up to 1.7x
// what its link carried.
type CrossedCounter struct {
	dev *Counter // the device's own: in (its download) and out (before its qdisc)
	hub *Counter // the hub's ingress from the device: its upload
}

// NewCrossedCounter counts what crosses endpoint i's link of a shaped
// network (tables named table in the device's namespace and the hub's).
func (nw *Network) NewCrossedCounter(ctx context.Context, i int, table string) (*CrossedCounter, error) {
	if !nw.Shaped || i < 0 || i >= len(nw.Endpoints) {
		return nil, fmt.Errorf("count endpoint %d's link: not an endpoint of a shaped network", i)
	}
	dev, err := NewLinkCounter(ctx, nw.Endpoints[i].NS, table)
	if err != nil {
		return nil, err
	}
	rules := fmt.Sprintf(`table netdev %s {
  chain out {
    type filter hook ingress device "h%d" priority -10; policy accept;
    counter accept
  }
}
`, table, i)
	_ = NFT(ctx, nw.Hub, "delete", "table", "netdev", table).Run()
	cmd := NFT(ctx, nw.Hub, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if _, err := run(ctx, cmd); err != nil {
		dev.Close()
		return nil, fmt.Errorf("load nftables counter %s in the hub: %w", table, err)
	}
	return &CrossedCounter{dev: dev, hub: &Counter{ns: nw.Hub, table: table, family: "netdev"}}, nil
}

// Read returns the bytes that crossed the link: in (download) and out
// (upload, counted at the hub).
func (c *CrossedCounter) Read(ctx context.Context) (in, out int64, err error) {
	in, _, err = c.dev.Read(ctx)
	if err != nil {
		return 0, 0, err
	}
	_, out, err = c.hub.Read(ctx)
	return in, out, err
}

// Sent returns the upload counted at the device's output hook, before
// its qdisc (what NewLinkCounter counts): out of Read plus what the qdisc
// dropped and TCP sent again.
func (c *CrossedCounter) Sent(ctx context.Context) (int64, error) {
	_, out, err := c.dev.Read(ctx)
	return out, err
}

// Close deletes both tables.
func (c *CrossedCounter) Close() {
	c.dev.Close()
	c.hub.Close()
}
