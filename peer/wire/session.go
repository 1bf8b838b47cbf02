package wire

import (
	"fmt"
	"strings"

	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// Hello is the first message each side sends.
type Hello struct {
	Version      uint32 // the newest protocol version the sender speaks
	MinVersion   uint32 // the oldest it still speaks
	DeviceName   string // for display only; never trusted for anything
	Capabilities []string
	// SealedInvites are invitations by short code, each opened only with its
	// code (daemon seals and opens them); sent to unpaired devices.
	SealedInvites [][]byte
	// Observed is the address the sender sees the receiver's connection
	// come from (version 4; zero from older peers). Over QUIC it is the
	// receiver's reflexive address: where its NAT maps its UDP socket.
	Observed transport.Addr
}

// Compatible reports whether two Hellos can talk, and the version they use.
func Compatible(a, b *Hello) (uint32, bool) {
	v := min(a.Version, b.Version)
	return v, max(a.MinVersion, b.MinVersion) <= v && v > 0
}

// Ping asks for a Pong (keepalive; with a non-zero ID, a round trip).
type Ping struct{}

// Pong answers Ping.
type Pong struct{}

// Close is the last message a side sends before closing: why.
type Close struct {
	Reason string
	// Code is CodeRefused when the sender will not talk to this device (not
	// paired, or the invitation its Hello carried is not valid), so the
	// device can tell its user; 0 for an ordinary close (version 2).
	Code ErrorCode
}

// ErrorCode classifies an ErrorResponse. It is an error, so callers can test
// errors.Is(err, wire.CodeNotFound) on what a request returned.
type ErrorCode uint32

const (
	CodeNotFound    ErrorCode = ErrorCode(wirepb.ErrorCode_ERROR_CODE_NOT_FOUND)
	CodeRefused     ErrorCode = ErrorCode(wirepb.ErrorCode_ERROR_CODE_REFUSED) // not allowed (no access to the share)
	CodeBusy        ErrorCode = ErrorCode(wirepb.ErrorCode_ERROR_CODE_BUSY)    // too many requests in flight; retry later
	CodeInternal    ErrorCode = ErrorCode(wirepb.ErrorCode_ERROR_CODE_INTERNAL)
	CodeBadRequest  ErrorCode = ErrorCode(wirepb.ErrorCode_ERROR_CODE_BAD_REQUEST)
	CodeUnsupported ErrorCode = ErrorCode(wirepb.ErrorCode_ERROR_CODE_UNSUPPORTED)
)

func (c ErrorCode) String() string {
	switch c {
	case CodeNotFound:
		return "not found"
	case CodeRefused:
		return "refused"
	case CodeBusy:
		return "busy"
	case CodeInternal:
		return "internal error"
	case CodeBadRequest:
		return "bad request"
	case CodeUnsupported:
		return "unsupported"
	}
	return fmt.Sprintf("error code %d", uint32(c))
}

func (c ErrorCode) Error() string { return c.String() }

// ErrorResponse answers a request that failed. It is an error (what
// conn.Request returns), and errors.Is matches it against its Code.
// Codes this version does not know are kept as they are.
type ErrorResponse struct {
	Code    ErrorCode
	Message string
}

// Errorf makes an ErrorResponse, truncating the message to MaxTextLen.
func Errorf(code ErrorCode, format string, args ...any) *ErrorResponse {
	return &ErrorResponse{Code: code, Message: Text(fmt.Sprintf(format, args...))}
}

func (e *ErrorResponse) Error() string {
	if e.Message == "" {
		return "peer answered: " + e.Code.String()
	}
	return "peer answered: " + e.Code.String() + ": " + e.Message
}

// Is reports whether target is e's code.
func (e *ErrorResponse) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}

// Text makes s fit a Close reason or error message: valid UTF-8, at most
// MaxTextLen bytes.
func Text(s string) string {
	if len(s) > MaxTextLen {
		s = s[:MaxTextLen]
	}
	s = strings.ToValidUTF8(s, "?") // also drops a rune cut in half above
	return s
}

func (m *Hello) validate() error {
	if len(m.DeviceName) > MaxNameLen {
		return fmt.Errorf("hello: device name of %d bytes exceeds %d", len(m.DeviceName), MaxNameLen)
	}
	if len(m.Capabilities) > MaxCapabilities {
		return fmt.Errorf("hello: %d capabilities exceed %d", len(m.Capabilities), MaxCapabilities)
	}
	for _, c := range m.Capabilities {
		if len(c) > MaxCapabilityLen {
			return fmt.Errorf("hello: capability of %d bytes exceeds %d", len(c), MaxCapabilityLen)
		}
	}
	if len(m.SealedInvites) > MaxSealedInvites {
		return fmt.Errorf("hello: %d sealed invitations exceed %d", len(m.SealedInvites), MaxSealedInvites)
	}
	for _, si := range m.SealedInvites {
		if len(si) > MaxSealedInvite {
			return fmt.Errorf("hello: sealed invitation of %d bytes exceeds %d", len(si), MaxSealedInvite)
		}
	}
	return nil
}

func (m *Close) validate() error { return checkText("close reason", m.Reason) }

func (m *ErrorResponse) validate() error { return checkText("error message", m.Message) }

func checkText(what, s string) error {
	if len(s) > MaxTextLen {
		return fmt.Errorf("%s of %d bytes exceeds %d", what, len(s), MaxTextLen)
	}
	return nil
}

func (m *Hello) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_Hello{Hello: &wirepb.Hello{
		Version: m.Version, MinVersion: m.MinVersion, DeviceName: m.DeviceName, Capabilities: m.Capabilities,
		SealedInvites: m.SealedInvites, Observed: observedString(m.Observed),
	}}
}

func helloFromPB(p *wirepb.Hello) *Hello {
	h := &Hello{Version: p.GetVersion(), MinVersion: p.GetMinVersion(), DeviceName: p.GetDeviceName(),
		Capabilities: p.GetCapabilities(), SealedInvites: p.GetSealedInvites()}
	// An observed address that does not parse is ignored: it is advice
	// from the peer, never needed to talk to it.
	if a, err := transport.Parse(p.GetObserved()); err == nil && a.AddrPort.IsValid() {
		h.Observed = a
	}
	return h
}

func observedString(a transport.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (m *Close) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_Close{Close: &wirepb.Close{Reason: m.Reason, Code: wirepb.ErrorCode(m.Code)}}
}

func (m *ErrorResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_Error{Error: &wirepb.ErrorResponse{Code: wirepb.ErrorCode(m.Code), Message: m.Message}}
}
