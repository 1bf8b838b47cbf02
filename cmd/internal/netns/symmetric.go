package netns

import (
	"context"
	"fmt"
)

// Symmetric makes home i's router map each destination to a port of its
// own (masquerade fully-random: a "symmetric" NAT, whose mapping towards
// one host tells nothing of the one towards another, so hole punching
// fails through it). Call it before the home's device sends anything.
func (in *Internet) Symmetric(ctx context.Context, i int) error {
	r := in.Homes[i].Router
	if _, err := run(ctx, NFT(ctx, r, "flush", "chain", "ip", natTable, "masq")); err != nil {
		return fmt.Errorf("make %s symmetric: %w", r, err)
	}
	if _, err := run(ctx, NFT(ctx, r, "add", "rule", "ip", natTable, "masq", "oifname", "wan0", "masquerade", "fully-random")); err != nil {
		return fmt.Errorf("make %s symmetric: %w", r, err)
	}
	return nil
}
