package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/multicast"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// Sentinel errors.
var (
	// ErrUnknownShare: a request or call named a share this device does not sync.
	ErrUnknownShare = errors.New("unknown share")
	// ErrPeerMisbehaved: a peer sent data that does not verify; it is cut off.
	ErrPeerMisbehaved = errors.New("peer misbehaved")
	// ErrStopped: the engine's Run has ended (the daemon is stopping); it
	// starts nothing more.
	ErrStopped = errors.New("sync engine stopped")
)

// Conn is what the engine needs of a connection to a peer: an
// authenticated, multiplexed message stream (*conn.Conn is one).
type Conn interface {
	Remote() identity.DeviceID
	Request(ctx context.Context, m wire.Message) (wire.Message, error)
	Send(ctx context.Context, m wire.Message) error
	Close() error
}

// Options configure an Engine.
type Options struct {
	DB     *index.DB
	Self   identity.DeviceID
	Logger *slog.Logger     // nil: discard
	Clock  func() time.Time // nil: time.Now
	// Parallel is the number of blocks fetched at once per file; 0: 16.
	Parallel int
	// OnEvent, if set, is told of every file a peer's record changed here
	// (activity.go); it is called from a share's puller and must not block.
	OnEvent func(Event)
	// DeviceName, if set, names a device (by its short ID in records) in
	// conflict copies; it returns "" for a device it does not know, which is
	// then named by its short ID.
	DeviceName func(record.Device) string
	// RetryEvery is how often records that could not be applied (a block no
	// connected peer had) are tried again; 0: 30 s.
	RetryEvery time.Duration
	// Multicast, if set, is the LAN multicast group blocks may travel by
	// (multicast.go); the caller runs it. Nil: unicast only.
	Multicast *multicast.Group
	// MulticastRate caps the bytes per second sent to the group; 0:
	// DefaultMulticastRate.
	MulticastRate int64
	// PatchOnThisMachine asks patches (patch.go) of peers on this machine
	// too; else only of peers elsewhere, for loopback outruns their zstd.
	PatchOnThisMachine bool
}

// ShareConfig is one share as the engine runs it.
type ShareConfig struct {
	Key           share.Key
	Name          string
	Path          string
	Members       []identity.DeviceID // devices this share is synced with
	Access        Access              // nil: every record the share key signed is taken
	VersionsKeep  int
	VersionsDays  int
	VersionsMaxMB int   // cap of the versions folder; 0: none
	MaxSendRate   int64 // bytes per second of this share's blocks; 0: no limit
	MaxRecvRate   int64
	// ChunkKey, if set, is asked before each scan for the key of the
	// chunker's gear table (nil: the unkeyed table): the daemon keys the
	// chunks of shares with encrypted members (sync/vault).
	ChunkKey    func() *[32]byte
	NoMulticast bool // this share's blocks never travel by LAN multicast
	// Watching, if set, is closed once the caller watches the folder for
	// changes (its watcher's first batch): the first scan reads the index
	// meanwhile and walks the folder after (index.ScanOptions.WalkAfter).
	Watching <-chan struct{}
}

// Engine is one device's sync engine. Run must be running for shares to
// sync; see the package doc.
type Engine struct {
	db    *index.DB
	self  identity.DeviceID
	log   *slog.Logger
	clock func() time.Time
	opts  Options
	mc    *mcast // LAN multicast (multicast.go); nil: off
	codec *codec
	temps *inflight // blocks of pulls under way, served to peers
	rates deviceRates
	batch batchPeers // which peers read batched envelopes (batchsig.go)
	// vaults holds the block source of each (share, encrypted member)
	// whose records Offer took (vault.go); a sync.Map, for getBlock reads it.
	vaults gosync.Map
	// helpers holds each share's extra block sources (SetHelpers), by
	// share.ID: a []BlockSource.
	helpers gosync.Map

	wake chan struct{} // cap 1: AddShare -> Run, a puller waits in mu.starting

	// walkRetryMax is the longest pause before a reconcile that failed or
	// was put off is tried again: retryMax (tests lengthen it to show that
	// what should bring the walk sooner does).
	walkRetryMax time.Duration

	mu struct {
		gosync.Mutex
		folders  map[share.ID]*folder           // guarded by mu
		sessions map[identity.DeviceID]*Session // guarded by mu
		// starting holds the folders added whose puller Run has not started
		// yet; once stopped is set (Run is ending), no folder is added, so a
		// folder's stop never waits on a puller nobody will start.
		starting []*folder // guarded by mu
		stopped  bool      // guarded by mu
	}
}

// New returns an engine; call Run to start it, AddShare to give it work.
func New(opts Options) (*Engine, error) {
	if opts.DB == nil {
		return nil, errors.New("engine: no index")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 16
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 30 * time.Second
	}
	c, err := newCodec()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		db: opts.DB, self: opts.Self, log: opts.Logger, clock: opts.Clock, opts: opts, codec: c,
		temps:        newInflight(),
		wake:         make(chan struct{}, 1),
		walkRetryMax: retryMax,
	}
	e.mu.folders = make(map[share.ID]*folder)
	e.mu.sessions = make(map[identity.DeviceID]*Session)
	if opts.Multicast != nil {
		e.mc = newMcast(e, opts.Multicast, opts.MulticastRate)
	}
	return e, nil
}

// Run runs the shares' pullers until ctx is done, then waits for every
// goroutine the engine started. Once it returns (or while it is ending),
// AddShare fails with ErrStopped.
func (e *Engine) Run(ctx context.Context) error {
	var wg gosync.WaitGroup
	defer e.codec.Close()
	defer func() {
		for _, f := range e.folders() {
			f.root.Close() // its puller has stopped: wg.Wait ran first
		}
	}()
	defer wg.Wait()
	if e.mc != nil {
		wg.Go(func() { e.mc.run(ctx) })
	}
	for {
		e.startPullers(ctx, &wg)
		select {
		case <-ctx.Done():
			e.mu.Lock()
			e.mu.stopped = true
			never := e.mu.starting
			e.mu.starting = nil
			e.mu.Unlock()
			for _, f := range never {
				close(f.done) // its puller never ran: nothing to wait for
			}
			return nil
		case <-e.wake:
		}
	}
}

// startPullers starts the pullers of the folders added since the last call.
func (e *Engine) startPullers(ctx context.Context, wg *gosync.WaitGroup) {
	e.mu.Lock()
	start := e.mu.starting
	e.mu.starting = nil
	e.mu.Unlock()
	for _, f := range start {
		wg.Go(func() { f.run(ctx) })
	}
}

// AddShare starts syncing a share. Its folder must exist. It never waits on
// a peer: connected members hear of the share through their sessions'
// queues. Once Run has ended it fails with ErrStopped.
func (e *Engine) AddShare(cfg ShareConfig) error {
	id := cfg.Key.ID()
	e.mu.Lock()
	_, dup := e.mu.folders[id]
	stopped := e.mu.stopped
	e.mu.Unlock()
	switch {
	case stopped:
		return fmt.Errorf("add share %s: %w", id, ErrStopped)
	case dup:
		return fmt.Errorf("add share %s: already syncing", id)
	}
	idx, err := e.db.Share(cfg.Key, cfg.Path, e.self.Short())
	if err != nil {
		return fmt.Errorf("add share %s at %s: %w", id, cfg.Path, err)
	}
	var f *folder // set below, before anything is pulled into root
	root, err := apply.Open(cfg.Path, apply.Options{
		VersionsKeep: cfg.VersionsKeep, VersionsDays: cfg.VersionsDays, Clock: e.clock,
		VersionsMaxBytes: int64(cfg.VersionsMaxMB) << 20,
		Logger:           e.log.With("share", cfg.Name),
		MayMakeDir:       func(p record.Path) error { return f.mayMakeDir(p) },
		DirMade:          func(p record.Path) { f.dirMade(p) },
	})
	if err != nil {
		return fmt.Errorf("add share %s at %s: %w", id, cfg.Path, err)
	}
	f = newFolder(e, cfg, idx, root)
	e.mu.Lock()
	_, dup = e.mu.folders[id]
	if e.mu.stopped || dup {
		stopped := e.mu.stopped
		e.mu.Unlock()
		root.Close()
		if stopped {
			return fmt.Errorf("add share %s: %w", id, ErrStopped)
		}
		return fmt.Errorf("add share %s: already syncing", id)
	}
	e.mu.folders[id] = f
	e.mu.starting = append(e.mu.starting, f)
	sessions := e.sessionsLocked()
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	for _, s := range sessions {
		if f.isMember(s.id) {
			s.announce(f)
			s.maybeWant(f) // the peer may have announced its root while the share was not running
		}
	}
	return nil
}

// RemoveShare stops syncing a share; its files stay where they are.
func (e *Engine) RemoveShare(id share.ID) error {
	e.mu.Lock()
	f, ok := e.mu.folders[id]
	delete(e.mu.folders, id)
	unstarted := false
	if i := slices.Index(e.mu.starting, f); ok && i >= 0 {
		e.mu.starting = slices.Delete(e.mu.starting, i, i+1)
		unstarted = true
	}
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("remove share %s: %w", id, ErrUnknownShare)
	}
	if unstarted {
		close(f.done) // Run never started its puller, and now never will
	}
	f.stop()
	return nil
}

// SetMembers changes who a share is synced with (pairing while running).
func (e *Engine) SetMembers(id share.ID, members []identity.DeviceID) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("set members of share %s: %w", id, ErrUnknownShare)
	}
	f.setMembers(members)
	for _, s := range e.sessions() {
		if f.isMember(s.id) {
			s.announce(f)
			s.maybeWant(f) // a new member's root may have come before it was one
		}
	}
	return nil
}

// Reconsider has share id walk again the trees of its connected members
// whose roots differ from its own, even a pair of roots it walked before:
// what its Access lets in may have changed (a member added, a mount taken
// back), and records it refused then may be taken now. The daemon calls it
// when the share's membership log changes.
func (e *Engine) Reconsider(id share.ID) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("reconsider share %s: %w", id, ErrUnknownShare)
	}
	for _, s := range e.sessions() {
		if f.isMember(s.id) {
			s.mu.Lock()
			delete(s.mu.synced, id)
			s.mu.Unlock()
			s.maybeWant(f)
		}
	}
	return nil
}

// Rescan asks a share to look at paths (share-relative, slash-separated; a
// directory means its subtree), or at everything when full is set.
func (e *Engine) Rescan(id share.ID, paths []string, full bool) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("rescan share %s: %w", id, ErrUnknownShare)
	}
	f.requestScan(paths, full)
	return nil
}

// NewSession prepares the protocol with peer id; see Session.
func (e *Engine) NewSession(id identity.DeviceID) *Session { return newSession(e, id) }

// Serve runs the sync protocol on the opened connection c until ctx is
// done or the connection ends (cancel ctx when it does). A newer session
// with the same peer replaces this one.
func (s *Session) Serve(ctx context.Context, c Conn) error {
	if c.Remote() != s.id {
		return fmt.Errorf("serve peer %s: connection is to %s", peerName(s.id), peerName(c.Remote()))
	}
	s.cv.Store(&connBox{c})
	s.squeeze.Store(!onThisMachine(c))
	if z, ok := c.(interface{ Compresses() bool }); ok {
		s.stream.Store(z.Compresses())
	}
	if z, ok := c.(interface{ CompressesBlocks() bool }); ok {
		s.streamBlocks.Store(z.CompressesBlocks())
	}
	e := s.e
	e.mu.Lock()
	if old, ok := e.mu.sessions[s.id]; ok {
		old.superseded()
	}
	e.mu.sessions[s.id] = s
	e.mu.Unlock()
	e.noteBatchSig(s)
	defer func() {
		e.mu.Lock()
		if e.mu.sessions[s.id] == s {
			delete(e.mu.sessions, s.id)
		}
		e.mu.Unlock()
	}()
	return s.run(ctx)
}

func (e *Engine) folder(id share.ID) *folder {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.folders[id]
}

func (e *Engine) folders() []*folder {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*folder, 0, len(e.mu.folders))
	for _, f := range e.mu.folders {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *folder) int { return bytes.Compare(a.id[:], b.id[:]) })
	return out
}

func (e *Engine) sessions() []*Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sessionsLocked()
}

func (e *Engine) sessionsLocked() []*Session {
	out := make([]*Session, 0, len(e.mu.sessions))
	for _, s := range e.mu.sessions {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Session) int { return bytes.Compare(a.id[:], b.id[:]) })
	return out
}

// onThisMachine reports whether c leads to a loopback address: there the
// link is faster than zstd, so compressing blocks could only cost time.
func onThisMachine(c Conn) bool {
	a, ok := c.(interface{ RemoteAddr() net.Addr })
	if !ok || a.RemoteAddr() == nil {
		return false
	}
	switch addr := a.RemoteAddr().(type) {
	case *net.TCPAddr:
		return addr.IP.IsLoopback()
	case *net.UDPAddr: // QUIC
		return addr.IP.IsLoopback()
	}
	return false
}
