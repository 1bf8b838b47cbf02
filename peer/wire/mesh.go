package wire

import (
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// Limits of an introduction.
const (
	// MaxIntroduced is the most members one Introduction may list.
	MaxIntroduced = 64
	// MaxIntroAddrs is the most addresses it may give for one member: a
	// receiver dials no more than these.
	MaxIntroAddrs = 4
	maxIntroBody  = 64 << 10
	maxIntroAddr  = 64 // bytes of one address's text
	maxIntroName  = 64
)

// IntroductionContext is what an introduction's signatures cover before
// the body's bytes.
const IntroductionContext = "blueshift introduction v1\x00"

// Introduction tells a member of a share the other members the sender
// knows (protocol version 4, to devices whose Hello has the "intro1"
// capability). Body is an encoded IntroductionBody; both signatures cover
// IntroductionContext followed by Body: DeviceSig by DeviceKey, the
// introducer's device key, and WriterSig by the share's signing key. The
// answer is an IntroductionAck or an ErrorResponse.
type Introduction struct {
	Body      []byte
	DeviceKey [32]byte
	DeviceSig [64]byte
	WriterSig [64]byte
}

// IntroductionAck answers an Introduction that was read.
type IntroductionAck struct{}

// IntroductionBody is what an Introduction says.
type IntroductionBody struct {
	Share      share.ID
	Introducer [32]byte // device ID
	Issued     time.Time
	Members    []IntroducedMember
}

// IntroducedMember is one member of the share, as the introducer knows it.
type IntroducedMember struct {
	Device    [32]byte // device ID
	PublicKey []byte   // 32 bytes, or empty when the introducer does not know it
	Addresses []string // "IP:port", at most MaxIntroAddrs
	Name      string   // display only
}

// SignedBytes is what an introduction's signatures cover.
func (m *Introduction) SignedBytes() []byte {
	return append([]byte(IntroductionContext), m.Body...)
}

// EncodeIntroductionBody encodes b for Introduction.Body.
func EncodeIntroductionBody(b IntroductionBody) ([]byte, error) {
	p := &wirepb.IntroductionBody{Share: b.Share[:], Introducer: b.Introducer[:], IssuedUnix: b.Issued.Unix()}
	for _, m := range b.Members {
		p.Members = append(p.Members, &wirepb.IntroducedMember{
			Device: m.Device[:], PublicKey: m.PublicKey, Addresses: m.Addresses, Name: m.Name,
		})
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode introduction: %w", err)
	}
	if _, err := DecodeIntroductionBody(out); err != nil {
		return nil, fmt.Errorf("encode introduction: %w", err)
	}
	return out, nil
}

// DecodeIntroductionBody decodes and checks an introduction's body (outside
// input).
func DecodeIntroductionBody(b []byte) (IntroductionBody, error) {
	var out IntroductionBody
	if len(b) > maxIntroBody {
		return out, fmt.Errorf("introduction of %d bytes, at most %d", len(b), maxIntroBody)
	}
	fields := 0 // bounds the work before protobuf allocates
	if err := walkFields(b, (&wirepb.IntroductionBody{}).ProtoReflect().Descriptor(), &fields, 0); err != nil {
		return out, fmt.Errorf("introduction: %w", err)
	}
	var p wirepb.IntroductionBody
	if err := proto.Unmarshal(b, &p); err != nil {
		return out, fmt.Errorf("introduction: %w", err)
	}
	if err := fixed("share", out.Share[:], p.GetShare()); err != nil {
		return out, fmt.Errorf("introduction: %w", err)
	}
	if err := fixed("introducer", out.Introducer[:], p.GetIntroducer()); err != nil {
		return out, fmt.Errorf("introduction: %w", err)
	}
	out.Issued = time.Unix(p.GetIssuedUnix(), 0)
	if len(p.GetMembers()) > MaxIntroduced {
		return out, fmt.Errorf("introduction of %d members, at most %d", len(p.GetMembers()), MaxIntroduced)
	}
	for i, pm := range p.GetMembers() {
		var m IntroducedMember
		if err := fixed("member device", m.Device[:], pm.GetDevice()); err != nil {
			return out, fmt.Errorf("introduction member %d: %w", i, err)
		}
		if k := pm.GetPublicKey(); len(k) != 0 && len(k) != 32 {
			return out, fmt.Errorf("introduction member %d: public key of %d bytes, want 32", i, len(k))
		}
		m.PublicKey = pm.GetPublicKey()
		if len(pm.GetAddresses()) > MaxIntroAddrs {
			return out, fmt.Errorf("introduction member %d: %d addresses, at most %d", i, len(pm.GetAddresses()), MaxIntroAddrs)
		}
		for _, a := range pm.GetAddresses() {
			if len(a) > maxIntroAddr {
				return out, fmt.Errorf("introduction member %d: an address of %d bytes, at most %d", i, len(a), maxIntroAddr)
			}
		}
		m.Addresses = pm.GetAddresses()
		if n := pm.GetName(); len(n) > maxIntroName || !utf8.ValidString(n) {
			return out, fmt.Errorf("introduction member %d: a name of %d bytes or not UTF-8", i, len(n))
		}
		m.Name = pm.GetName()
		out.Members = append(out.Members, m)
	}
	return out, nil
}

func (m *Introduction) validate() error {
	_, err := DecodeIntroductionBody(m.Body)
	return err
}

func (*IntroductionAck) validate() error { return nil }

func (m *Introduction) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_Introduction{Introduction: &wirepb.Introduction{
		Body: m.Body, DeviceKey: m.DeviceKey[:], DeviceSig: m.DeviceSig[:], WriterSig: m.WriterSig[:],
	}}
}

func (*IntroductionAck) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_IntroductionAck{IntroductionAck: &wirepb.IntroductionAck{}}
}

func introductionFromPB(p *wirepb.Introduction) (*Introduction, error) {
	m := &Introduction{Body: p.GetBody()}
	if err := fixed("device key", m.DeviceKey[:], p.GetDeviceKey()); err != nil {
		return nil, fmt.Errorf("introduction: %w", err)
	}
	if err := fixed("device signature", m.DeviceSig[:], p.GetDeviceSig()); err != nil {
		return nil, fmt.Errorf("introduction: %w", err)
	}
	if err := fixed("writer signature", m.WriterSig[:], p.GetWriterSig()); err != nil {
		return nil, fmt.Errorf("introduction: %w", err)
	}
	return m, nil
}
