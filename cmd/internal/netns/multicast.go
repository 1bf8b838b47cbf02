package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// ipv6Only makes the hub's bridge forward no IPv4 or ARP frame (an
// IPv6-only LAN: an IPv4 datagram sent with no address, as multicast can
// be, never reaches another device).
func ipv6Only(ctx context.Context, hub string) error {
	cmd := NFT(ctx, hub, "-f", "-")
	cmd.Stdin = strings.NewReader(`table bridge bsipv6only {
  chain noipv4 {
    type filter hook forward priority 0; policy accept;
    ether type { ip, arp } counter drop
  }
}
`)
	if _, err := run(ctx, cmd); err != nil {
		return fmt.Errorf("make the hub's bridge IPv6 only: %w", err)
	}
	return nil
}

// DroppedIPv4 returns the bytes of IPv4 and ARP the bridge of an
// IPv6-only network dropped so far.
func (nw *Network) DroppedIPv4(ctx context.Context) (int64, error) {
	if !nw.Shaped {
		return 0, fmt.Errorf("count the IPv4 dropped: not a shaped network")
	}
	in, _, err := (&Counter{ns: nw.Hub, table: "bsipv6only", family: "bridge"}).Read(ctx)
	return in, err
}

// NewGroupCounter counts the bytes endpoint i of a shaped network sent to
// the multicast address group, where they arrive at the hub (its upload,
// as CrossedCounter counts it): Read's out. The table is named table, in
// the hub.
func (nw *Network) NewGroupCounter(ctx context.Context, i int, table string, group netip.Addr) (*Counter, error) {
	if !nw.Shaped || i < 0 || i >= len(nw.Endpoints) || !group.IsMulticast() {
		return nil, fmt.Errorf("count endpoint %d's datagrams to %v: not an endpoint of a shaped network and a multicast group", i, group)
	}
	fam := "ip"
	if group.Is6() {
		fam = "ip6"
	}
	rules := fmt.Sprintf(`table netdev %s {
  chain out {
    type filter hook ingress device "h%d" priority -5; policy accept;
    %s daddr %s counter accept
  }
}
`, table, i, fam, group)
	_ = NFT(ctx, nw.Hub, "delete", "table", "netdev", table).Run()
	cmd := NFT(ctx, nw.Hub, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if _, err := run(ctx, cmd); err != nil {
		return nil, fmt.Errorf("load nftables counter %s in the hub: %w", table, err)
	}
	return &Counter{ns: nw.Hub, table: table, family: "netdev"}, nil
}

// DropMulticast makes the hub's bridge stop forwarding multicast to
// endpoint i, as some Wi-Fi access points and switches do: its port no
// longer floods multicast (bridge link mcast_flood off), and with no
// multicast querier on the LAN the bridge floods every group, so none
// reaches the endpoint. Broadcast (ARP) still does; IPv6 neighbour
// discovery is multicast, so on an IPv6 network unicast stops too once
// the neighbours' entries expire.
func (nw *Network) DropMulticast(ctx context.Context, i int) error {
	if !nw.Shaped || i < 0 || i >= len(nw.Endpoints) {
		return fmt.Errorf("drop multicast to endpoint %d: not an endpoint of a shaped network", i)
	}
	cmd := exec.CommandContext(ctx, "bridge", "-n", nw.Hub, "link", "set", "dev", fmt.Sprintf("h%d", i), "mcast_flood", "off")
	if _, err := run(ctx, cmd); err != nil {
		return fmt.Errorf("drop multicast to endpoint %d: %w", i, err)
	}
	return nil
}
