package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

const (
	walkFetchesAhead  = 2                      // RecordsRequests a walk keeps in flight
	maxPrefixesPerAsk = 1024                   // node prefixes in one NodesRequest
	maxKeysPerAsk     = 256                    // records in one RecordsRequest
	retryMin          = 250 * time.Millisecond // first pause before a failed reconcile is tried again
	retryMax          = 2 * time.Second        // longest pause: a peer still scanning settles soon
	// settleDelay and idleWait bound how long a reconcile waits for pushes
	// in flight and for the puller to apply them.
	settleDelay = 100 * time.Millisecond
	idleWait    = 5 * time.Second
)

// Session is the protocol with one peer. Make it with Engine.NewSession
// before the connection opens and give it to conn.Open as the Handler (it
// may hear the peer before Serve starts); then call Serve with the opened
// connection. Serve's goroutine owns reconciles and pushed records; the
// handlers run on the connection's goroutines and never block on the peer.
type Session struct {
	e *Engine
	// cv holds the connection, set by Serve before the session is
	// registered; handlers may run before that (see conn).
	cv  atomic.Pointer[connBox]
	id  identity.DeviceID
	log *slog.Logger

	wake   chan struct{} // cap 1: some share wants a reconcile
	gone   chan struct{} // closed when superseded by a newer session
	pushes chan inPush   // from HandleMessage to run

	bytesIn atomic.Int64 // block payload bytes received
	haves   *haveBook    // the swarm's Haves to and from the peer
	// pushBytes is what the pushes waiting in pushes hold (see pushSize);
	// pushFresh the part of it that is not record deltas (freshSize).
	pushBytes, pushFresh atomic.Int64

	// squeeze is whether blocks sent to this peer are compressed: not to a
	// peer on this machine, where the link outruns zstd. Set by Serve, read
	// by the handlers, which may run before Serve starts.
	squeeze atomic.Bool
	// stream is whether the connection compresses what we send in one
	// stream (conn.Conn.Compresses): records and inline contents then go
	// into it raw, and blocks too when streamBlocks
	// (conn.Conn.CompressesBlocks). Set by Serve, like squeeze.
	stream, streamBlocks atomic.Bool

	out chan struct{} // cap 1: something waits in mu.announce or mu.pushes

	mu struct {
		gosync.Mutex
		remote  map[share.ID]wire.ShareState // guarded by mu: the peer's last announced state
		want    map[share.ID]bool            // guarded by mu: shares to reconcile
		synced  map[share.ID]rootPair        // guarded by mu: both roots when the last reconcile ended
		killed  bool                         // guarded by mu
		since   time.Time                    // guarded by mu
		gonePut bool                         // guarded by mu
		// The outgoing queue, drained by the sender (see Session).
		announce  map[share.ID]*folder // guarded by mu: shares whose newest state is to be announced
		pushes    []queuedPush         // guarded by mu: in order
		pushBytes int                  // guarded by mu: the size of pushes

		// pushedAt: when we last pushed records of a share to the peer,
		// until it next announces that share (see pushedLately).
		pushedAt map[share.ID]time.Time // guarded by mu

		// received counts the peer's pushes of each share taken in and not
		// yet handed to the puller (see folder.pulling).
		received map[share.ID]int // guarded by mu
	}
}

// queuedPush is a RecordPush waiting for the sender.
type queuedPush struct {
	f    *folder
	recs []wire.RecordData
	envs []record.Envelope // per recs, if some are trimmed (batchsig.go)
	size int
}

// maxRemoteShares bounds the peer's announced states this session keeps,
// most of them of shares not running here.
const maxRemoteShares = 4096

// pushQueue and pushQueueBytes bound the pushes waiting for a session's
// goroutine; past either a push is dropped and its share reconciled
// instead, which loses nothing but costs a walk and every record again.
// Bytes bound it, not only a count: a touch of 100,000 files is ~200 small
// record deltas (~25 MB) and must not be dropped.
//
// Whole records and inline content (freshSize) are bounded apart, tighter
// (pushQueueFresh): pushes of new files outrun a receiver that is creating
// them, and during the first sync of 200,000 tiny files their queue was a
// sixth of the receiver's peak RSS. A push past it is dropped as above;
// the reconcile then fetches its records, content inline, at the pace the
// puller takes them, and costs about the bytes the push did since a walk's
// answers share their records' batches (index: sealed in key order; in
// scan order the same bound cost 10% more bytes).
const (
	pushQueue      = 1024
	pushQueueBytes = 32 << 20
	pushQueueFresh = 4 << 20
)

// outQueueBytes bounds the pushed records waiting in a session's outgoing
// queue (a peer that reads slowly, or not at all); past it a push is
// dropped and its share announced instead, so the peer reconciles. It is
// the receiving side's bound (pushQueueBytes): a touch of 100,000 files
// queues ~25 MB of record deltas, which must not turn into a walk.
const outQueueBytes = pushQueueBytes

func newSession(e *Engine, id identity.DeviceID) *Session {
	s := &Session{
		e: e, id: id,
		log:    e.log.With("peer", peerName(id)),
		wake:   make(chan struct{}, 1),
		gone:   make(chan struct{}),
		pushes: make(chan inPush, pushQueue),
		out:    make(chan struct{}, 1),
		haves:  newHaveBook(),
	}
	s.mu.announce = make(map[share.ID]*folder)
	s.mu.remote = make(map[share.ID]wire.ShareState)
	s.mu.want = make(map[share.ID]bool)
	s.mu.synced = make(map[share.ID]rootPair)
	s.mu.pushedAt = make(map[share.ID]time.Time)
	s.mu.received = make(map[share.ID]int)
	s.mu.since = e.clock()
	return s
}

// run announces our roots and reconciles whatever differs until ctx is done.
// It owns the sender, which it stops and waits for before returning.
func (s *Session) run(ctx context.Context) error {
	sctx, stopSender := context.WithCancel(ctx)
	var sender gosync.WaitGroup
	sender.Go(func() { s.sendLoop(sctx) })
	defer sender.Wait()
	defer stopSender()
	for _, f := range s.e.folders() {
		if f.isMember(s.id) {
			s.announce(f)
		}
	}
	// A reconcile can fail without anyone misbehaving: the peer's tree
	// changed under the walk (it is still scanning, say). Then it is tried
	// again after a pause, doubling up to retryMax, whether or not anything
	// else changes.
	retry := time.NewTimer(retryMin)
	retry.Stop()
	defer retry.Stop()
	failed := make(map[share.ID]bool)
	backoff := retryMin
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.gone:
			return nil
		case p := <-s.pushes:
			s.takePush(ctx, p)
			continue
		case <-s.wake:
			s.settle(ctx)
		case <-retry.C:
			s.mu.Lock()
			for id := range failed {
				s.mu.want[id] = true
			}
			s.mu.Unlock()
			clear(failed)
		}
		for _, id := range s.takeWanted() {
			f := s.e.folder(id)
			if f == nil || !f.isMember(s.id) {
				continue
			}
			if !f.waitIdle(ctx, idleWait) || s.rootsAgree(f) || s.peerPulling(f) {
				continue
			}
			if f.scanningNow() || s.pushedLately(f) {
				// Not while our own scan moves our root (the walk would
				// fetch the peer's older record of every path the scan
				// changed), nor before the peer has said where our last
				// push took it. Asked again when our scan ends
				// (folder.scanDone) or the peer announces, and at the
				// latest after a failed walk's longest pause.
				s.log.Debug("walk put off", "share", f.cfg.Name, "scanning", f.scanningNow())
				failed[id] = true
				retry.Reset(s.e.walkRetryMax)
				continue
			}
			err := s.reconcile(ctx, f)
			switch {
			case err == nil:
				backoff = retryMin
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrPeerMisbehaved):
				s.kill(err)
				return err
			default:
				s.log.Info("reconcile failed; will retry", "share", f.cfg.Name, "in", backoff, "err", err)
				failed[id] = true
				retry.Reset(backoff)
				backoff = min(2*backoff, s.e.walkRetryMax)
			}
		}
	}
}

// settle lets pushes already on their way land before a reconcile starts:
// a root that differs only because a push is still in flight needs no walk
// of the tree and no second copy of the records.
func (s *Session) settle(ctx context.Context) {
	t := time.NewTimer(settleDelay)
	defer t.Stop()
	for {
		select {
		case p := <-s.pushes:
			s.takePush(ctx, p)
		case <-t.C:
			// And those queued already: the root the peer announced is
			// after them, so walking before they land fetches them twice.
			for {
				select {
				case p := <-s.pushes:
					s.takePush(ctx, p)
				default:
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

// receiving reports whether pushes of share id from the peer are taken in
// and not yet handed to the puller.
func (s *Session) receiving(id share.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.received[id] > 0
}

// pushed notes that records of f were just pushed to the peer: the root it
// announced last is behind them (see pushedLately).
func (s *Session) pushed(f *folder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.pushedAt[f.id] = s.e.clock()
}

// pushSettle bounds how long a peer we pushed to is left alone when it
// says nothing (it announces after its first applied batch, pulling).
const pushSettle = 10 * time.Second

// pushedLately reports whether we pushed records of f to the peer since
// its last announcement, a short while ago, and our roots still differ:
// walking it now would fetch its older record of everything we pushed.
func (s *Session) pushedLately(f *folder) bool {
	s.mu.Lock()
	at, ok := s.mu.pushedAt[f.id]
	s.mu.Unlock()
	return ok && s.e.clock().Sub(at) < pushSettle && !s.rootsAgree(f)
}

// peerPulling reports whether the peer's last announcement said it is still
// applying records (see maybeWant).
func (s *Session) peerPulling(f *folder) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.remote[f.id].Pulling
}

// rootsAgree reports whether the peer's last announced root is ours.
func (s *Session) rootsAgree(f *folder) bool {
	root, _, err := f.idx.TreeRoot()
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.mu.remote[f.id]
	return ok && st.Root == root
}

func (s *Session) superseded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.gonePut {
		s.mu.gonePut = true
		close(s.gone)
	}
}

func (s *Session) kill(err error) {
	s.mu.Lock()
	first := !s.mu.killed
	s.mu.killed = true
	s.mu.Unlock()
	if first {
		s.log.Warn("disconnecting peer", "err", err)
		s.conn().Close()
	}
}

func (s *Session) countIn(n int) { s.bytesIn.Add(int64(n)) }

// announce queues our current state of f for the peer; the sender reads
// the state when it sends, so only the newest is sent. It never blocks.
func (s *Session) announce(f *folder) {
	s.mu.Lock()
	s.mu.announce[f.id] = f
	s.mu.Unlock()
	s.signalOut()
	// No reconcile from here: our root moved, so the peer pulls from us when
	// it hears this. Each side pulls only on the other's announcement.
}

// push queues records of f for the peer, maxPushKeys to a message. When the
// queue is full the records are dropped and f announced instead: the peer
// reconciles and so gets them all the same. It never blocks.
func (s *Session) push(f *folder, recs []wire.RecordData, envs []record.Envelope) {
	s.mu.Lock()
	for len(recs) > 0 {
		n := min(len(recs), maxPushKeys)
		size := 0
		for _, rd := range recs[:n] {
			size += len(rd.Data) + len(rd.Content) + 2*len(rd.Key)
		}
		if s.mu.pushBytes+size > outQueueBytes && len(s.mu.pushes) > 0 {
			s.mu.announce[f.id] = f
			break
		}
		p := queuedPush{f: f, recs: recs[:n], size: size}
		if envs != nil {
			p.envs, envs = envs[:n], envs[n:]
		}
		s.mu.pushes = append(s.mu.pushes, p)
		s.mu.pushBytes += size
		recs = recs[n:]
	}
	s.mu.Unlock()
	s.signalOut()
}

func (s *Session) signalOut() {
	select {
	case s.out <- struct{}{}:
	default:
	}
}

// sendLoop is the sender: it sends what announce and push queued, pushes
// first (an announcement then shows a root whose records are on their way),
// until ctx is done. A send that fails (the connection is ending) drops
// what it carried: the next connection announces everything again.
func (s *Session) sendLoop(ctx context.Context) {
	haveDue := time.NewTimer(0) // the next batch of Haves (swarm.go)
	defer haveDue.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.out:
		case <-haveDue.C:
		}
		for {
			pushes, shares := s.takeOutgoing()
			haves, wait := s.haves.take(time.Now()) // a real timer waits, whatever the clock
			if wait > 0 {
				haveDue.Reset(wait)
			}
			if len(pushes) == 0 && len(shares) == 0 && len(haves) == 0 {
				break
			}
			for _, h := range haves {
				if f := s.e.folder(h.Share); f != nil && s.mayHear(f) {
					s.conn().Send(ctx, h) // lost with the connection, like a push
				}
			}
			for _, p := range pushes {
				if !s.mayHear(p.f) {
					continue
				}
				recs, batches, err := batchUp(p.recs, p.envs)
				if err != nil {
					s.log.Warn("push records", "share", p.f.cfg.Name, "err", err)
					s.mu.Lock()
					s.mu.announce[p.f.id] = p.f // the peer walks for them instead
					s.mu.Unlock()
					continue
				}
				if err := s.conn().Send(ctx, &wire.RecordPush{Share: p.f.id, Records: recs, Batches: batches}); err != nil {
					s.log.Debug("push records", "share", p.f.cfg.Name, "err", err)
				}
			}
			for _, f := range shares {
				if s.mayHear(f) {
					s.sendState(ctx, f)
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// mayHear reports whether the peer may still hear of f: it was queued when
// the share was synced with the peer, which may have changed since.
func (s *Session) mayHear(f *folder) bool {
	return s.e.folder(f.id) == f && f.isMember(s.id)
}

// takeOutgoing empties the outgoing queue; shares come in a fixed order.
func (s *Session) takeOutgoing() ([]queuedPush, []*folder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pushes := s.mu.pushes
	s.mu.pushes, s.mu.pushBytes = nil, 0
	shares := make([]*folder, 0, len(s.mu.announce))
	for _, f := range s.mu.announce {
		shares = append(shares, f)
	}
	clear(s.mu.announce)
	slices.SortFunc(shares, func(a, b *folder) int { return bytes.Compare(a.id[:], b.id[:]) })
	return pushes, shares
}

// sendState sends the peer our state of f as it is now.
func (s *Session) sendState(ctx context.Context, f *folder) {
	root, count, err := f.idx.TreeRoot()
	if err != nil {
		return
	}
	pulling := f.pulling()
	f.announced(pulling)
	if err := s.conn().Send(ctx, &wire.ShareState{Share: f.id, Root: root, Count: count, Pulling: pulling}); err != nil {
		s.log.Debug("announce root", "share", f.cfg.Name, "err", err)
	}
}

// maybeWant schedules a reconcile of f if the peer's last root differs from
// ours and has changed since the last reconcile, unless the peer said it is
// still applying what it received: its root is then on its way, likely to
// ours, and walking it would cost both sides a pass over the tree for
// nothing. Its announcement when it is done brings the reconcile.
func (s *Session) maybeWant(f *folder) {
	root, _, err := f.idx.TreeRoot()
	if err != nil {
		return
	}
	s.mu.Lock()
	st, known := s.mu.remote[f.id]
	want := known && !st.Pulling && st.Root != root && s.mu.synced[f.id] != (rootPair{root, st.Root})
	if want {
		s.mu.want[f.id] = true
	}
	s.mu.Unlock()
	if want {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Session) takeWanted() []share.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]share.ID, 0, len(s.mu.want))
	for id := range s.mu.want {
		out = append(out, id)
	}
	clear(s.mu.want)
	return out
}

// maxWalkRestarts bounds how often one reconcile starts its walk again
// because the peer's tree moved on from the version it was reading; past
// it the reconcile fails and is tried again later.
const maxWalkRestarts = 4

// reconcile finds the records in which the peer's tree differs from ours
// and hands the peer's versions to the puller, which decides. Both sides
// are read as one version each: ours from a snapshot, the peer's from the
// version it answered first, which it keeps for the walk (see
// index.Share.WalkView). If the peer lets that version go, the walk starts
// again from the one it names: nobody misbehaved.
func (s *Session) reconcile(ctx context.Context, f *folder) error {
	started := time.Now()
	defer f.walk()()
	remote := &remoteTree{s: s, share: f.id}
	for restarts := 0; ; restarts++ {
		err := s.walk(ctx, f, remote, started)
		var moved *rootMovedError
		if !errors.As(err, &moved) || restarts == maxWalkRestarts {
			return err
		}
		s.log.Debug("peer's tree moved during the walk; walking its new version", "share", f.cfg.Name, "root", fmt.Sprintf("%x", moved.to[:4]))
		remote.root = moved.to
	}
}

// walk is one pass of reconcile over the peer's tree.
func (s *Session) walk(ctx context.Context, f *folder, remote *remoteTree, started time.Time) error {
	// The local side is a frozen view: the puller applies what the walk
	// finds while it walks. A new pass takes a new one, so that what the
	// last pass brought and the puller applied is not asked for again.
	local, err := f.idx.View()
	if err != nil {
		return err
	}
	defer local.Close()
	localRoot := local.Root
	if testHookWalkView != nil {
		testHookWalkView(f)
	}
	// Records are fetched while the diff walks, a request's worth at a time,
	// so a first sync of a million files never holds a million keys, and
	// up to walkFetchesAhead requests at once: one answer crosses the link
	// while the peer reads the next (one at a time left the link idle for
	// a round trip and the peer's reading of every answer).
	fetches, fctx := errgroup.WithContext(ctx)
	fetches.SetLimit(walkFetchesAhead)
	keys := make([]merkle.Key, 0, maxKeysPerAsk)
	have := make([]merkle.Leaf, 0, maxKeysPerAsk)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		if err := fctx.Err(); err != nil {
			return err // a fetch failed: Wait says why
		}
		ks, hs := keys, have
		fetches.Go(func() error { return s.fetchRecords(fctx, f, ks, hs) })
		// New slices: those are the fetch's now.
		keys, have = make([]merkle.Key, 0, maxKeysPerAsk), make([]merkle.Leaf, 0, maxKeysPerAsk)
		return nil
	}
	skipped := 0
	asked, err := merkle.Diff(ctx, local, remote, func(k merkle.Key, l, r *merkle.Leaf) error {
		if r == nil {
			return nil // we have it, they do not: they will pull it from us
		}
		if f.coming(*r) {
			skipped++ // delivered already, not applied yet: on its way to our tree
			return nil
		}
		if f.hasRecord(k, *r) {
			return nil // applied since the view was taken
		}
		keys = append(keys, k)
		if l != nil {
			have = append(have, *l)
		} else {
			have = append(have, merkle.Leaf{})
		}
		if len(keys) == maxKeysPerAsk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if ferr := fetches.Wait(); ferr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("compare trees of share %s: %w", f.cfg.Name, err)
	}
	// A walk that left records to the puller has not settled this pair of
	// roots: should the puller fail to apply one, the next announcement of
	// the same roots walks again.
	s.mu.Lock()
	if st, ok := s.mu.remote[f.id]; ok && skipped == 0 {
		walked := remote.root // the version read; it may be newer than the announced one
		if walked == (merkle.Hash{}) {
			walked = st.Root
		}
		s.mu.synced[f.id] = rootPair{localRoot, walked}
	}
	s.mu.Unlock()
	s.log.Debug("reconciled", "share", f.cfg.Name, "nodes", asked, "left_to_puller", skipped, "took", time.Since(started))
	return nil
}

// speaks reports whether the peer's Hello carries capability.
func (s *Session) speaks(capability string) bool {
	h, ok := s.conn().(interface{ PeerHello() *wire.Hello })
	return ok && h.PeerHello() != nil && slices.Contains(h.PeerHello().Capabilities, capability)
}

// testHookWalkView, set by tests only, runs once a walk has taken its view
// of this device's tree, before it compares anything.
var testHookWalkView func(f *folder)

// fetchRecords asks the peer for the records of keys and delivers them.
func (s *Session) fetchRecords(ctx context.Context, f *folder, keys []merkle.Key, have []merkle.Leaf) error {
	resp, err := s.conn().Request(ctx, &wire.RecordsRequest{Share: f.id, Keys: keys, Have: have})
	if err != nil {
		return fmt.Errorf("ask for %d records of share %s: %w", len(keys), f.cfg.Name, err)
	}
	rr, ok := resp.(*wire.RecordsResponse)
	if !ok {
		return fmt.Errorf("ask for records of share %s: %s", f.cfg.Name, describe(resp))
	}
	batch, err := s.decodeRecords(ctx, f, rr.Records, rr.Batches)
	if err != nil {
		return err
	}
	return f.deliver(ctx, batch)
}

// decodeRecords checks records from the peer: decodable, signed by the
// share's key, filed under their own path. Anything else is misbehaviour.
func (s *Session) decodeRecords(ctx context.Context, f *folder, data []wire.RecordData, batches []wire.RecordBatch) ([]incoming, error) {
	var batch []incoming
	var refetch []merkle.Key
	locals := make([]*record.Envelope, len(data))
	var stored []int // deltas whose base is not in the history: read from the index
	for i, rd := range data {
		if rd.Encoding == wire.RecordZstdDict {
			if locals[i] = f.hist.find(rd.Base); locals[i] == nil {
				stored = append(stored, i)
			}
		}
	}
	if len(stored) > 0 {
		keys := make([]merkle.Key, len(stored))
		for j, i := range stored {
			keys[j] = data[i].Key
		}
		if err := f.idx.Prefetch(keys, nil); err != nil {
			s.log.Debug("read records of a push", "share", f.cfg.Name, "err", err) // read one by one below
		}
	}
	for _, i := range stored {
		if env, ok, err := f.idx.Envelope(data[i].Key); err == nil && ok && env.Leaf() == data[i].Base {
			locals[i] = &env
		}
	}
	var checked []checkedRecord
	if len(batches) > 0 {
		checked = s.checkBatched(f, data, batches, locals) // batchsig.go
	} else {
		checked = s.checkRecords(f, data, locals)
	}
	for i, rd := range data {
		env, rec, err := checked[i].env, checked[i].rec, checked[i].err
		if errors.Is(err, errNoBase) {
			refetch = append(refetch, rd.Key)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: record of share %s: %v", ErrPeerMisbehaved, f.cfg.Name, err)
		}
		if env.Sealed() {
			continue // an encrypted-capability record; this engine only syncs readable shares
		}
		if f.cfg.Access != nil && !f.cfg.Access.MayWrite(s.id, rec) {
			continue // not written by a writer of the share: dropped (Access logs it)
		}
		content, err := s.e.codec.decodeContent(rd, rec)
		if err != nil {
			return nil, fmt.Errorf("%w: record of share %s: %v", ErrPeerMisbehaved, f.cfg.Name, err)
		}
		s.countIn(len(content))
		f.act.recv.Add(int64(len(content)))
		f.hist.put(env)
		batch = append(batch, incoming{env: env, rec: rec, from: s.id, content: content})
	}
	if len(refetch) > 0 {
		// A delta against an envelope we no longer hold: ask in full.
		if err := s.fetchRecords(ctx, f, refetch, make([]merkle.Leaf, len(refetch))); err != nil {
			return nil, err
		}
	}
	return batch, nil
}

// checkedRecord is one received record decoded and its signature checked.
type checkedRecord struct {
	env record.Envelope
	rec record.Record
	err error // errNoBase: a delta against an envelope no longer held
}

// checkRecords decodes records and verifies their signatures (the costly
// part of taking a push: an Ed25519 verification each) on every core, in
// place; the caller goes on in the order they came.
func (s *Session) checkRecords(f *folder, data []wire.RecordData, locals []*record.Envelope) []checkedRecord {
	out := make([]checkedRecord, len(data))
	onCores(len(data), func(i int) {
		env, err := s.e.codec.decodeRecord(data[i], locals[i])
		if err != nil {
			out[i].err = err
			return
		}
		rec, err := f.idx.Check(env) // and Commit need not verify it again
		out[i] = checkedRecord{env: env, rec: rec, err: err}
	})
	return out
}

// onCores calls fn for 0..n-1, on several cores when there are enough.
func onCores(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/recordsPerChecker)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg gosync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// recordsPerChecker: a batch is checked on several cores only when each
// gets at least this many records (fewer are not worth a goroutine).
const recordsPerChecker = 32

// HandleMessage takes one-way messages: root announcements and pushes. It
// never waits on the peer: pushes go to the session's goroutine.
func (s *Session) HandleMessage(ctx context.Context, m wire.Message) error {
	switch m := m.(type) {
	case *wire.ShareState:
		f := s.e.folder(m.Share)
		// The state is kept for a share not running here (paused, or not
		// started yet: AddShare then reconciles at once instead of waiting
		// for the peer's root to move) and for a peer not yet a member
		// (SetMembers reconciles when it becomes one).
		s.mu.Lock()
		if f != nil || len(s.mu.remote) < maxRemoteShares {
			s.mu.remote[m.Share] = *m
		}
		delete(s.mu.pushedAt, m.Share)
		s.mu.Unlock()
		if f == nil || !f.isMember(s.id) {
			return nil
		}
		f.heardRoot(s.id, m.Root)
		if s.rootsAgree(f) {
			f.senderMovedOn(s.id)
		}
		s.maybeWant(f)
	case *wire.Have:
		s.putHave(m)
	case *wire.RecordPush:
		n, c := pushSize(m), freshSize(m)
		queued := false
		fresh := s.pushFresh.Add(c)
		if s.pushBytes.Add(n) <= pushQueueBytes && (c == 0 || fresh == c || fresh <= pushQueueFresh) {
			s.mu.Lock()
			s.mu.received[m.Share]++ // before takePush can count it out
			s.mu.Unlock()
			select {
			case s.pushes <- inPush{m: m, size: n, fresh: c}:
				queued = true
			default:
				s.mu.Lock()
				if s.mu.received[m.Share]--; s.mu.received[m.Share] <= 0 {
					delete(s.mu.received, m.Share)
				}
				s.mu.Unlock()
			}
		}
		if !queued {
			s.pushBytes.Add(-n)
			s.pushFresh.Add(-c)
			// Too far behind: a reconcile of the share catches up instead.
			s.mu.Lock()
			s.mu.want[m.Share] = true
			delete(s.mu.synced, m.Share)
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// pushSize is what a queued push holds in memory, about.
func pushSize(m *wire.RecordPush) int64 {
	n := int64(0)
	for _, rd := range m.Records {
		n += int64(len(rd.Data)+len(rd.Content)) + 128
	}
	return n
}

// freshSize is the part of pushSize that is not record deltas: whole
// records and inline content, which a peer pushes for files new here.
func freshSize(m *wire.RecordPush) int64 {
	n := int64(0)
	for _, rd := range m.Records {
		n += int64(len(rd.Content))
		if rd.Encoding != wire.RecordZstdDict {
			n += int64(len(rd.Data)) + 128
		}
	}
	return n
}

// inPush is a push waiting for the session's goroutine, with the sizes
// it was counted in at (pushSize, freshSize).
type inPush struct {
	m           *wire.RecordPush
	size, fresh int64
}

// takePush verifies pushed records and hands them to the puller.
func (s *Session) takePush(ctx context.Context, p inPush) {
	m := p.m
	s.pushBytes.Add(-p.size)
	s.pushFresh.Add(-p.fresh)
	f := s.e.folder(m.Share)
	defer func() {
		s.mu.Lock()
		if s.mu.received[m.Share]--; s.mu.received[m.Share] <= 0 {
			delete(s.mu.received, m.Share)
		}
		s.mu.Unlock()
		if f != nil {
			f.announceIfDonePulling()
		}
	}()
	if f == nil || !f.isMember(s.id) {
		return
	}
	batch, err := s.decodeRecords(ctx, f, m.Records, m.Batches)
	if err != nil {
		s.kill(err)
		return
	}
	if err := f.deliver(ctx, batch); err != nil {
		s.log.Debug("deliver pushed records", "err", err)
	}
}

// HandleRequest answers the peer's questions about shares it is a member
// of. It is safe to call from many goroutines at once.
func (s *Session) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	return s.answer(ctx, m), nil
}

func (s *Session) answer(ctx context.Context, m wire.Message) wire.Message {
	switch m := m.(type) {
	case *wire.NodesRequest:
		f, refuse := s.memberFolder(m.Share)
		if refuse != nil {
			return refuse
		}
		// A walk reads one version of the tree: the one it names, kept for
		// it, else the tree as it is now; if the named one is gone, the
		// answer says so and names the version to walk instead.
		v, release, err := f.idx.WalkView(m.Root)
		if err != nil {
			return wire.Errorf(wire.CodeInternal, "nodes of share %s: %v", f.cfg.Name, err)
		}
		defer release()
		if m.Root != (merkle.Hash{}) && v.Root != m.Root {
			return &wire.NodesResponse{Root: v.Root}
		}
		nodes, err := v.Nodes(ctx, m.Prefixes)
		if err != nil {
			return wire.Errorf(wire.CodeBadRequest, "nodes of share %s: %v", f.cfg.Name, err)
		}
		return &wire.NodesResponse{Nodes: nodes, Root: v.Root}
	case *wire.RecordsRequest:
		f, refuse := s.memberFolder(m.Share)
		if refuse != nil {
			return refuse
		}
		if m.ContentOnly {
			return s.answerContent(f, m.Keys)
		}
		out := make([]wire.RecordData, 0, len(m.Keys))
		var envs []record.Envelope // per out, with trimmed records (batchsig.go)
		trim := s.speaksBatchSig()
		p := s.packing()
		inline := f.newInliner(p, responseInline)
		for i, k := range m.Keys {
			env, ok, err := f.idx.Envelope(k)
			if err != nil || !ok {
				continue
			}
			var base *record.Envelope
			hasNothing := i < len(m.Have) && m.Have[i] == (merkle.Leaf{})
			// Asking for the very record it holds, the peer asks for the
			// file's content (askContent: a push brought the record
			// without it): the record goes whole as a delta against
			// itself, a few bytes, instead of again in full.
			holdsIt := i < len(m.Have) && m.Have[i] == env.Leaf()
			switch {
			case holdsIt:
				base = &env
			case !hasNothing && i < len(m.Have):
				base = f.hist.find(m.Have[i])
			}
			var rd wire.RecordData
			if trim && !holdsIt {
				rd, _ = s.e.codec.encodeTrimmedFor(env, base, p)
				envs = append(envs, env)
			} else {
				rd = s.e.codec.encodeRecordFor(env, base, p)
				if trim {
					envs = append(envs, record.Envelope{}) // whole: in no batch
				}
			}
			if hasNothing || holdsIt {
				if rec, err := env.Record(); err == nil {
					inline.add(&rd, env, rec)
				}
			}
			out = append(out, rd)
		}
		out, batches, err := batchUp(out, envs)
		if err != nil {
			return wire.Errorf(wire.CodeInternal, "records of share %s: %v", f.cfg.Name, err)
		}
		return &wire.RecordsResponse{Records: out, Batches: batches}
	case *wire.BlockRequest:
		f, refuse := s.memberFolder(m.Share)
		if refuse != nil {
			return refuse
		}
		// From f's files and temps only: the peer may be a member of no
		// other share here, and a block's hash is no proof of holding it.
		buf, put := s.e.codec.blockBuf(m.Size)
		data, ok := f.readSharedInto(m.Hash, m.Size, buf)
		if !ok {
			put()
			return wire.Errorf(wire.CodeNotFound, "block %s", block.Hash(m.Hash).Short())
		}
		if err := f.waitSend(ctx, len(data)); err != nil {
			put()
			return wire.Errorf(wire.CodeNotFound, "block %s: %v", block.Hash(m.Hash).Short(), err)
		}
		f.act.sent.Add(int64(len(data)))
		resp, err := s.e.codec.encodeBlock(data, m.Signature, s.packing())
		if err != nil {
			put()
			return wire.Errorf(wire.CodeBadRequest, "block %s: %v", block.Hash(m.Hash).Short(), err)
		}
		if resp.Encoding == wire.BlockRaw {
			resp.OnWritten(put) // resp.Data may be buf: it goes back once sent
		} else {
			put() // encoded into a buffer of its own
		}
		return resp
	case *wire.PatchRequest:
		return s.servePatch(ctx, m)
	case *wire.ReflateRequest:
		return s.serveReflate(ctx, m)
	case *wire.MulticastWant:
		return s.multicastWant(ctx, m)
	case *wire.MulticastReady:
		return s.multicastReady(ctx, m)
	case *wire.MulticastReport:
		return s.multicastReport(m)
	}
	return wire.Errorf(wire.CodeUnsupported, "unexpected %s", wire.Name(m))
}

// packing is how payloads to this peer are compressed: into the
// connection's stream, else each in a frame of its own, except to a peer on
// this machine.
func (s *Session) packing() packing {
	switch {
	case s.streamBlocks.Load():
		return packStream
	case s.stream.Load():
		return packStreamMeta
	case s.squeeze.Load():
		return packFrames
	}
	return packRaw
}

// pushPacking is how records pushed to all of peers at once are
// compressed: raw into the streams when every one of them compresses its
// stream, else each in a frame of its own.
func pushPacking(peers []*Session) packing {
	for _, s := range peers {
		if !s.stream.Load() {
			return packFrames
		}
	}
	return packStreamMeta
}

// memberFolder returns the share if the peer may see it, else a refusal
// that does not reveal whether the share exists.
func (s *Session) memberFolder(id share.ID) (*folder, wire.Message) {
	f := s.e.folder(id)
	if f == nil || !f.isMember(s.id) {
		return nil, wire.Errorf(wire.CodeRefused, "not a member of share %s", id.Short())
	}
	return f, nil
}

// rootPair is both sides' roots of a share at one moment: a reconcile that
// ended at a pair need not run again until one side moves.
type rootPair struct{ local, remote merkle.Hash }

// remoteTree asks the peer for Merkle nodes: the remote side of merkle.Diff.
// It reads one version of the peer's tree: the first answer names it (root),
// and every later request asks for that one. A peer of wire version 1 names
// none; it is then read as it is at each request.
type remoteTree struct {
	s     *Session
	share share.ID
	root  merkle.Hash // the version walked; zero until the first answer
}

// rootMovedError: the peer no longer holds the version of its tree a walk
// was reading. The walk starts again from the version it names.
type rootMovedError struct{ from, to merkle.Hash }

func (e *rootMovedError) Error() string {
	return fmt.Sprintf("peer's tree moved from root %x to %x during the walk", e.from[:4], e.to[:4])
}

func (r *remoteTree) Nodes(ctx context.Context, prefixes []merkle.Prefix) ([]merkle.Node, error) {
	out := make([]merkle.Node, 0, len(prefixes))
	for len(prefixes) > 0 {
		n := min(len(prefixes), maxPrefixesPerAsk)
		req := &wire.NodesRequest{Share: r.share, Prefixes: prefixes[:n], Root: r.root}
		resp, err := r.s.conn().Request(ctx, req)
		if err != nil {
			return nil, err
		}
		nr, ok := resp.(*wire.NodesResponse)
		if !ok {
			return nil, fmt.Errorf("ask for tree nodes: %s", describe(resp))
		}
		if nr.Moved(req) {
			return nil, &rootMovedError{from: r.root, to: nr.Root}
		}
		if nr.Root != (merkle.Hash{}) {
			for i := range nr.Nodes {
				if nr.Nodes[i].Prefix.Len == 0 && nr.Nodes[i].Hash != nr.Root {
					return nil, fmt.Errorf("root node %x of a tree said to be %x: %w", nr.Nodes[i].Hash[:4], nr.Root[:4], merkle.ErrBadNode)
				}
			}
			r.root = nr.Root
		}
		out = append(out, nr.Nodes...)
		prefixes = prefixes[n:]
	}
	return out, nil
}

func describe(m wire.Message) string {
	if e, ok := m.(*wire.ErrorResponse); ok {
		return fmt.Sprintf("peer answered %v: %s", e.Code, e.Message)
	}
	return "peer answered " + wire.Name(m)
}

// connBox holds a session's connection in an atomic pointer.
type connBox struct{ c Conn }

// conn is the session's connection, or nil while Serve has not started: a
// request may come before it (TestRequestBeforeServe), and then answers
// as to a peer whose capabilities are not known yet.
func (s *Session) conn() Conn {
	if b := s.cv.Load(); b != nil {
		return b.c
	}
	return nil
}
