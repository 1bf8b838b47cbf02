package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// maxPrefixLen is the number of nibbles in a merkle.Key.
const maxPrefixLen = 2 * len(merkle.Key{})

// ShareState tells a peer "this is my root of this share now" (one-way).
type ShareState struct {
	Share share.ID
	Root  merkle.Hash
	Count uint64
	// Pulling: the sender is still applying records it received, so its
	// root is on its way somewhere; a peer need not walk it yet.
	Pulling bool
}

// NodesRequest asks for the nodes at Prefixes of the version of Share's
// tree whose root is Root, so that a walk reads one version from start to
// end while the tree keeps changing. The zero Root asks for the tree as it
// is now: a walk's first request, and every request of a version 1 peer.
type NodesRequest struct {
	Share    share.ID
	Prefixes []merkle.Prefix
	Root     merkle.Hash
}

// NodesResponse answers NodesRequest: the nodes asked for, in request
// order, and the root of the tree they were read from. If the request named
// a non-zero Root and Root differs, the answerer no longer holds that
// version of the tree ("root moved"): Nodes is empty and Root is the
// version a walk should start again from. A version 1 peer answers with
// the zero Root: nodes of its tree as it is now.
type NodesResponse struct {
	Nodes []merkle.Node
	Root  merkle.Hash
}

// Moved reports whether r says the tree asked of in q is no longer held.
func (r *NodesResponse) Moved(q *NodesRequest) bool {
	return q.Root != (merkle.Hash{}) && r.Root != (merkle.Hash{}) && r.Root != q.Root
}

func (m *NodesRequest) validate() error {
	if len(m.Prefixes) > MaxPrefixes {
		return fmt.Errorf("nodes request: %d prefixes exceed %d", len(m.Prefixes), MaxPrefixes)
	}
	for _, p := range m.Prefixes {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("nodes request: %w", err)
		}
	}
	return nil
}

func (m *NodesResponse) validate() error {
	if len(m.Nodes) > MaxNodes {
		return fmt.Errorf("nodes response: %d nodes exceed %d", len(m.Nodes), MaxNodes)
	}
	for _, n := range m.Nodes {
		if err := checkPrefix(n.Prefix); err != nil {
			return fmt.Errorf("nodes response: %w", err)
		}
		if n.Children != nil && len(n.Entries) > 0 {
			return fmt.Errorf("nodes response: node has both children and entries")
		}
		if len(n.Entries) > MaxEntries {
			return fmt.Errorf("nodes response: %d entries exceed %d", len(n.Entries), MaxEntries)
		}
	}
	return nil
}

// checkPrefix holds a prefix to merkle's form: Len nibbles at most the key's,
// bits past Len zero (so that == compares prefixes).
func checkPrefix(p merkle.Prefix) error {
	if int(p.Len) > maxPrefixLen {
		return fmt.Errorf("prefix of %d nibbles exceeds %d", p.Len, maxPrefixLen)
	}
	n := prefixBytes(p.Len)
	for i := n; i < len(p.Nibbles); i++ {
		if p.Nibbles[i] != 0 {
			return fmt.Errorf("prefix has bits set past its length")
		}
	}
	if p.Len%2 == 1 && p.Nibbles[n-1]&0x0f != 0 {
		return fmt.Errorf("prefix has bits set past its length")
	}
	return nil
}

func prefixBytes(l uint8) int { return (int(l) + 1) / 2 }

func (m *ShareState) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_ShareState{ShareState: &wirepb.ShareState{
		Share: m.Share[:], Root: m.Root[:], Count: m.Count, Pulling: m.Pulling,
	}}
}

func shareStateFromPB(p *wirepb.ShareState) (*ShareState, error) {
	m := &ShareState{Count: p.GetCount(), Pulling: p.GetPulling()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, err
	}
	if err := fixed("root", m.Root[:], p.GetRoot()); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *NodesRequest) toPB(e *wirepb.Envelope) {
	p := &wirepb.NodesRequest{Share: m.Share[:], Prefixes: make([]*wirepb.Prefix, len(m.Prefixes))}
	if m.Root != (merkle.Hash{}) {
		p.Root = m.Root[:]
	}
	for i := range m.Prefixes {
		p.Prefixes[i] = prefixToPB(&m.Prefixes[i])
	}
	e.Body = &wirepb.Envelope_NodesRequest{NodesRequest: p}
}

func nodesRequestFromPB(p *wirepb.NodesRequest) (*NodesRequest, error) {
	if len(p.GetPrefixes()) > MaxPrefixes {
		return nil, fmt.Errorf("nodes request: %d prefixes exceed %d", len(p.GetPrefixes()), MaxPrefixes)
	}
	m := &NodesRequest{Prefixes: make([]merkle.Prefix, len(p.GetPrefixes()))}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, err
	}
	if err := optionalFixed("root", m.Root[:], p.GetRoot()); err != nil {
		return nil, err
	}
	for i, pp := range p.GetPrefixes() {
		if err := prefixFromPB(&m.Prefixes[i], pp); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *NodesResponse) toPB(e *wirepb.Envelope) {
	p := &wirepb.NodesResponse{Nodes: make([]*wirepb.Node, len(m.Nodes))}
	if m.Root != (merkle.Hash{}) {
		p.Root = m.Root[:]
	}
	for i := range m.Nodes {
		n := &m.Nodes[i]
		pn := &wirepb.Node{Prefix: prefixToPB(&n.Prefix), Hash: n.Hash[:], Count: n.Count}
		if n.Children != nil {
			pn.Children = make([]*wirepb.Child, 16)
			for j := range n.Children {
				c := &n.Children[j]
				pn.Children[j] = &wirepb.Child{Hash: c.Hash[:], Count: c.Count}
			}
		}
		if len(n.Entries) > 0 {
			pn.Entries = make([]*wirepb.Entry, len(n.Entries))
			for j := range n.Entries {
				en := &n.Entries[j]
				pn.Entries[j] = &wirepb.Entry{Key: en.Key[:], Leaf: en.Leaf[:]}
			}
		}
		p.Nodes[i] = pn
	}
	e.Body = &wirepb.Envelope_NodesResponse{NodesResponse: p}
}

func nodesResponseFromPB(p *wirepb.NodesResponse) (*NodesResponse, error) {
	if len(p.GetNodes()) > MaxNodes {
		return nil, fmt.Errorf("nodes response: %d nodes exceed %d", len(p.GetNodes()), MaxNodes)
	}
	m := &NodesResponse{Nodes: make([]merkle.Node, len(p.GetNodes()))}
	if err := optionalFixed("root", m.Root[:], p.GetRoot()); err != nil {
		return nil, err
	}
	for i, pn := range p.GetNodes() {
		n := &m.Nodes[i]
		if err := prefixFromPB(&n.Prefix, pn.Prefix); err != nil {
			return nil, err
		}
		if err := fixed("node hash", n.Hash[:], pn.Hash); err != nil {
			return nil, err
		}
		n.Count = pn.Count
		switch len(pn.Children) {
		case 0:
		case 16:
			n.Children = new([16]merkle.Child)
			for j, c := range pn.Children {
				if err := fixed("child hash", n.Children[j].Hash[:], c.Hash); err != nil {
					return nil, err
				}
				n.Children[j].Count = c.Count
			}
		default:
			return nil, fmt.Errorf("node has %d children, want 16 or none", len(pn.Children))
		}
		if len(pn.Entries) > MaxEntries {
			return nil, fmt.Errorf("node has %d entries, limit %d", len(pn.Entries), MaxEntries)
		}
		if len(pn.Entries) > 0 {
			n.Entries = make([]merkle.Entry, len(pn.Entries))
			for j, en := range pn.Entries {
				if err := fixed("entry key", n.Entries[j].Key[:], en.Key); err != nil {
					return nil, err
				}
				if err := fixed("entry leaf", n.Entries[j].Leaf[:], en.Leaf); err != nil {
					return nil, err
				}
			}
		}
	}
	return m, nil
}

func prefixToPB(p *merkle.Prefix) *wirepb.Prefix {
	return &wirepb.Prefix{Len: uint32(p.Len), Nibbles: p.Nibbles[:prefixBytes(p.Len)]}
}

func prefixFromPB(dst *merkle.Prefix, p *wirepb.Prefix) error {
	if p == nil {
		return fmt.Errorf("missing prefix")
	}
	if p.Len > uint32(maxPrefixLen) {
		return fmt.Errorf("prefix of %d nibbles exceeds %d", p.Len, maxPrefixLen)
	}
	dst.Len = uint8(p.Len)
	if len(p.Nibbles) != prefixBytes(dst.Len) {
		return fmt.Errorf("prefix of %d nibbles has %d bytes, want %d", p.Len, len(p.Nibbles), prefixBytes(dst.Len))
	}
	copy(dst.Nibbles[:], p.Nibbles)
	return checkPrefix(*dst)
}

// optionalFixed is fixed for a field added in a later version: absent (a
// peer that predates it) leaves dst zero.
func optionalFixed(what string, dst, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return fixed(what, dst, src)
}

// fixed copies a fixed-size field, which must have exactly len(dst) bytes.
func fixed(what string, dst, src []byte) error {
	if len(src) != len(dst) {
		return fmt.Errorf("%s of %d bytes, want %d", what, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}
