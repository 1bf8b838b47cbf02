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
	DHT     *DHTStatus    `json:"dht,omitempty"` // nil when the DHT is off
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

// Event is one line of GET /v1/events.
type Event struct {
	Type   string    `json:"type"` // "status"
	Time   time.Time `json:"time"`
	Status *Status   `json:"status,omitempty"`
}
