package netns

import (
	"context"
	"fmt"
)

// ForwardTCP makes home i's router forward TCP port on its WAN address to
// the same port of its device (a port forward a user sets up on a home
// router): from the WAN, new TCP connections to that port now get in; all
// else stays as the home router's firewall has it.
func (in *Internet) ForwardTCP(ctx context.Context, i, port int) error {
	h := in.Homes[i]
	err := loadRules(ctx, h.Router, fmt.Sprintf(`table ip bsfwd_tcp {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan0" tcp dport %d dnat to %s:%d
  }
}
`, port, h.Device.IP, port))
	if err != nil {
		return err
	}
	// The firewall's drop of new connections from the WAN comes first in
	// its own chain, so the accept goes before it there.
	_, err = run(ctx, NFT(ctx, h.Router, "insert", "rule", "ip", natTable, "through",
		"iifname", "wan0", "ct", "status", "dnat", "tcp", "dport", fmt.Sprint(port), "counter", "name", "via_others", "accept"))
	if err != nil {
		return fmt.Errorf("forward TCP port %d on %s: %w", port, h.Router, err)
	}
	return nil
}
