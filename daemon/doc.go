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
// # Control API
//
// HTTP on the Unix socket control.sock (mode 0600, in a home of mode 0700):
// nothing on it is reachable from the network. JSON in and out. Handler is
// the whole API (docs/api.md lists every endpoint): status, reload, the
// event stream, needed files, pause and resume, rates, versions and
// conflicts, one file per concern (api_*.go), each handler thin: the work
// is the engine's (sync/engine, sync/apply) or config.toml's. The web UI
// mounts the same Handler on its loopback listener behind its own
// authentication. Client is the Go client; the command line uses it.
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
// # Concurrency
//
// One daemon per home: Open takes an exclusive lock on daemon.lock and a
// second Open fails with ErrRunning. Config edits, by the CLI or the
// daemon, go through EditConfig, which holds config.lock while it loads,
// changes and saves. Daemon.Run owns every goroutine the daemon starts and
// returns after all have stopped; Daemon.mu guards the configuration and
// the running shares; the peer manager guards its own connections.
package daemon
