package engine

import (
	"slices"
	gosync "sync"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Batch signing. A device that lacks wire.BatchSigCapability cannot open a
// batched envelope, and an envelope once sealed travels unchanged to every
// member (relayed, vaulted, served later). So a share's scans seal in
// batches only while every member of the share has been seen, in this run,
// announcing the capability in its Hello: a member not yet seen since the
// start, a member added by SetMembers, or one whose last Hello lacked it
// turns batching off for the next scan. Envelopes signed alone stay valid.
type batchPeers struct {
	mu struct {
		gosync.Mutex
		seen map[identity.DeviceID]bool // guarded by mu: whether its last Hello had the capability
	}
}

// note records what peer id's Hello announced.
func (b *batchPeers) note(id identity.DeviceID, capable bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.seen == nil {
		b.mu.seen = make(map[identity.DeviceID]bool)
	}
	b.mu.seen[id] = capable
}

func (b *batchPeers) allCapable(ids []identity.DeviceID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if !b.mu.seen[id] {
			return false
		}
	}
	return true
}

// speaksBatchSig reports whether the peer's Hello offers batched envelopes.
func (s *Session) speaksBatchSig() bool {
	h, ok := s.c.(interface{ PeerHello() *wire.Hello })
	return ok && h.PeerHello() != nil && slices.Contains(h.PeerHello().Capabilities, wire.BatchSigCapability)
}

// noteBatchSig records the capability of a session's peer and updates the
// shares it is a member of.
func (e *Engine) noteBatchSig(s *Session) {
	e.batch.note(s.id, s.speaksBatchSig())
	for _, f := range e.folders() {
		if f.isMember(s.id) {
			f.updateBatchSigning()
		}
	}
}

// updateBatchSigning turns the share's batch signing on when every other
// member announced the capability, off otherwise.
func (f *folder) updateBatchSigning() {
	f.mu.Lock()
	ids := make([]identity.DeviceID, 0, len(f.mu.members))
	for id := range f.mu.members {
		if id != f.e.self {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	f.idx.SetBatchSigning(len(ids) > 0 && f.e.batch.allCapable(ids))
}
