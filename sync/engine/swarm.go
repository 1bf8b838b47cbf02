package engine

import (
	"context"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// The swarm: devices pulling one file at the same time fetch from each
// other, so the device that had it first sends each block about once.
//
//   - A device pulling a large file serves the blocks already in its temp
//     (inflight) and says which it holds in Have messages, batched per peer
//     (haveEvery), to the members of the file's share that speak them
//     (wire.HaveVersion). A pull that ends says so: every block (the file is
//     in place) or none (given up).
//   - The puller picks the next block when a fetch slot frees
//     (swarmPicker): one some peer's Have holds, else one of its own slice
//     of the file (the pullers split the blocks by rendezvous hashing), else
//     it waits for the other pullers' Haves while they make progress, and
//     shares out the slices of those that went quiet. So each block comes
//     from the device that had the file about once and goes round among the
//     pullers. It asks peers whose Have holds the block first, then the
//     peers that said nothing of the file (they may hold it whole: the
//     device that sent the record, older peers), then the rest (sources).
//
// Haves cross no share boundary: a Have of share S goes only to members of
// S and is taken only from them; a block asked of a peer is asked about S,
// which the peer serves from S's files and temps only, checked against its
// hash (folder.readShared).

const (
	// haveEvery is the least time between two batches of Haves to a peer.
	haveEvery = 50 * time.Millisecond
	// maxPeerHaves and maxPeerHaveBytes bound the Haves kept of a peer.
	maxPeerHaves     = 4096
	maxPeerHaveBytes = 8 << 20
	// stalledAfter: a peer pulling a file that sent no Have of it for this
	// long is not waited for.
	stalledAfter = 10 * haveEvery
	// pickSample is how many blocks left the picker samples for one a peer
	// holds or one of its slice, before it looks at them all.
	pickSample = 32
)

// fileKey names a file being pulled: its share and content hash.
type fileKey struct {
	share share.ID
	file  block.Hash
}

// localPull is what this device holds of a file it is pulling, for its
// Haves. Sessions keep a pointer until their Have is sent.
type localPull struct {
	key fileKey
	n   int

	mu   gosync.Mutex
	held []byte // guarded by mu: bit i: block i is in a temp (see wire.Have)
	// ended: the pull is over; held is then all or nothing.
	ended bool // guarded by mu
}

// have returns the Have that says what the pull holds now.
func (p *localPull) have() *wire.Have {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &wire.Have{Share: p.key.share, File: p.key.file, Blocks: uint32(p.n), Held: append([]byte(nil), p.held...)}
}

// filePull is one pull of a file under way (pullFile): it notes the blocks
// that arrive and tells the peers.
type filePull struct {
	f *folder
	p *localPull
}

// beginPull registers a pull of rec's file, one of those Haves tell of.
// The same content pulled at two paths at once shares one localPull.
func (f *folder) beginPull(rec record.Record) *filePull {
	key := fileKey{share: f.id, file: rec.FileHash}
	t := f.e.temps
	t.mu.Lock()
	p := t.pulls[key]
	if p == nil {
		p = &localPull{key: key, n: len(rec.Blocks), held: make([]byte, (len(rec.Blocks)+7)/8)}
		t.pulls[key] = p
	}
	t.users[p]++
	t.mu.Unlock()
	fp := &filePull{f: f, p: p}
	fp.tell() // at once: peers starting the same pull take other slices
	return fp
}

// got notes that block i is in the temp, and queues a Have for the peers.
func (fp *filePull) got(i int) {
	fp.p.mu.Lock()
	fp.p.held[i/8] |= 1 << (i % 8)
	fp.p.mu.Unlock()
	fp.tell()
}

// end unregisters the pull: complete, the file is in place and every
// block is held; else none is (its temp is closed and no longer served).
func (fp *filePull) end(complete bool) {
	t := fp.f.e.temps
	t.mu.Lock()
	t.users[fp.p]--
	last := t.users[fp.p] == 0
	if last {
		delete(t.users, fp.p)
		if t.pulls[fp.p.key] == fp.p {
			delete(t.pulls, fp.p.key)
		}
	}
	t.mu.Unlock()
	if !last && !complete {
		return // another pull of the same content goes on
	}
	fp.p.mu.Lock()
	fp.p.ended = true
	if complete {
		for i := range fp.p.held {
			fp.p.held[i] = 0xff
		}
		if r := fp.p.n % 8; r != 0 {
			fp.p.held[len(fp.p.held)-1] = 1<<r - 1
		}
	} else {
		fp.p.held = nil
	}
	fp.p.mu.Unlock()
	fp.tell()
}

// tell queues the pull's Have for every connected member that speaks it.
func (fp *filePull) tell() {
	for _, s := range fp.f.connectedMembers() {
		if s.speaksHave() {
			s.haves.mark(fp.p)
			s.signalOut()
		}
	}
}

// speaksHave reports whether the peer's protocol version has Have.
func (s *Session) speaksHave() bool {
	v, ok := s.conn().(interface{ Version() uint32 })
	return ok && v.Version() >= wire.HaveVersion
}

// haveBook is a session's share of the swarm: the Haves waiting to be sent
// to the peer and the last Have the peer sent of each file. Safe for
// concurrent use.
type haveBook struct {
	mu struct {
		gosync.Mutex
		out  map[*localPull]bool    // guarded by mu: Haves to send
		last time.Time              // guarded by mu: when the last batch went
		in   map[fileKey]*wire.Have // guarded by mu: the peer's newest Have of each file
		full map[fileKey]bool       // guarded by mu: the Haves in in that hold every block
		grew map[fileKey]time.Time  // guarded by mu: when a Have in in last marked a new block
		size int                    // guarded by mu: the bytes of in's bitfields
	}
}

func newHaveBook() *haveBook {
	h := &haveBook{}
	h.mu.out = make(map[*localPull]bool)
	h.mu.in = make(map[fileKey]*wire.Have)
	h.mu.full = make(map[fileKey]bool)
	h.mu.grew = make(map[fileKey]time.Time)
	return h
}

// mark queues p's Have. The sender sends it within haveEvery.
func (h *haveBook) mark(p *localPull) {
	h.mu.Lock()
	h.mu.out[p] = true
	h.mu.Unlock()
}

// take returns the Haves to send now; when some wait for their batch's
// time, wait says how long.
func (h *haveBook) take(now time.Time) (out []*wire.Have, wait time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.mu.out) == 0 {
		return nil, 0
	}
	if d := h.mu.last.Add(haveEvery).Sub(now); d > 0 {
		return nil, d
	}
	h.mu.last = now
	for p := range h.mu.out {
		out = append(out, p.have())
	}
	clear(h.mu.out)
	return out, 0
}

// putHave keeps a Have the peer sent, if the peer may speak of its share.
func (s *Session) putHave(m *wire.Have) {
	f := s.e.folder(m.Share)
	if f == nil || !f.isMember(s.id) {
		return
	}
	key := fileKey{share: m.Share, file: m.File}
	h := s.haves
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.mu.in[key]
	if old != nil {
		h.mu.size -= len(old.Held)
		delete(h.mu.in, key)
		delete(h.mu.full, key)
	}
	if len(m.Held) == 0 || len(h.mu.in) >= maxPeerHaves || h.mu.size+len(m.Held) > maxPeerHaveBytes {
		delete(h.mu.grew, key)
		return
	}
	h.mu.in[key] = m
	h.mu.size += len(m.Held)
	if holdsAll(m) {
		h.mu.full[key] = true
	}
	if old == nil || count(m) > count(old) {
		h.mu.grew[key] = time.Now()
	}
}

// pulling reports whether the peer's Have says it is pulling the file
// (it holds some of its blocks, not all).
func (h *haveBook) pulling(key fileKey, n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.mu.in[key]
	return m != nil && int(m.Blocks) == n && !h.mu.full[key]
}

// lately reports whether the peer, pulling the file, sent a Have of it
// that marks a new block within stalledAfter of now.
func (h *haveBook) lately(key fileKey, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.mu.full[key] && now.Sub(h.mu.grew[key]) < stalledAfter
}

// holds reports what the peer said of block i of a file: whether it spoke
// of the file at all, and whether it holds the block.
func (h *haveBook) holds(key fileKey, n, i int) (known, held bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.mu.in[key]
	if m == nil || int(m.Blocks) != n {
		return false, false
	}
	return true, m.Holds(i)
}

// swarmPicker chooses the order in which a pull fetches a file's blocks.
// Its loop owns left and rnd; the pull's fetches note holders.
type swarmPicker struct {
	f    *folder
	key  fileKey
	n    int
	from identity.DeviceID // sent the record: holds the file
	left []int             // the blocks not yet fetched nor started
	rnd  *rand.Rand

	mu struct {
		gosync.Mutex
		holders map[identity.DeviceID]bool // guarded by mu: peers that served a block of the file and sent no Have of it
	}
}

func (f *folder) newPicker(rec record.Record, from identity.DeviceID, left []int) *swarmPicker {
	seed := uint64(f.e.self.Short())
	p := &swarmPicker{f: f, key: fileKey{share: f.id, file: rec.FileHash}, n: len(rec.Blocks), from: from, left: left,
		rnd: rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))}
	p.mu.holders = make(map[identity.DeviceID]bool)
	return p
}

// at names block i for getBlock.
func (p *swarmPicker) at(i int) blockAt { return blockAt{key: p.key, n: p.n, i: i, pick: p} }

// next returns the next block to fetch, or false when none is left (or ctx
// ended). Among a random sample of the blocks left it takes one a peer
// holds by its Have; else one of this device's slice of the file (the
// blocks for which it scores highest among the devices pulling the file:
// rendezvous hashing, so devices whose views of who pulls differ a little
// still mostly agree), so devices that start at once fetch different blocks
// from the device that had the file and the rest from each other. When only other pullers'
// slices are left and they are still making progress, it waits for their
// Haves (a block fetched twice from the seeder is the cost it avoids); once
// they go quiet (stalledAfter), their slices are shared out.
func (p *swarmPicker) next(ctx context.Context) (int, bool) {
	for len(p.left) > 0 {
		peers := p.f.connectedMembers()
		pullers := p.pullers(peers)
		pick, mine := -1, -1
		for range min(pickSample, len(p.left)) {
			j := p.rnd.IntN(len(p.left))
			if p.heldByPeer(peers, p.left[j]) {
				pick = j
				break
			}
			if mine < 0 && p.mine(pullers, p.left[j]) {
				mine = j
			}
		}
		if pick < 0 && mine < 0 {
			pick, mine = p.scan(peers, pullers) // the sample missed the few left
		}
		if pick < 0 && mine < 0 {
			// Only other pullers' slices are left. Those of pullers that went
			// quiet are shared out among the rest (rendezvous hashing moves
			// only theirs); the others' are waited for.
			if active := p.active(peers); len(active) > 0 {
				if _, mine = p.scan(nil, active); mine < 0 {
					select {
					case <-time.After(haveEvery):
						continue
					case <-ctx.Done():
						return 0, false
					}
				}
			}
		}
		switch {
		case pick >= 0:
		case mine >= 0:
			pick = mine
		default:
			pick = p.rnd.IntN(len(p.left))
		}
		i := p.left[pick]
		p.left[pick] = p.left[len(p.left)-1]
		p.left = p.left[:len(p.left)-1]
		return i, true
	}
	return 0, false
}

// scan looks through every block left for one a peer holds, else one of
// this device's slice.
func (p *swarmPicker) scan(peers []*Session, pullers []uint64) (held, mine int) {
	held, mine = -1, -1
	for j, i := range p.left {
		if p.heldByPeer(peers, i) {
			return j, mine
		}
		if mine < 0 && p.mine(pullers, i) {
			mine = j
		}
	}
	return held, mine
}

// active returns the pullers of the file that said lately that they got
// a block.
func (p *swarmPicker) active(peers []*Session) []uint64 {
	var out []uint64
	now := time.Now()
	for _, s := range peers {
		if s.haves.lately(p.key, now) {
			out = append(out, uint64(s.id.Short()))
		}
	}
	return out
}

// pullers returns the other devices pulling the file, by their short IDs:
// the peers whose Have says they pull it, and those that speak Haves and
// said nothing of the file yet, unless they hold it (they sent the record,
// or served a block of it without a Have): a member that lacks a file pulls
// it soon, so pulls that start together start on different slices however
// late their first Haves come.
func (p *swarmPicker) pullers(peers []*Session) []uint64 {
	var out []uint64
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range peers {
		known, _ := s.haves.holds(p.key, p.n, 0)
		silent := !known && s.speaksHave() && s.id != p.from && !p.mu.holders[s.id]
		if silent || s.haves.pulling(p.key, p.n) {
			out = append(out, uint64(s.id.Short()))
		}
	}
	return out
}

// mine reports whether block i is in this device's slice: it scores
// higher for it than every other puller.
func (p *swarmPicker) mine(pullers []uint64, i int) bool {
	own := p.score(uint64(p.f.e.self.Short()), i)
	for _, d := range pullers {
		if p.score(d, i) > own {
			return false
		}
	}
	return true
}

// score is device d's weight for block i of the file (rendezvous hashing).
func (p *swarmPicker) score(d uint64, i int) uint64 {
	x := d ^ binary.LittleEndian.Uint64(p.key.file[:8]) ^ uint64(i)*0x9e3779b97f4a7c15
	// splitmix64's finalizer
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (p *swarmPicker) heldByPeer(peers []*Session, i int) bool {
	for _, s := range peers {
		if _, held := s.haves.holds(p.key, p.n, i); held {
			return true
		}
	}
	return false
}

// blockAt names block i of a file of n blocks, and the pull's picker if
// it has one.
type blockAt struct {
	key  fileKey
	n, i int
	pick *swarmPicker
}

// servedBy notes that peer s sent the block: without a Have of the file,
// it holds the file and is no puller.
func (at blockAt) servedBy(s *Session) {
	if at.pick == nil {
		return
	}
	if known, _ := s.haves.holds(at.key, at.n, at.i); known {
		return
	}
	at.pick.mu.Lock()
	at.pick.mu.holders[s.id] = true
	at.pick.mu.Unlock()
}

// refuted notes that peer s did not send the block.
func (at blockAt) refuted(s *Session) { s.haves.refuted(at) }

// sources orders the connected members to ask for a block: those whose Have holds it (shuffled, to spread the load), then those
// that said nothing of the file (in the order given), then those whose
// Have lacks it (it may have come since).
func sources(peers []*Session, at blockAt) []*Session {
	var holders, silent, lacking []*Session
	for _, s := range peers {
		switch known, held := s.haves.holds(at.key, at.n, at.i); {
		case held:
			holders = append(holders, s)
		case !known:
			silent = append(silent, s)
		default:
			lacking = append(lacking, s)
		}
	}
	rand.Shuffle(len(holders), func(a, b int) { holders[a], holders[b] = holders[b], holders[a] })
	return append(append(holders, silent...), lacking...)
}

// refuted forgets the peer's Have of a file it pulls once the peer
// answered that it does not have a block its Have holds: it is then asked
// after the peers that said nothing of the file, not first, for every
// block. A Have of the whole file is kept: the pull ended, and the file is
// in the peer's index a moment later.
func (h *haveBook) refuted(at blockAt) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.mu.in[at.key]; m != nil && int(m.Blocks) == at.n && m.Holds(at.i) && !h.mu.full[at.key] {
		h.mu.size -= len(m.Held)
		delete(h.mu.in, at.key)
		delete(h.mu.full, at.key)
		delete(h.mu.grew, at.key)
	}
}

// holdsAll reports whether a Have marks every block of its file.
func holdsAll(m *wire.Have) bool {
	for i := range int(m.Blocks) {
		if !m.Holds(i) {
			return false
		}
	}
	return true
}

// count returns how many blocks a Have marks.
func count(m *wire.Have) int {
	n := 0
	for _, b := range m.Held {
		n += bits.OnesCount8(b)
	}
	return n
}
