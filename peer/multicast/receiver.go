package multicast

import (
	"sync"
)

// receiverQueue bounds the payloads a Receiver holds for its reader; past
// it a payload is dropped (and repaired by unicast).
const receiverQueue = 256

// Receiver takes one session's datagrams: it opens them, puts payloads
// back together and queues them for the engine. Made by Group.Register.
type Receiver struct {
	id       SessionID
	payloads chan Payload  // cap receiverQueue
	probed   chan Family   // cap 2: a probe arrived on this family
	ended    chan struct{} // closed at the first end datagram

	mu struct {
		sync.Mutex
		open     *Opener    // guarded by mu
		asm      *Assembler // guarded by mu
		ended    bool       // guarded by mu
		probed   [2]bool    // guarded by mu: IPv4, IPv6
		received uint64     // guarded by mu: authentic datagrams
		top      uint64     // guarded by mu: the highest sequence number seen
		repSeen  uint64     // guarded by mu: received at the last Loss
		repTop   uint64     // guarded by mu: top at the last Loss
		dropped  int        // guarded by mu: payloads dropped, queue full
	}
}

func newReceiver(id SessionID, k Key) *Receiver {
	r := &Receiver{id: id, payloads: make(chan Payload, receiverQueue), probed: make(chan Family, 2), ended: make(chan struct{})}
	r.mu.open = NewOpener(id, k)
	r.mu.asm = NewAssembler()
	return r
}

// Payloads returns the payloads put back together, in arrival order.
func (r *Receiver) Payloads() <-chan Payload { return r.payloads }

// Probed returns the families the session's datagrams (a probe, or any
// other) arrived on, each once.
func (r *Receiver) Probed() <-chan Family { return r.probed }

// Ended is closed once the sender said it sent everything.
func (r *Receiver) Ended() <-chan struct{} { return r.ended }

// Skip drops the shards of a block the engine holds already.
func (r *Receiver) Skip(block uint32) {
	r.mu.Lock()
	r.mu.asm.Skip(block)
	r.mu.Unlock()
}

// Loss returns the fraction of datagrams missed since the last call, by
// sequence numbers, and how many were counted.
func (r *Receiver) Loss() (loss float64, of uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent := r.mu.top - r.mu.repTop
	got := r.mu.received - r.mu.repSeen
	r.mu.repTop, r.mu.repSeen = r.mu.top, r.mu.received
	if sent == 0 || got >= sent {
		return 0, sent
	}
	return float64(sent-got) / float64(sent), sent
}

// take handles one datagram of the session (the Group's reader).
func (r *Receiver) take(fam Family, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.mu.open.Open(p)
	if err != nil {
		return err
	}
	if r.mu.received == 0 {
		r.mu.repTop = d.Seq - 1 // joined under way: what was sent before is not lost
	}
	r.mu.received++
	r.mu.top = max(r.mu.top, d.Seq)
	// Any authentic datagram shows the group works on this family (a
	// receiver that joins a session under way hears no probe).
	i := 0
	if fam == IPv6 {
		i = 1
	}
	if !r.mu.probed[i] {
		r.mu.probed[i] = true
		r.probed <- fam // cap 2, once per family: never blocks
	}
	switch d.Kind {
	case KindEnd:
		if !r.mu.ended {
			r.mu.ended = true
			close(r.ended)
		}
	case KindShard:
		if pl, ok := r.mu.asm.Add(d.Shard); ok {
			select {
			case r.payloads <- pl:
			default:
				r.mu.dropped++
			}
		}
	}
	return nil
}
