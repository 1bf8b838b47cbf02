package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// CodeRequest asks a device for the invitation a short code stands for
// (protocol version 4), on a guest connection: the asker is not paired, and
// its Hello carries the capability "code=<Locator>". Locator names one of
// the device's open code invitations (it is not secret); Pake is the
// asker's first PAKE message, made with the rest of the code. Answered by a
// CodeResponse or an ErrorResponse (CodeRefused: no such invitation, or the
// invitation was closed after too many wrong tries).
type CodeRequest struct {
	Locator string
	Pake    []byte
}

// CodeResponse is the inviter's PAKE message and the invitation link
// sealed under a key derived from the PAKE's session key: only an asker
// that used the right code opens it.
type CodeResponse struct {
	Pake   []byte
	Sealed []byte
}

func (m *CodeRequest) validate() error {
	if len(m.Locator) == 0 || len(m.Locator) > MaxCodeLocator {
		return fmt.Errorf("code request: locator of %d characters, want 1 to %d", len(m.Locator), MaxCodeLocator)
	}
	if len(m.Pake) == 0 || len(m.Pake) > MaxCodePake {
		return fmt.Errorf("code request: PAKE message of %d bytes, want 1 to %d", len(m.Pake), MaxCodePake)
	}
	return nil
}

func (m *CodeResponse) validate() error {
	if len(m.Pake) == 0 || len(m.Pake) > MaxCodePake {
		return fmt.Errorf("code response: PAKE message of %d bytes, want 1 to %d", len(m.Pake), MaxCodePake)
	}
	if len(m.Sealed) == 0 || len(m.Sealed) > MaxSealedInvite {
		return fmt.Errorf("code response: sealed invitation of %d bytes, want 1 to %d", len(m.Sealed), MaxSealedInvite)
	}
	return nil
}

func (m *CodeRequest) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_CodeRequest{CodeRequest: &wirepb.CodeRequest{Locator: m.Locator, Pake: m.Pake}}
}

func (m *CodeResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_CodeResponse{CodeResponse: &wirepb.CodeResponse{Pake: m.Pake, Sealed: m.Sealed}}
}

func codeRequestFromPB(p *wirepb.CodeRequest) (*CodeRequest, error) {
	m := &CodeRequest{Locator: p.GetLocator(), Pake: p.GetPake()}
	return m, m.validate()
}

func codeResponseFromPB(p *wirepb.CodeResponse) (*CodeResponse, error) {
	m := &CodeResponse{Pake: p.GetPake(), Sealed: p.GetSealed()}
	return m, m.validate()
}
