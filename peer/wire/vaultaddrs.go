package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// MaxVaultAddrs bounds the addresses of one VaultAddrs.
const MaxVaultAddrs = 16

// VaultAddrs (a request; answered by VaultAddrsAck) is an encrypted
// member telling a member where it can be dialled: IP:port text, its
// listeners and what peers observed of it. Sent only to a peer whose Hello
// carries VaultListedCapability.
type VaultAddrs struct {
	Addrs []string
}

// VaultAddrsAck answers VaultAddrs.
type VaultAddrsAck struct{}

func (m *VaultAddrs) validate() error {
	if len(m.Addrs) > MaxVaultAddrs {
		return fmt.Errorf("vault addresses: %d, limit %d", len(m.Addrs), MaxVaultAddrs)
	}
	for _, a := range m.Addrs {
		if len(a) == 0 || len(a) > transport.MaxAddrLen {
			return fmt.Errorf("vault address of %d bytes, limit %d", len(a), transport.MaxAddrLen)
		}
	}
	return nil
}

func (*VaultAddrsAck) validate() error { return nil }

func (m *VaultAddrs) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_VaultAddrs{VaultAddrs: &wirepb.VaultAddrs{Addrs: m.Addrs}}
}

func (*VaultAddrsAck) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_VaultAddrsAck{VaultAddrsAck: &wirepb.VaultAddrsAck{}}
}

func vaultAddrsFromPB(p *wirepb.VaultAddrs) (*VaultAddrs, error) {
	if len(p.GetAddrs()) > MaxVaultAddrs {
		return nil, fmt.Errorf("vault addresses: %d, limit %d", len(p.GetAddrs()), MaxVaultAddrs)
	}
	return &VaultAddrs{Addrs: p.GetAddrs()}, nil
}
