package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// TokenSize is the length of an invitation token.
const TokenSize = 16

// JoinRequest presents an invitation's token to the device that made it, on
// an open connection, asking to become a member of Share (protocol version
// 2). The answer is a JoinResponse, or an ErrorResponse: CodeRefused with
// why when the invitation is not valid.
type JoinRequest struct {
	Token [TokenSize]byte
	Share share.ID
}

// JoinResponse answers JoinRequest: the asker is a member of the share.
type JoinResponse struct{}

func (*JoinRequest) validate() error  { return nil }
func (*JoinResponse) validate() error { return nil }

func (m *JoinRequest) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_JoinRequest{JoinRequest: &wirepb.JoinRequest{Token: m.Token[:], Share: m.Share[:]}}
}

func (*JoinResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_JoinResponse{JoinResponse: &wirepb.JoinResponse{}}
}

func joinRequestFromPB(p *wirepb.JoinRequest) (*JoinRequest, error) {
	m := &JoinRequest{}
	if err := fixed("token", m.Token[:], p.GetToken()); err != nil {
		return nil, fmt.Errorf("join request: %w", err)
	}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("join request: %w", err)
	}
	return m, nil
}
