package wire

import (
	"errors"
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// MulticastCapability in a Hello says the device speaks the multicast
// messages (version 5): it sends blocks to a LAN multicast group and takes
// them from one (peer/multicast). Multicast messages go only to a device
// whose Hello has it, so older peers never see one.
const MulticastCapability = "mcast1"

// Sizes of a multicast session's ID and key (peer/multicast).
const (
	MulticastSessionSize = 8
	MulticastKeySize     = 32
	maxWantPath          = 4096 // bytes of MulticastWant.Path
)

// MulticastWant asks a device that holds a file to send it to the LAN
// group; the asker pulls it and takes multicast. File is the file's
// content hash, Blocks its block count, Path where the sender finds it
// (its record must have that content). Answered by MulticastOffer.
type MulticastWant struct {
	Share  share.ID
	File   block.Hash
	Blocks uint32
	Path   string
}

// MulticastOffer answers MulticastWant: the session and its key (sent only
// over the TLS connection), or Session zero: no multicast, pull by unicast.
type MulticastOffer struct {
	Session [MulticastSessionSize]byte
	Key     [MulticastKeySize]byte
}

// MulticastReady says which families (4, 6) the session's probe arrived
// on. Answered by MulticastStart.
type MulticastReady struct {
	Session  [MulticastSessionSize]byte
	Families []uint32
}

// MulticastStart answers MulticastReady: the family (4 or 6) the data goes
// out on, or 0: the session is off, pull by unicast.
type MulticastStart struct{ Family uint32 }

// MulticastReport tells the sender the loss a receiver saw since its last
// report, in parts per million of Datagrams; Leave: it pulls by unicast
// now. Answered by MulticastStatus.
type MulticastReport struct {
	Session   [MulticastSessionSize]byte
	LossPPM   uint32
	Datagrams uint64
	Leave     bool
}

// MulticastStatus answers MulticastReport: Done, the sender sent all it
// will.
type MulticastStatus struct{ Done bool }

func (m *MulticastWant) validate() error {
	if m.Blocks == 0 || m.Blocks > MaxHaveBlocks {
		return fmt.Errorf("multicast want: %d blocks (limit %d)", m.Blocks, MaxHaveBlocks)
	}
	if len(m.Path) > maxWantPath {
		return fmt.Errorf("multicast want: path of %d bytes (limit %d)", len(m.Path), maxWantPath)
	}
	return nil
}

func (m *MulticastReady) validate() error {
	if len(m.Families) > 2 {
		return fmt.Errorf("multicast ready: %d families", len(m.Families))
	}
	return nil
}

func (m *MulticastReport) validate() error {
	if m.LossPPM > 1e6 {
		return fmt.Errorf("multicast report: loss of %d ppm", m.LossPPM)
	}
	return nil
}

func (*MulticastOffer) validate() error  { return nil }
func (*MulticastStart) validate() error  { return nil }
func (*MulticastStatus) validate() error { return nil }

func (m *MulticastWant) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_MulticastWant{MulticastWant: &wirepb.MulticastWant{Share: m.Share[:], File: m.File[:], Blocks: m.Blocks, Path: m.Path}}
}

func (m *MulticastOffer) toPB(e *wirepb.Envelope) {
	p := &wirepb.MulticastOffer{}
	if m.Session != ([MulticastSessionSize]byte{}) {
		p.Session, p.Key = m.Session[:], m.Key[:]
	}
	e.Body = &wirepb.Envelope_MulticastOffer{MulticastOffer: p}
}

func (m *MulticastReady) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_MulticastReady{MulticastReady: &wirepb.MulticastReady{Session: m.Session[:], Families: m.Families}}
}

func (m *MulticastStart) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_MulticastStart{MulticastStart: &wirepb.MulticastStart{Family: m.Family}}
}

func (m *MulticastReport) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_MulticastReport{MulticastReport: &wirepb.MulticastReport{Session: m.Session[:], LossPpm: m.LossPPM, Datagrams: m.Datagrams, Leave: m.Leave}}
}

func (m *MulticastStatus) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_MulticastStatus{MulticastStatus: &wirepb.MulticastStatus{Done: m.Done}}
}

func multicastWantFromPB(p *wirepb.MulticastWant) (*MulticastWant, error) {
	m := &MulticastWant{Blocks: p.GetBlocks(), Path: p.GetPath()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("multicast want: %w", err)
	}
	if err := fixed("file", m.File[:], p.GetFile()); err != nil {
		return nil, fmt.Errorf("multicast want: %w", err)
	}
	return m, nil
}

func multicastOfferFromPB(p *wirepb.MulticastOffer) (*MulticastOffer, error) {
	m := &MulticastOffer{}
	if len(p.GetSession()) == 0 && len(p.GetKey()) == 0 {
		return m, nil
	}
	if err := fixed("session", m.Session[:], p.GetSession()); err != nil {
		return nil, fmt.Errorf("multicast offer: %w", err)
	}
	if err := fixed("key", m.Key[:], p.GetKey()); err != nil {
		return nil, fmt.Errorf("multicast offer: %w", err)
	}
	if m.Session == ([MulticastSessionSize]byte{}) {
		// Session zero means "no multicast" and is sent without a key: one
		// offer, one encoding.
		return nil, errors.New("multicast offer: a key with session zero")
	}
	return m, nil
}

func multicastReadyFromPB(p *wirepb.MulticastReady) (*MulticastReady, error) {
	m := &MulticastReady{Families: p.GetFamilies()}
	if err := fixed("session", m.Session[:], p.GetSession()); err != nil {
		return nil, fmt.Errorf("multicast ready: %w", err)
	}
	return m, nil
}

func multicastReportFromPB(p *wirepb.MulticastReport) (*MulticastReport, error) {
	m := &MulticastReport{LossPPM: p.GetLossPpm(), Datagrams: p.GetDatagrams(), Leave: p.GetLeave()}
	if err := fixed("session", m.Session[:], p.GetSession()); err != nil {
		return nil, fmt.Errorf("multicast report: %w", err)
	}
	return m, nil
}
