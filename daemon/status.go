package daemon

import "time"

// Status is GET /v1/status: what `blueshift status --json` prints.
type Status struct {
	Device  string        `json:"device"`
	Name    string        `json:"name"`
	Listen  string        `json:"listen"` // the real address, port resolved
	Started time.Time     `json:"started"`
	Shares  []ShareStatus `json:"shares"`
	Peers   []PeerStatus  `json:"peers"`
	Refused []Refused     `json:"refused"`
	// Paused: every share is paused (blueshift pause); each share's own
	// Paused says whether it stays paused after a resume of the device.
	Paused      bool  `json:"paused"`
	MaxSendRate int64 `json:"max_send_rate"` // bytes per second, all peers together; 0: no limit
	MaxRecvRate int64 `json:"max_recv_rate"`
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
