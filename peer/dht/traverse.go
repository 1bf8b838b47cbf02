package dht

import (
	"context"
	"crypto/ed25519"
	"crypto/sha1"
	"errors"
	"sync"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	knn "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
)

// Our own BEP 44 get traversal, in place of the library's exts/getput:
// that one reads the traversal's closest nodes while queries still write
// them (a data race), reads its stats before it stopped, and leaks the
// traversal when no node is known. This one waits for the traversal to
// stop before reading anything it wrote.

// alpha is how many nodes a traversal asks at once (the library's getput
// uses 15).
const alpha = 15

// closeNode is a node near the target that gave us a write token.
type closeNode struct {
	addr  krpc.NodeAddr
	token string
}

// errNoNodes: the node knows no other node to ask.
var errNoNodes = errors.New("no DHT node known")

// traverse asks the nodes closest to target (mutable items of key pub
// under salt only) for the item; each answer whose signature verifies goes to
// found, one at a time. It returns the closest nodes that answered with a
// write token, once the traversal has stopped. A traversal that stalled
// before asking anyone (a race in the library's traversal) is started
// again, up to traversalTries times.
func (n *Node) traverse(ctx context.Context, pub [ed25519.PublicKeySize]byte, salt []byte, found func(seq int64, v []byte, sig [64]byte)) ([]closeNode, error) {
	for range traversalTries {
		closest, tried, err := n.traverseOnce(ctx, pub, salt, found)
		if err != nil || tried > 0 {
			return closest, err
		}
	}
	return nil, nil
}

func (n *Node) traverseOnce(ctx context.Context, pub [ed25519.PublicKeySize]byte, salt []byte, found func(seq int64, v []byte, sig [64]byte)) ([]closeNode, uint32, error) {
	starts, err := n.srv.TraversalStartingNodes()
	if err != nil {
		return nil, 0, errNoNodes
	}
	target := bep44.MakeMutableTarget(pub, salt)
	var mu sync.Mutex // serializes found
	op := traversal.Start(traversal.OperationInput{
		Alpha:  alpha,
		Target: target,
		DoQuery: func(qctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			res := n.srv.Get(qctx, adht.NewAddr(addr.UDP()), target, nil, adht.QueryRateLimiting{})
			if r := res.Reply.R; r != nil && r.Seq != nil && r.K == pub &&
				sha1.Sum(append(r.K[:], salt...)) == target &&
				bep44.Verify(r.K[:], salt, *r.Seq, r.V, r.Sig[:]) {
				mu.Lock()
				found(*r.Seq, r.V, r.Sig)
				mu.Unlock()
			}
			tqr := res.TraversalQueryResult(addr)
			// Only nodes that gave a token can be put to.
			if _, ok := tqr.ClosestData.(string); !ok {
				tqr.ResponseFrom = nil
			}
			return tqr
		},
		NodeFilter: n.srv.TraversalNodeFilter,
	})
	op.AddNodes(starts)
	select {
	case <-op.Stalled():
	case <-ctx.Done():
	}
	op.Stop()
	<-op.Stopped() // every query has returned: what follows reads no moving data
	var out []closeNode
	op.Closest().Range(func(e knn.Elem) {
		if token, ok := e.Data.(string); ok {
			out = append(out, closeNode{addr: e.Addr.ToNodeAddr(), token: token})
		}
	})
	return out, op.Stats().NumAddrsTried, ctx.Err()
}
