package engine

import (
	"context"
	"net"
	"net/netip"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/multicast"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// LAN multicast of blocks (peer/multicast carries the datagrams).
//
//   - A device about to pull a large file (pullFile) from a peer on its LAN
//     that speaks multicast asks it (MulticastWant, over their TLS
//     connection). The peer gathers the wants of one file for
//     gatherWindow; with two or more it makes a session (a random ID and
//     key) and answers each with them (MulticastOffer), else with no
//     session, and each pulls by unicast as before.
//   - The sender probes the group on each family; each receiver says which
//     families the probe came on (MulticastReady); the sender picks the
//     family most heard it and answers with it (MulticastStart), or with 0
//     when fewer than two did: the group does not work on that network, and
//     everyone pulls by unicast.
//   - The sender sends each block once, compressed as for unicast, cut
//     into shards with FEC (parity only once loss is reported), paced by
//     the device's Pacer. Receivers check each block against its hash,
//     write it into the pull's temp as a fetched block, and report their
//     loss every reportEvery (MulticastReport); the rate backs off on loss,
//     leaving out the worst receiver when three or more take part. A
//     receiver that loses more than leaveLoss leaves (it is the slowest)
//     and pulls by unicast; so does one that hears nothing for stallAfter.
//   - When the sender is done (MulticastStatus), the pull fetches what did
//     not arrive by unicast, from the swarm (the other receivers' temps
//     first): that is the repair.
//
// A datagram opens only under the session's key, which travels only over
// the members' TLS connections, and every block is still checked against
// its hash: a stranger on the LAN can cause repairs, never poison.
const (
	// gatherWindow is how long a sender waits for the wants of one file;
	// gatherMax, how long it waits for a second one while other LAN
	// members could still ask.
	gatherWindow = 300 * time.Millisecond
	gatherMax    = 1500 * time.Millisecond
	// probeEvery and probeWait: the sender probes the group this often,
	// for at most probeWait; a receiver waits as long for a probe.
	probeEvery = 20 * time.Millisecond
	probeWait  = 2 * time.Second
	// reportEvery is how often a receiver reports its loss.
	reportEvery = 200 * time.Millisecond
	// leaveLoss: a receiver that lost more than this of the datagrams
	// (over at least leaveAfter of them) leaves for unicast.
	leaveLoss  = 0.2
	leaveAfter = 500
	// stallAfter: a receiver that took no block for this long leaves.
	stallAfter = 5 * time.Second
	// linger: a sender keeps a finished session this long for the
	// receivers' last reports.
	linger = 5 * time.Second
	// minMulticastBlocks: a pull of fewer blocks left goes by unicast.
	minMulticastBlocks = 4
	// DefaultMulticastRate caps what a device sends to the group, in
	// bytes per second (100 Mbit/s): a LAN is never flooded.
	DefaultMulticastRate = 12_500_000
)

// MulticastStats count this device's multicast (Status).
type MulticastStats struct {
	On             bool  `json:"on"`
	SessionsSent   int64 `json:"sessions_sent"`   // sessions this device sent
	SessionsJoined int64 `json:"sessions_joined"` // sessions this device received from
	Declined       int64 `json:"declined"`        // pulls that asked and went unicast
	BytesSent      int64 `json:"bytes_sent"`      // datagram bytes sent
	BlocksSent     int64 `json:"blocks_sent"`
	BlocksReceived int64 `json:"blocks_received"` // blocks taken from the group
	BlocksRepaired int64 `json:"blocks_repaired"` // blocks of a session left to unicast
	Refused        int64 `json:"refused"`         // datagrams that did not open (forged, replayed)
	// Recent says which path the last pulls of large files took, newest
	// last (at most recentPulls).
	Recent []MulticastPull `json:"recent,omitempty"`
}

// MulticastPull is the path one pull of a large file took.
type MulticastPull struct {
	Share string      `json:"share"`
	Path  record.Path `json:"path"`
	// Via is "multicast" (some blocks came from the group) or "unicast";
	// Why says why unicast: "one receiver" (the sender declined), "group
	// failed" (the probe did not reach two receivers, or no block came),
	// "no multicast at the sender", "not on the LAN", "share off", "few
	// blocks".
	Via       string    `json:"via"`
	Why       string    `json:"why,omitempty"`
	Family    string    `json:"family,omitempty"` // with Via "multicast": "ipv4" or "ipv6", the group's
	Multicast int       `json:"multicast_blocks"` // blocks taken from the group
	Unicast   int       `json:"unicast_blocks"`   // blocks left to unicast (repairs included)
	Time      time.Time `json:"time"`
}

// recentPulls bounds MulticastStats.Recent.
const recentPulls = 32

// mcast is an engine's multicast: the group, the device's pacer, and the
// sessions it sends. run owns the senders.
type mcast struct {
	e      *Engine
	g      *multicast.Group
	pacer  *multicast.Pacer
	starts chan *mcastSend // to run

	sessionsSent, sessionsJoined, declined atomic.Int64
	bytesSent, blocksSent                  atomic.Int64
	blocksReceived, blocksRepaired         atomic.Int64

	mu struct {
		gosync.Mutex
		recent []MulticastPull                    // guarded by mu: newest last
		byFile map[fileKey]*mcastSend             // guarded by mu: gathering, sending or lingering
		byID   map[multicast.SessionID]*mcastSend // guarded by mu: sessions offered
	}
}

func newMcast(e *Engine, g *multicast.Group, rate int64) *mcast {
	if rate <= 0 {
		rate = DefaultMulticastRate
	}
	mc := &mcast{e: e, g: g, pacer: multicast.NewPacer(rate), starts: make(chan *mcastSend, 64)}
	mc.mu.byFile = make(map[fileKey]*mcastSend)
	mc.mu.byID = make(map[multicast.SessionID]*mcastSend)
	return mc
}

// mcastSend is one file sent to the group. Its sender goroutine (send)
// sets id, key and family before closing decided and started.
type mcastSend struct {
	key     fileKey
	f       *folder
	rec     record.Record
	decided chan struct{} // closed once id and key are set (zero: declined)
	started chan struct{} // closed once family is set (0: off)
	ready   chan struct{} // cap 1: a receiver said it is ready
	id      multicast.SessionID
	k       multicast.Key
	family  multicast.Family

	mu struct {
		gosync.Mutex
		peers     map[identity.DeviceID]*mcastPeer // guarded by mu
		gathering bool                             // guarded by mu
		done      bool                             // guarded by mu: all sent
	}
}

// mcastPeer is what a sender knows of one receiver.
type mcastPeer struct {
	ready    bool
	families []uint32
	in       bool    // takes part: ready on the session's family
	left     bool    // went unicast
	loss     float64 // its last report
	reported bool
}

// stats returns the counters for Status.
func (mc *mcast) stats() MulticastStats {
	if mc == nil {
		return MulticastStats{}
	}
	mc.mu.Lock()
	recent := slices.Clone(mc.mu.recent)
	mc.mu.Unlock()
	return MulticastStats{On: true,
		SessionsSent: mc.sessionsSent.Load(), SessionsJoined: mc.sessionsJoined.Load(), Declined: mc.declined.Load(),
		BytesSent: mc.bytesSent.Load(), BlocksSent: mc.blocksSent.Load(),
		BlocksReceived: mc.blocksReceived.Load(), BlocksRepaired: mc.blocksRepaired.Load(),
		Refused: mc.g.Stats().Refused, Recent: recent}
}

// note keeps the path a pull took, for Status.
// fam is the group's family when some blocks came from it (else 0).
func (mc *mcast) note(f *folder, rec record.Record, why string, fam multicast.Family, viaGroup, left int) {
	p := MulticastPull{Share: f.cfg.Name, Path: rec.Path, Via: "unicast", Why: why, Multicast: viaGroup, Unicast: left, Time: time.Now().UTC()}
	if viaGroup > 0 {
		p.Via, p.Why = "multicast", ""
		switch fam {
		case multicast.IPv4:
			p.Family = "ipv4"
		case multicast.IPv6:
			p.Family = "ipv6"
		}
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if len(mc.mu.recent) >= recentPulls {
		mc.mu.recent = slices.Delete(mc.mu.recent, 0, 1)
	}
	mc.mu.recent = append(mc.mu.recent, p)
}

// run starts a sender for each session gathered, until ctx ends; it
// returns once they have stopped.
func (mc *mcast) run(ctx context.Context) {
	var wg gosync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case sd := <-mc.starts:
			wg.Go(func() { mc.send(ctx, sd) })
		}
	}
}

// want answers a receiver's MulticastWant: it joins the file's gathering
// (starting one) and waits for the decision.
func (s *Session) multicastWant(ctx context.Context, m *wire.MulticastWant) wire.Message {
	declined := &wire.MulticastOffer{}
	mc := s.e.mc
	f, refuse := s.memberFolder(m.Share)
	if refuse != nil {
		return refuse
	}
	if mc == nil || f.cfg.NoMulticast {
		return declined
	}
	p, err := record.ParsePath(m.Path)
	if err != nil {
		return declined
	}
	ent, ok, err := f.idx.Lookup(p)
	if err != nil || !ok || ent.Record.Deleted || ent.Record.FileHash != m.File || len(ent.Record.Blocks) != int(m.Blocks) {
		return declined // not this content here: the receiver asks others by unicast
	}
	if len(s.multicastCandidates(f)) == 0 {
		return declined // nobody else on the LAN could want it: no gathering to wait for
	}
	sd := mc.join(f, ent.Record, s.id)
	if sd == nil {
		return declined
	}
	t := time.NewTimer(gatherMax + probeWait)
	defer t.Stop()
	select {
	case <-sd.decided:
	case <-t.C:
		return declined
	case <-ctx.Done():
		return declined
	}
	if sd.id == (multicast.SessionID{}) {
		return declined
	}
	return &wire.MulticastOffer{Session: sd.id, Key: sd.k}
}

// join adds receiver id to the gathering of rec's file, starting one if
// none is under way; nil when the file is being sent already (the late
// receiver pulls by unicast, mostly from the others' temps).
func (mc *mcast) join(f *folder, rec record.Record, id identity.DeviceID) *mcastSend {
	key := fileKey{share: f.id, file: rec.FileHash}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	sd := mc.mu.byFile[key]
	if sd == nil {
		sd = &mcastSend{key: key, f: f, rec: rec, decided: make(chan struct{}), started: make(chan struct{}), ready: make(chan struct{}, 1)}
		sd.mu.peers = make(map[identity.DeviceID]*mcastPeer)
		sd.mu.gathering = true
		select {
		case mc.starts <- sd:
		default:
			return nil // too many at once
		}
		mc.mu.byFile[key] = sd
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if !sd.mu.gathering && (!sd.offered() || sd.mu.done) {
		return nil // declined, or sent already
	}
	// Gathering, or sending: a late receiver takes the blocks still to
	// come and fetches the earlier ones by unicast (from the others first).
	if sd.mu.peers[id] == nil {
		sd.mu.peers[id] = &mcastPeer{}
	}
	return sd
}

// offered reports whether the session was offered (its ID and key are set).
func (sd *mcastSend) offered() bool {
	select {
	case <-sd.decided:
		return sd.id != (multicast.SessionID{})
	default:
		return false
	}
}

// send runs one session: gather, offer, probe, send every block, linger.
func (mc *mcast) send(ctx context.Context, sd *mcastSend) {
	defer mc.forget(sd)
	if !sd.gather(ctx) {
		close(sd.decided)
		return
	}
	sd.mu.Lock()
	sd.mu.gathering = false
	n := len(sd.mu.peers)
	sd.mu.Unlock()
	if n < 2 {
		close(sd.decided) // one receiver: unicast serves it as well
		return
	}
	sd.id, sd.k = multicast.NewSession()
	mc.mu.Lock()
	mc.mu.byID[sd.id] = sd
	mc.mu.Unlock()
	close(sd.decided)

	seal := multicast.NewSealer(sd.id, sd.k)
	sd.family = mc.probe(ctx, sd, seal)
	close(sd.started)
	if sd.family == 0 {
		sd.f.log.Info("LAN multicast: the group did not work for two receivers; unicast", "path", sd.rec.Path)
		return
	}
	mc.sessionsSent.Add(1)
	sd.f.log.Debug("LAN multicast: sending", "path", sd.rec.Path, "family", sd.family)
	for i, b := range sd.rec.Blocks {
		if ctx.Err() != nil || !sd.anyIn() {
			break
		}
		if block.IsZeros(b.Hash, b.Size) {
			continue // a hole: receivers make it without data
		}
		data, ok := sd.f.readShared(b.Hash, b.Size)
		if !ok {
			continue // changed under us: receivers fetch it by unicast
		}
		resp, err := mc.e.codec.encodeBlock(data, nil, packFrames)
		if err != nil {
			continue
		}
		shards, err := multicast.Encode(uint32(i), uint8(resp.Encoding), resp.Data, mc.pacer.Parity(multicast.MaxGroupShards))
		if err != nil {
			continue
		}
		for _, sh := range shards {
			if !mc.put(ctx, sd.family, seal.Shard(sh)) {
				break
			}
		}
		mc.blocksSent.Add(1)
		sd.f.act.sent.Add(int64(len(resp.Data)))
	}
	for range 3 { // the end may be lost; MulticastStatus says it too
		mc.put(ctx, sd.family, seal.End())
	}
	sd.mu.Lock()
	sd.mu.done = true
	sd.mu.Unlock()
	sleep(ctx, linger)
}

// gather waits gatherWindow for the wants of the file, or less once every
// member that could want it has asked. It reports whether ctx is still on.
//
// A lone receiver is waited for up to gatherMax while other candidates
// could still ask (their pulls may start later: a reconcile instead of a
// push); receivers that ask once the session is sending join it late.
func (sd *mcastSend) gather(ctx context.Context) bool {
	start := time.Now()
	for time.Since(start) < gatherMax {
		sd.mu.Lock()
		var asked identity.DeviceID
		n := len(sd.mu.peers)
		for id := range sd.mu.peers {
			asked = id
		}
		sd.mu.Unlock()
		candidates := 0
		if s := sd.f.e.session(asked); s != nil {
			candidates = len(s.multicastCandidates(sd.f))
		}
		switch {
		case n > candidates:
			return true // every candidate asked
		case time.Since(start) >= gatherWindow && (n >= 2 || candidates == 0):
			return true
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return false
		}
	}
	return ctx.Err() == nil
}

// multicastCandidates returns the connected members of f other than the
// session's peer that could take f's blocks from the group too: they speak
// multicast, are on the LAN, and their last announced root is not ours.
func (s *Session) multicastCandidates(f *folder) []*Session {
	var out []*Session
	for _, o := range f.connectedMembers() {
		if o != s && o.speaksMulticast() && onLAN(o.conn()) && !o.rootsAgree(f) {
			out = append(out, o)
		}
	}
	return out
}

// session returns the session with peer id, if connected.
func (e *Engine) session(id identity.DeviceID) *Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.sessions[id]
}

// put paces and sends one datagram.
func (mc *mcast) put(ctx context.Context, fam multicast.Family, p []byte) bool {
	if mc.pacer.Wait(ctx, len(p)) != nil {
		return false
	}
	if err := mc.g.Send(fam, p); err != nil {
		mc.e.log.Debug("send multicast datagram", "err", err)
		return true // a send that failed is a loss: FEC and repairs cover it
	}
	mc.bytesSent.Add(int64(len(p)))
	return true
}

// probe sends probes on each family until every receiver is ready or
// probeWait passes, then picks the family most receivers heard (IPv4 on a
// tie) and marks who takes part: 0 when fewer than two.
func (mc *mcast) probe(ctx context.Context, sd *mcastSend, seal *multicast.Sealer) multicast.Family {
	deadline := time.NewTimer(probeWait)
	defer deadline.Stop()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for !sd.allReady() {
		for _, fam := range mc.g.Families() {
			mc.put(ctx, fam, seal.Probe())
		}
		select {
		case <-ctx.Done():
			return 0
		case <-deadline.C:
			return sd.choose()
		case <-sd.ready:
		case <-tick.C:
		}
	}
	return sd.choose()
}

func (sd *mcastSend) allReady() bool {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	for _, p := range sd.mu.peers {
		if !p.ready {
			return false
		}
	}
	return true
}

func (sd *mcastSend) choose() multicast.Family {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	heard := map[uint32]int{}
	for _, p := range sd.mu.peers {
		for _, fam := range p.families {
			heard[fam]++
		}
	}
	fam := uint32(multicast.IPv4)
	if heard[uint32(multicast.IPv6)] > heard[fam] {
		fam = uint32(multicast.IPv6)
	}
	if heard[fam] < 2 {
		return 0
	}
	for _, p := range sd.mu.peers {
		p.in = slices.Contains(p.families, fam)
	}
	return multicast.Family(fam)
}

func (sd *mcastSend) anyIn() bool {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	for _, p := range sd.mu.peers {
		if p.in && !p.left {
			return true
		}
	}
	return false
}

// forget drops a session once its sender is done.
func (mc *mcast) forget(sd *mcastSend) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.mu.byFile[sd.key] == sd {
		delete(mc.mu.byFile, sd.key)
	}
	delete(mc.mu.byID, sd.id)
}

// session returns the session id that peer takes part in (or was offered).
func (mc *mcast) session(id multicast.SessionID, peer identity.DeviceID) (*mcastSend, *mcastPeer) {
	if mc == nil {
		return nil, nil
	}
	mc.mu.Lock()
	sd := mc.mu.byID[id]
	mc.mu.Unlock()
	if sd == nil {
		return nil, nil
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	p := sd.mu.peers[peer]
	if p == nil {
		return nil, nil
	}
	return sd, p
}

// multicastReady answers MulticastReady once the session's family is chosen.
func (s *Session) multicastReady(ctx context.Context, m *wire.MulticastReady) wire.Message {
	sd, p := s.e.mc.session(m.Session, s.id)
	if sd == nil {
		return &wire.MulticastStart{}
	}
	sd.mu.Lock()
	p.ready, p.families = true, m.Families
	late := sd.started != nil && isClosed(sd.started)
	if late && sd.family != 0 && !sd.mu.done && slices.Contains(m.Families, uint32(sd.family)) {
		p.in = true // joins the session under way
	}
	sd.mu.Unlock()
	select {
	case sd.ready <- struct{}{}:
	default:
	}
	t := time.NewTimer(2 * probeWait)
	defer t.Stop()
	select {
	case <-sd.started:
	case <-t.C:
		return &wire.MulticastStart{}
	case <-ctx.Done():
		return &wire.MulticastStart{}
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if !p.in {
		return &wire.MulticastStart{}
	}
	return &wire.MulticastStart{Family: uint32(sd.family)}
}

// multicastReport takes a receiver's loss: the rate follows the worst loss
// but one's (the slowest receiver repairs by unicast instead of slowing
// the group) once three or more take part.
func (s *Session) multicastReport(m *wire.MulticastReport) wire.Message {
	sd, p := s.e.mc.session(m.Session, s.id)
	if sd == nil {
		return &wire.MulticastStatus{Done: true}
	}
	sd.mu.Lock()
	p.loss, p.reported = float64(m.LossPPM)/1e6, m.Datagrams > 0
	if m.Leave {
		p.left = true
	}
	var losses []float64
	for _, q := range sd.mu.peers {
		if q.in && !q.left && q.reported {
			losses = append(losses, q.loss)
		}
	}
	done := sd.mu.done
	sd.mu.Unlock()
	if m.Datagrams > 0 && len(losses) > 0 {
		slices.Sort(losses)
		if len(losses) >= 3 {
			losses = losses[:len(losses)-1]
		}
		s.e.mc.pacer.Report(losses[len(losses)-1])
	}
	return &wire.MulticastStatus{Done: done}
}

// speaksMulticast reports whether the peer's Hello offers multicast.
func (s *Session) speaksMulticast() bool {
	return s.speaks(wire.MulticastCapability)
}

// multicastPull takes what it can of a file's blocks left (indexes into
// rec.Blocks, at offsets offs) from a multicast session of the peer that
// sent the record, writing them into t as fetched blocks, and returns the
// blocks still left for unicast. Without multicast, or when the session
// is declined or the group does not work, it returns left as it was.
func (f *folder) multicastPull(ctx context.Context, in incoming, t *apply.Temp, offs []int64, left []int, swarm *filePull) []int {
	mc := f.e.mc
	if mc == nil {
		return left
	}
	rec := in.rec
	s := f.e.session(in.from)
	switch {
	case f.cfg.NoMulticast:
		mc.note(f, rec, "share off", 0, 0, len(left))
		return left
	case len(left) < minMulticastBlocks:
		mc.note(f, rec, "few blocks", 0, 0, len(left))
		return left
	case s == nil || !f.isMember(s.id) || !s.speaksMulticast():
		mc.note(f, rec, "no multicast at the sender", 0, 0, len(left))
		return left
	case !onLAN(s.conn()):
		mc.note(f, rec, "not on the LAN", 0, 0, len(left))
		return left
	}
	resp, err := s.conn().Request(ctx, &wire.MulticastWant{Share: f.id, File: rec.FileHash, Blocks: uint32(len(rec.Blocks)), Path: string(rec.Path)})
	offer, ok := resp.(*wire.MulticastOffer)
	if err != nil || !ok || offer.Session == ([wire.MulticastSessionSize]byte{}) {
		mc.declined.Add(1)
		mc.note(f, rec, "one receiver", 0, 0, len(left))
		return left
	}
	id := multicast.SessionID(offer.Session)
	r := mc.g.Register(id, multicast.Key(offer.Key))
	defer mc.g.Unregister(id)

	fams := heardProbes(ctx, r)
	resp, err = s.conn().Request(ctx, &wire.MulticastReady{Session: offer.Session, Families: fams})
	start, ok := resp.(*wire.MulticastStart)
	if err != nil || !ok || start.Family == 0 {
		mc.declined.Add(1)
		mc.note(f, rec, "group failed", 0, 0, len(left))
		return left
	}
	mc.sessionsJoined.Add(1)
	need := make(map[int]bool, len(left))
	for _, i := range left {
		need[i] = true
	}
	for i := range rec.Blocks {
		if !need[i] {
			r.Skip(uint32(i))
		}
	}
	report := time.NewTicker(reportEvery)
	defer report.Stop()
	var seen, lost float64
	last := time.Now()
	done, doneAt := false, time.Time{}
loop:
	for len(need) > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case p := <-r.Payloads():
			i := int(p.Block)
			if !need[i] {
				continue
			}
			b := rec.Blocks[i]
			data, err := f.e.codec.decodeBlock(&wire.BlockResponse{Encoding: wire.BlockEncoding(p.Enc), Data: p.Data}, b.Hash, b.Size, nil)
			if err != nil {
				f.log.Debug("multicast block does not check; unicast fetches it", "path", rec.Path, "block", i, "err", err)
				continue
			}
			if _, err := t.WriteAt(data, offs[i]); err != nil {
				f.log.Debug("write multicast block", "path", rec.Path, "err", err)
				continue
			}
			f.e.temps.add(f.id, b.Hash, t, offs[i], b.Size)
			swarm.got(i)
			delete(need, i)
			f.act.recv.Add(int64(len(p.Data)))
			mc.blocksReceived.Add(1)
			last = time.Now()
		case <-r.Ended():
			if !done {
				done, doneAt = true, time.Now()
			}
		case <-report.C:
			loss, n := r.Loss()
			seen += float64(n)
			lost += loss * float64(n)
			leave := (seen >= leaveAfter && lost/seen > leaveLoss) || time.Since(last) > stallAfter
			if done && time.Since(doneAt) > reportEvery {
				leave = true // the end came and the rest is lost: unicast repairs it
			}
			rctx, cancel := context.WithTimeout(ctx, probeWait)
			resp, err := s.conn().Request(rctx, &wire.MulticastReport{Session: offer.Session, LossPPM: uint32(loss * 1e6), Datagrams: n, Leave: leave})
			cancel()
			st, ok := resp.(*wire.MulticastStatus)
			if err != nil || !ok || leave {
				break loop
			}
			if st.Done && !done {
				done, doneAt = true, time.Now()
			}
		}
	}
	out := left[:0]
	for _, i := range left {
		if need[i] {
			out = append(out, i)
		}
	}
	mc.blocksRepaired.Add(int64(len(out)))
	mc.note(f, rec, "group failed", multicast.Family(start.Family), len(left)-len(out), len(out))
	if len(out) > 0 {
		f.log.Debug("LAN multicast: blocks left to unicast", "path", rec.Path, "blocks", len(out), "of", len(rec.Blocks))
	}
	return out
}

// heardProbes waits for the session's probe on each family the group has:
// up to probeWait for the first, then a little for the other.
func heardProbes(ctx context.Context, r *multicast.Receiver) []uint32 {
	var fams []uint32
	wait := time.NewTimer(probeWait)
	defer wait.Stop()
	for len(fams) < 2 {
		select {
		case fam := <-r.Probed():
			fams = append(fams, uint32(fam))
			wait.Reset(5 * probeEvery)
		case <-wait.C:
			return fams
		case <-ctx.Done():
			return fams
		}
	}
	return fams
}

// onLAN reports whether c's peer is on this device's LAN: its address is
// loopback, or in the subnet of one of this device's interfaces. A peer
// reached through a relay or a router is not, and gets no multicast.
func onLAN(c Conn) bool {
	a, ok := c.(interface{ RemoteAddr() net.Addr })
	if !ok || a.RemoteAddr() == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(a.RemoteAddr().String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil && p.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// MulticastStatus returns this device's multicast counters (On false when
// multicast is off).
func (e *Engine) MulticastStatus() MulticastStats { return e.mc.stats() }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
