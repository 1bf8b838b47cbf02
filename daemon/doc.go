// Package daemon is the long-running Blueshift process of one device home,
// its local control API and the Go client of that API.
//
// # Nouns
//
// A home is a folder holding one device: device.key (peer/identity),
// config.toml (config), the index database (db/), the daemon's lock file
// (daemon.lock) and its control socket (control.sock). The Daemon wires the
// parts together: it loads the identity and configuration, opens the index,
// runs the sync engine (sync/engine), a filesystem watcher per share
// (watcher), the connection manager (peer: listens over TLS, dials every
// paired device with backoff, one connection per pair, each running an
// engine session), LAN discovery (peer/discovery) and the control API.
//
// # Addresses
//
// A peer is dialled at its configured addresses ([[peer]] addresses, from
// an invite link or `peer add --addr`) and at those LAN discovery heard it
// announce; a new announcement makes the manager dial at once. Discovery
// announces the listening port ("0.0.0.0:PORT": the receiver uses the
// packet's source address) on every multicast interface but loopback, or
// on those [discovery] interfaces (or Options.DiscoveryInterfaces, `run
// --discovery-interfaces`) names: ["lo"] keeps it on this machine. It is
// off when [device] discovery is false, with Options.NoDiscovery (`run
// --no-discovery`), or when the daemon listens on loopback only and the
// chosen interfaces are not all loopback; it is set up when the daemon
// opens, so a change takes effect at the next start.
//
// LAN multicast of blocks (multicast.go) follows discovery: the group
// (peer/multicast) is opened on discovery's interfaces when discovery is
// on and neither [device] multicast = false nor Options.NoMulticast (`run
// --no-multicast`) turns it off, given to the engine, and offered in the
// Hello (wire.MulticastCapability); [[share]] multicast = false keeps one
// share's blocks off it. Status.Multicast is the engine's counters.
//
// Beyond the LAN (dht.go): the daemon is a mainline DHT node (peer/dht) on
// its own UDP port ([dht] listen, `run --dht-listen`; default the peer port
// + 1, any free port if taken or if the peer port is 0; the peer port's
// UDP is left to QUIC). It
// publishes where it listens, signed by its device key, at start, when its
// addresses change (checked every 5 s) and every 30 min, and looks up each
// paired device it has a public key of ([[peer]] public_key, learned from
// the "key=" capability of its Hello or from an introduction) and no
// direct connection to (one reached through a relay is looked up, so its
// dialer can replace the relayed connection): at once when the connection
// is lost, then with backoff
// from 2 s to 20 s; what it finds joins the manager's addresses and the
// device is dialled at once. Bootstrap: `run --bootstrap` (repeatable),
// else [dht] bootstrap, else the public routers unless the daemon listens
// on loopback only (then none); with Options.NoPublicDHT, Open fails
// rather than use the public routers (tests). Off with [dht] enabled =
// false or Options.NoDHT (`run --no-dht`). peerAddresses is the one place that
// merges the addresses of a device (LAN discovery, DHT).
//
// # Mesh
//
// mesh.go: on each connection to a device whose Hello has the "intro1"
// capability, for each share both are members of and we may write, we send
// an Introduction of the share's other members (device ID, public key, up
// to 4 addresses), signed by our device key and the share's key; again
// when the members change. The receiver keeps the members it did not know
// as introduced devices of that share when mayIntroduce allows it (the
// sender holds the share's write key and the share's signed membership log
// names it a current rw member; a share peer until this device has the
// log), leaving out those the log removed, and the manager dials them.
// known.go: introduced devices live in Pebble (index/known: ID, key, name,
// last addresses, introducer, time), never in config.toml; the
// configuration the daemon applies (d.config()) is config.toml's plus
// them, so dialling, accepting, the engine's members, status, the DHT
// lookups and introductions all see them; a log Remove forgets them. The
// current members only the share's log names join the union the same way
// (logOnly), unless the user dismissed them with `peer remove`
// (peer_remove.go: the introduction forgotten, the device marked in
// Pebble; an introduction brings it back). listening.go: each Hello
// carries "listen=IP:port" capabilities, and introductions pass on those
// at the IP the device was seen coming from.
// Relaying for others (relay.go) asks the logs alone: a device is served
// if the log of a share this device is a current member of names it a
// current member.
//
// # Encrypted members
//
// vault.go: a share whose key is at the encrypted level runs no engine
// folder and no watcher; its vault store (home/vault, sync/vault) keeps
// what writers push, sealed, and answers vault requests of current members
// (by the membership log). On each connection to a device whose Hello has
// "vault/1" and that the log names a current encrypted member of a share
// this device reads, every 2 s: a writer whose tree root moved pushes its
// records sealed under the current key epoch; any reader pulls the sealed
// records it lacks and hands them to the engine (engine.Offer). Once the
// log names an encrypted member, scans key the chunk boundaries (chunkKey).
// Epoch keys are never sealed to an encrypted member.
//
// # Control API
//
// HTTP on the Unix socket control.sock (mode 0600, in a home of mode 0700):
// nothing on it is reachable from the network. JSON in and out. Handler is
// the whole API (docs/api.md lists every endpoint, and a test holds the
// list and the mux together): status, reload, the event stream, needed
// files, pause and resume, rates, versions and conflicts, shares, peers,
// hooks, invitations and joins, sends and receives, members; one file per
// concern (api_*.go), each handler thin: the work is the engine's
// (sync/engine, sync/apply) or config.toml's. A verb that changes
// config.toml (AddShare, RemoveShare, AddPeer, AddHook, Invite, Join, ...)
// is one function on a home, which the handler calls on the daemon's home
// and then applies (Reload) before it answers; the command line calls it
// directly only when no daemon runs. The web UI mounts the same Handler
// on its loopback listener behind its own authentication, and calls it in
// process. Client is the Go client; the command line uses it.
//
//	GET  /v1/status  Status: the device, its real listen address, shares, peers, refused attempts
//	POST /v1/reload  re-read config.toml and apply it (shares, peers, invitations)
//	GET  /v1/events  newline-delimited JSON Events: a status snapshot on every change, at most every 250 ms
//	POST /v1/ui/login  a one-time link to the web UI (`blueshift ui`)
//
// # Web UI
//
// With Options.NewUI (package daemon/ui, wired by `blueshift run`) the
// daemon serves a web UI on loopback TCP (Options.UI, else [device] ui,
// else config.DefaultUI; "off": none). A busy port is logged as a warning
// and the daemon runs without it. Run owns its server and its sampler.
//
// What a user changes at run time through the API (pauses, rates) is
// written to config.toml, under config.lock, and applied at once: it
// survives a restart and can be read and edited there.
//
// The event stream (api_events.go) fans out the engine's per-file events
// (Options.OnEvent) and the share_in_sync and member_joined events that
// watchStates derives from status twice a second; a stream that does not
// keep up loses events, counted, and never holds up sync.
//
// # Invitations
//
// Invite makes a random token, stores its hash in the inviter's config
// ([[invite]]) and returns a Link carrying the inviter's device ID and
// addresses, the share's name and key at the granted level, the token and
// the expiry; `blueshift invite` has the daemon load it before it prints
// the link. Join writes the share, the inviter as a peer and the token (the
// share's pending join: join_from, join_token) into the joiner's config.
// The joiner's daemon presents a pending token in its Hello ("invite=<hex>"
// capability) to an inviter it is not connected to, and every pending
// token as a JoinRequest on each open connection to its inviter (join.go):
// so any number of shares between two devices can be joined, in any order.
// The inviter admits an unknown device only while some invitation is
// unexpired, and pairs it (peer, share member, config saved, engine told)
// only if the token is valid; else it closes the connection with a Close
// marked refused, telling it why, and the attempt shows in Status.Refused.
// The joiner saves the answer: accepted clears the pending join, refused
// keeps why (join_refused), which Status shows; `blueshift join` waits for
// the answer and fails with the inviter's reason.
//
// # Keyring
//
// A person's devices share a keyring (keyring.go): a normal share in the
// home's keyring folder whose files are sealed records of the person's
// other shares (index/keyring). `blueshift pair` invites to it with a pair
// link (bspair1-, which Join hands to joinPair); each device's keyring loop
// writes the records its shares lack, follows each record it lacks into
// [device] keyring_dir/<name> as a pending join to the record's writer
// (which admits a keyring member at its own level, handleJoin), and
// removes the devices it removed from the keyring from every share.
// `share remove` deletes the share's record (dropRecord); a device that
// followed the share from the keyring leaves it once the record file is
// gone (leaveDropped; its files stay).
//
// # Send swarm
//
// sendswarm.go: a one-off send's receiver asks the sender (Hello
// capability "swarm1") for a ticket, signed by the sender's device key,
// naming the receiver, the send's share, its expiry and block hashes, and
// for the sender's keyring devices that are members of a share holding
// those blocks. It dials each as a guest (peer.ErrGuest; capability
// "swarm-ticket"), shows the ticket, and the engine fetches blocks from
// them beside the sender (engine.SetHelpers). A helper serves exactly the
// ticket's blocks to the ticket's receiver until its expiry, from its
// shares whose membership names the signer, and only under a ticket of a
// current member of its own keyring; any other request of the guest is
// refused.
//
// # Sends across NATs
//
// sendrendezvous.go: a sender and a receiver behind NATs that share
// nothing meet at a rendezvous, a daemon run with Options.Rendezvous
// (Hello capability "rendezvous1"), on guest connections from their QUIC
// sockets (capability "rendezvous-guest"): the sender's RendezvousOffer,
// under the code's locator only, is a long poll answered with where the
// rendezvous sees each receiver that looked (RendezvousFind, answered
// with where it sees the sender); the sender punches towards it, the
// receiver dials the sender there, runs the code's PAKE, joins, and its
// daemon connects to that address from the same socket. The rendezvous
// forwards no data.
//
// senddht.go: with no rendezvous, the DHT is the meeting point. Both ends
// derive an Ed25519 key from the code's DHT name (locator and two
// password characters, never the whole code: docs/security.md); the
// sender publishes where its QUIC socket is reached under salt "send",
// the receiver looks it up and publishes its own under "recv", the sender
// punches towards that and the receiver dials. A receive looks on the
// LAN, at the rendezvous points given, then in the DHT.
//
// # Membership
//
// Each share's signed membership log (index/members) is run here
// (members.go): started by the device that made the share, extended when
// an invitation admits a device, relayed to every connected member that
// speaks it, and asked by the engine (shareAccess) of every record. A
// removal drops the device from the share's peers and deletes the links it
// joined with (and its introduced entries); the verbs `member list|remove|approve` and `share owners`
// are the control API's /v1/members endpoints. MembersOf gives other parts
// (the mesh) the devices a share's log names.
//
// # Concurrency
//
// One daemon per home: Open takes an exclusive lock on daemon.lock and a
// second Open fails with ErrRunning. Config edits, by the CLI or the
// daemon, go through EditConfig, which holds config.lock while it loads,
// changes and saves. Daemon.Run owns every goroutine the daemon starts and
// returns after all have stopped; Daemon.mu guards the configuration and
// the running shares; the peer manager guards its own connections.
package daemon
