package daemon

import (
	"time"

	"github.com/blueshift-sync/blueshift/daemon/hooks"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// Status is GET /v1/status: what `blueshift status --json` prints.
type Status struct {
	Device  string        `json:"device"`
	Name    string        `json:"name"`
	Listen  string        `json:"listen"` // the real address, port resolved
	Started time.Time     `json:"started"`
	Shares  []ShareStatus `json:"shares"`
	Peers   []PeerStatus  `json:"peers"`
	Refused []Refused     `json:"refused"`

	// QUIC is the UDP address of QUIC ("" when off); Reflexive lists this
	// device's addresses as peers see them over QUIC (its NAT's mappings).
	QUIC      string     `json:"quic,omitempty"`
	Reflexive []string   `json:"reflexive,omitempty"`
	DHT       *DHTStatus `json:"dht,omitempty"` // nil when the DHT is off
	// Relay is this device's relaying for others (nil when off).
	Relay *RelayStatus `json:"relay,omitempty"`
	// Hooks are the [[hook]] commands' runs, failures and dropped events.
	Hooks []hooks.Status `json:"hooks,omitempty"`
	// Paused: every share is paused (blueshift pause); each share's own
	// Paused says whether it stays paused after a resume of the device.
	Paused      bool  `json:"paused"`
	MaxSendRate int64 `json:"max_send_rate"` // bytes per second, all peers together; 0: no limit
	MaxRecvRate int64 `json:"max_recv_rate"`
	// Multicast counts LAN multicast and says which path recent pulls of
	// large files took (multicast.go).
	Multicast engine.MulticastStats `json:"multicast"`
	// Swarm counts blocks of sends served for and fetched from a person's
	// other devices (sendswarm.go).
	Swarm SwarmStats `json:"swarm"`
}

// ShareStatus is one share.
type ShareStatus struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Path      string   `json:"path"`
	Access    string   `json:"access"` // "read-write", "read-only", "encrypted"
	Running   bool     `json:"running"`
	InSync    bool     `json:"in_sync"`
	NeedItems int      `json:"need_items"`
	NeedBytes int64    `json:"need_bytes"`
	Records   uint64   `json:"records"`
	Conflicts int      `json:"conflicts"`
	Errors    []string `json:"errors"`
	Peers     []string `json:"peers"` // members connected now
	Members   []string `json:"members"`
	// Scanned is when the last scan of the folder ended (zero: the first
	// is under way); Reached lists the members whose last announcement,
	// connected now or not, had this device's current root: they hold
	// everything it holds (a one-off send ends on it).
	Scanned time.Time `json:"scanned"`
	Reached []string  `json:"reached,omitempty"`
	// Join is set while the share, joined through a link, waits for its
	// inviter's answer, or after the inviter refused it.
	Join *JoinStatus `json:"join,omitempty"`
	// DiskFull is set while a pull waits for space; its message is also
	// the first of Errors.
	DiskFull *DiskFull `json:"disk_full,omitempty"`

	Paused      bool    `json:"paused"`        // not syncing until resumed (the share, or the whole device)
	BytesIn     int64   `json:"bytes_in"`      // block and inline bytes received for this share since it started
	BytesOut    int64   `json:"bytes_out"`     // block bytes sent for it
	RateIn      float64 `json:"rate_in"`       // bytes per second received, over the last second or more
	RateOut     float64 `json:"rate_out"`      // bytes per second sent
	ETASeconds  float64 `json:"eta_seconds"`   // NeedBytes at RateIn; -1: unknown (nothing arriving), 0: nothing needed
	MaxSendRate int64   `json:"max_send_rate"` // this share's limit in bytes per second; 0: none
	MaxRecvRate int64   `json:"max_recv_rate"`
	// MembershipRefused lists membership changes (forks, wrong signers) and
	// records (by devices the log does not let write) refused lately, each
	// with the peer that sent it; `blueshift member list` shows more.
	MembershipRefused []string `json:"membership_refused,omitempty"`
	// LocalChanges is set on a share this device cannot sign that has
	// local edits: they stay local (`blueshift revert` puts the share's
	// version back).
	LocalChanges *LocalChanges `json:"local_changes,omitempty"`
	// Vault is, on an encrypted member of the share, what it keeps of it;
	// VaultPulls, on a reader, what it last took from each encrypted
	// member (vault.go).
	Vault      *VaultStatus `json:"vault,omitempty"`
	VaultPulls []VaultPull  `json:"vault_pulls,omitempty"`
}

// LocalChanges are a read-only member's edits, not shared.
type LocalChanges struct {
	Count int                 `json:"count"`
	Paths []index.LocalChange `json:"paths"` // the first index.MaxLocalChanges
}

// DiskFull says that a share's pull stopped because its disk is full. It
// resumes by itself once the file fits (free space is checked every
// second, a retry made at least every 15 s).
type DiskFull struct {
	Path      string    `json:"path"`       // share-relative path of the file that could not be written
	NeedBytes int64     `json:"need_bytes"` // bytes that file still needs on disk
	FreeBytes int64     `json:"free_bytes"` // bytes free on the share's file system, last checked; -1: unknown
	Since     time.Time `json:"since"`
}

// PeerStatus is one known or connected device.
type PeerStatus struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Connected bool       `json:"connected"`
	Address   string     `json:"address,omitempty"`
	Since     *time.Time `json:"since,omitempty"`
	BytesIn   int64      `json:"bytes_in"`  // bytes received on the connection (TLS), since it opened
	BytesOut  int64      `json:"bytes_out"` // bytes sent
	RateIn    float64    `json:"rate_in"`   // bytes per second received, over the last second or more
	RateOut   float64    `json:"rate_out"`  // bytes per second sent
	// How the connected peer is reached: Transport "quic", "tcp" or
	// "relay"; Reach "lan", "direct", "punched" (through NATs, introduced
	// by Via) or "relayed" (by Via, named ViaName); RTTMillis the
	// round-trip time (0: not measured yet), end to end when relayed.
	Transport string  `json:"transport,omitempty"`
	Reach     string  `json:"reach,omitempty"`
	Via       string  `json:"via,omitempty"`
	ViaName   string  `json:"via_name,omitempty"`
	RTTMillis float64 `json:"rtt_ms,omitempty"`
}

// RelayStatus is what this device relays for others: the circuits it
// splices now, the bytes it carried since it started, and its cap.
type RelayStatus struct {
	Circuits int   `json:"circuits"`
	Bytes    int64 `json:"bytes"`
	Rate     int64 `json:"rate"` // bytes per second, all circuits; 0: no cap
}

// Refused is a connection this daemon turned away.
type Refused struct {
	ID     string    `json:"id"`
	Addr   string    `json:"addr"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
}

// Event is one line of GET /v1/events: a status snapshot when anything
// in it changed, or one thing that happened (Type says which; docs/api.md
// lists the types and their fields).
type Event struct {
	Type      string    `json:"type"`
	Time      time.Time `json:"time"`
	Status    *Status   `json:"status,omitempty"`     // "status"
	Share     string    `json:"share,omitempty"`      // share ID
	ShareName string    `json:"share_name,omitempty"` // its name on this device
	Path      string    `json:"path,omitempty"`       // share-relative, slash-separated
	Copy      string    `json:"copy,omitempty"`       // "conflict": where the losing version went
	Peer      string    `json:"peer,omitempty"`       // device ID: who sent the change, or who joined
	PeerName  string    `json:"peer_name,omitempty"`
	Bytes     int64     `json:"bytes,omitempty"`
	Dropped   int64     `json:"dropped,omitempty"` // "dropped": events this stream missed (the reader was slow)
}

// Event types.
const (
	EventStatus       = "status"
	EventFileApplied  = "file_applied"
	EventFileDeleted  = "file_deleted"
	EventConflict     = "conflict"
	EventShareInSync  = "share_in_sync"
	EventMemberJoined = "member_joined"
	EventDropped      = "dropped"
)
