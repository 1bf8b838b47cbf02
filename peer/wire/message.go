package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// IsRequest reports whether m asks for an answer.
func IsRequest(m Message) bool {
	switch m.(type) {
	case *NodesRequest, *RecordsRequest, *BlockRequest, *Ping, *JoinRequest, *CodeRequest, *PunchRequest, *MembersRequest, *Introduction, *RelayInvite,
		*VaultPut, *VaultList, *VaultGet, *VaultBlocks, *VaultAddrs,
		*MulticastWant, *MulticastReady, *MulticastReport, *PatchRequest, *ReflateRequest,
		*SwarmTicketRequest, *SwarmOpen, *RendezvousOffer, *RendezvousFind:
		return true
	}
	return false
}

// IsResponse reports whether m answers a request.
func IsResponse(m Message) bool {
	switch m.(type) {
	case *NodesResponse, *RecordsResponse, *BlockResponse, *Pong, *ErrorResponse, *JoinResponse, *CodeResponse, *PunchResponse, *MembersResponse, *IntroductionAck, *RelayInviteAck,
		*VaultPutAck, *VaultListResponse, *VaultGetResponse, *VaultBlocksResponse, *VaultAddrsAck,
		*MulticastOffer, *MulticastStart, *MulticastStatus, *PatchResponse, *ReflateResponse,
		*SwarmTicketResponse, *SwarmOpened, *RendezvousAck, *RendezvousFound:
		return true
	}
	return false
}

// Answers reports whether resp is an answer the protocol allows to req: its
// own response type, or an ErrorResponse.
func Answers(req, resp Message) bool {
	if _, ok := resp.(*ErrorResponse); ok {
		return true
	}
	switch req.(type) {
	case *NodesRequest:
		_, ok := resp.(*NodesResponse)
		return ok
	case *RecordsRequest:
		_, ok := resp.(*RecordsResponse)
		return ok
	case *BlockRequest:
		_, ok := resp.(*BlockResponse)
		return ok
	case *Ping:
		_, ok := resp.(*Pong)
		return ok
	case *JoinRequest:
		_, ok := resp.(*JoinResponse)
		return ok
	case *CodeRequest:
		_, ok := resp.(*CodeResponse)
		return ok
	case *PunchRequest:
		_, ok := resp.(*PunchResponse)
		return ok
	case *MembersRequest:
		_, ok := resp.(*MembersResponse)
		return ok
	case *Introduction:
		_, ok := resp.(*IntroductionAck)
		return ok
	case *RelayInvite:
		_, ok := resp.(*RelayInviteAck)
		return ok
	case *VaultPut:
		_, ok := resp.(*VaultPutAck)
		return ok
	case *VaultList:
		_, ok := resp.(*VaultListResponse)
		return ok
	case *VaultGet:
		_, ok := resp.(*VaultGetResponse)
		return ok
	case *VaultBlocks:
		_, ok := resp.(*VaultBlocksResponse)
		return ok
	case *VaultAddrs:
		_, ok := resp.(*VaultAddrsAck)
		return ok
	case *MulticastWant:
		_, ok := resp.(*MulticastOffer)
		return ok
	case *MulticastReady:
		_, ok := resp.(*MulticastStart)
		return ok
	case *MulticastReport:
		_, ok := resp.(*MulticastStatus)
		return ok
	case *PatchRequest:
		_, ok := resp.(*PatchResponse)
		return ok
	case *ReflateRequest:
		_, ok := resp.(*ReflateResponse)
		return ok
	case *SwarmTicketRequest:
		_, ok := resp.(*SwarmTicketResponse)
		return ok
	case *SwarmOpen:
		_, ok := resp.(*SwarmOpened)
		return ok
	case *RendezvousOffer:
		_, ok := resp.(*RendezvousAck)
		return ok
	case *RendezvousFind:
		_, ok := resp.(*RendezvousFound)
		return ok
	}
	return false
}

// Name returns m's message name, for errors and logs.
func Name(m Message) string {
	switch m.(type) {
	case *Hello:
		return "Hello"
	case *Ping:
		return "Ping"
	case *Pong:
		return "Pong"
	case *Close:
		return "Close"
	case *ErrorResponse:
		return "ErrorResponse"
	case *ShareState:
		return "ShareState"
	case *NodesRequest:
		return "NodesRequest"
	case *NodesResponse:
		return "NodesResponse"
	case *RecordsRequest:
		return "RecordsRequest"
	case *RecordsResponse:
		return "RecordsResponse"
	case *RecordPush:
		return "RecordPush"
	case *BlockRequest:
		return "BlockRequest"
	case *BlockResponse:
		return "BlockResponse"
	case *JoinRequest:
		return "JoinRequest"
	case *JoinResponse:
		return "JoinResponse"
	case *CodeRequest:
		return "CodeRequest"
	case *CodeResponse:
		return "CodeResponse"
	case *Have:
		return "Have"
	case *PunchRequest:
		return "PunchRequest"
	case *PunchResponse:
		return "PunchResponse"
	case *PunchOffer:
		return "PunchOffer"
	case *RelayConnect:
		return "RelayConnect"
	case *RelayAccept:
		return "RelayAccept"
	case *RelayStatus:
		return "RelayStatus"
	case *RelayInvite:
		return "RelayInvite"
	case *RelayInviteAck:
		return "RelayInviteAck"
	case *MembersRequest:
		return "MembersRequest"
	case *MembersResponse:
		return "MembersResponse"
	case *MembersChanged:
		return "MembersChanged"
	case *Introduction:
		return "Introduction"
	case *IntroductionAck:
		return "IntroductionAck"
	case *VaultPut, *VaultPutAck, *VaultList, *VaultListResponse, *VaultGet, *VaultGetResponse, *VaultBlocks, *VaultBlocksResponse:
		return vaultName(m)
	case *VaultAddrs:
		return "VaultAddrs"
	case *VaultAddrsAck:
		return "VaultAddrsAck"
	case *MulticastWant:
		return "MulticastWant"
	case *MulticastOffer:
		return "MulticastOffer"
	case *MulticastReady:
		return "MulticastReady"
	case *MulticastStart:
		return "MulticastStart"
	case *MulticastReport:
		return "MulticastReport"
	case *MulticastStatus:
		return "MulticastStatus"
	case *PatchRequest:
		return "PatchRequest"
	case *PatchResponse:
		return "PatchResponse"
	case *ReflateRequest:
		return "ReflateRequest"
	case *ReflateResponse:
		return "ReflateResponse"
	case *SwarmTicketRequest:
		return "SwarmTicketRequest"
	case *SwarmTicketResponse:
		return "SwarmTicketResponse"
	case *SwarmOpen:
		return "SwarmOpen"
	case *RendezvousOffer:
		return "RendezvousOffer"
	case *RendezvousAck:
		return "RendezvousAck"
	case *RendezvousFind:
		return "RendezvousFind"
	case *RendezvousFound:
		return "RendezvousFound"
	case *Zstream:
		return "Zstream"
	case *SwarmOpened:
		return "SwarmOpened"
	}
	return fmt.Sprintf("%T", m)
}

func (*Ping) validate() error       { return nil }
func (*Pong) validate() error       { return nil }
func (*ShareState) validate() error { return nil }

func (*Ping) toPB(e *wirepb.Envelope) { e.Body = &wirepb.Envelope_Ping{Ping: &wirepb.Ping{}} }
func (*Pong) toPB(e *wirepb.Envelope) { e.Body = &wirepb.Envelope_Pong{Pong: &wirepb.Pong{}} }

// fromPB converts a decoded envelope's body; the caller validates the result.
func fromPB(e *wirepb.Envelope) (Message, error) {
	switch b := e.Body.(type) {
	case *wirepb.Envelope_Hello:
		return helloFromPB(b.Hello), nil
	case *wirepb.Envelope_Ping:
		return &Ping{}, nil
	case *wirepb.Envelope_Pong:
		return &Pong{}, nil
	case *wirepb.Envelope_Close:
		return &Close{Reason: b.Close.GetReason(), Code: ErrorCode(b.Close.GetCode())}, nil
	case *wirepb.Envelope_Error:
		return &ErrorResponse{Code: ErrorCode(b.Error.GetCode()), Message: b.Error.GetMessage()}, nil
	case *wirepb.Envelope_ShareState:
		return shareStateFromPB(b.ShareState)
	case *wirepb.Envelope_NodesRequest:
		return nodesRequestFromPB(b.NodesRequest)
	case *wirepb.Envelope_NodesResponse:
		return nodesResponseFromPB(b.NodesResponse)
	case *wirepb.Envelope_RecordsRequest:
		return recordsRequestFromPB(b.RecordsRequest)
	case *wirepb.Envelope_RecordsResponse:
		return recordsResponseFromPB(b.RecordsResponse)
	case *wirepb.Envelope_RecordPush:
		return recordPushFromPB(b.RecordPush)
	case *wirepb.Envelope_BlockRequest:
		return blockRequestFromPB(b.BlockRequest)
	case *wirepb.Envelope_BlockResponse:
		return blockResponseFromPB(b.BlockResponse)
	case *wirepb.Envelope_JoinRequest:
		return joinRequestFromPB(b.JoinRequest)
	case *wirepb.Envelope_JoinResponse:
		return &JoinResponse{}, nil
	case *wirepb.Envelope_CodeRequest:
		return codeRequestFromPB(b.CodeRequest)
	case *wirepb.Envelope_CodeResponse:
		return codeResponseFromPB(b.CodeResponse)
	case *wirepb.Envelope_Have:
		return haveFromPB(b.Have)
	case *wirepb.Envelope_Zstream:
		return &Zstream{Data: b.Zstream}, nil
	case *wirepb.Envelope_PunchRequest:
		return punchRequestFromPB(b.PunchRequest)
	case *wirepb.Envelope_PunchResponse:
		return punchResponseFromPB(b.PunchResponse)
	case *wirepb.Envelope_PunchOffer:
		return punchOfferFromPB(b.PunchOffer)
	case *wirepb.Envelope_MembersRequest:
		return membersRequestFromPB(b.MembersRequest)
	case *wirepb.Envelope_MembersResponse:
		return membersResponseFromPB(b.MembersResponse)
	case *wirepb.Envelope_MembersChanged:
		return membersChangedFromPB(b.MembersChanged)
	case *wirepb.Envelope_Introduction:
		return introductionFromPB(b.Introduction)
	case *wirepb.Envelope_IntroductionAck:
		return &IntroductionAck{}, nil
	case *wirepb.Envelope_RelayConnect:
		return relayConnectFromPB(b.RelayConnect)
	case *wirepb.Envelope_RelayAccept:
		return relayAcceptFromPB(b.RelayAccept)
	case *wirepb.Envelope_RelayStatus:
		return relayStatusFromPB(b.RelayStatus)
	case *wirepb.Envelope_RelayInvite:
		return relayInviteFromPB(b.RelayInvite)
	case *wirepb.Envelope_RelayInviteAck:
		return &RelayInviteAck{}, nil
	case *wirepb.Envelope_VaultPut:
		return vaultPutFromPB(b.VaultPut)
	case *wirepb.Envelope_VaultPutAck:
		return &VaultPutAck{Items: b.VaultPutAck.GetItems(), Blocks: b.VaultPutAck.GetBlocks(), Missing: b.VaultPutAck.GetMissing()}, nil
	case *wirepb.Envelope_VaultList:
		return vaultListFromPB(b.VaultList)
	case *wirepb.Envelope_VaultListResponse:
		return vaultListResponseFromPB(b.VaultListResponse)
	case *wirepb.Envelope_VaultGet:
		return vaultGetFromPB(b.VaultGet)
	case *wirepb.Envelope_VaultGetResponse:
		return &VaultGetResponse{Items: b.VaultGetResponse.GetItems()}, nil
	case *wirepb.Envelope_VaultBlocks:
		return vaultBlocksFromPB(b.VaultBlocks)
	case *wirepb.Envelope_VaultBlocksResponse:
		return &VaultBlocksResponse{Held: b.VaultBlocksResponse.GetHeld(), Data: b.VaultBlocksResponse.GetData()}, nil
	case *wirepb.Envelope_VaultAddrs:
		return vaultAddrsFromPB(b.VaultAddrs)
	case *wirepb.Envelope_VaultAddrsAck:
		return &VaultAddrsAck{}, nil
	case *wirepb.Envelope_MulticastWant:
		return multicastWantFromPB(b.MulticastWant)
	case *wirepb.Envelope_MulticastOffer:
		return multicastOfferFromPB(b.MulticastOffer)
	case *wirepb.Envelope_MulticastReady:
		return multicastReadyFromPB(b.MulticastReady)
	case *wirepb.Envelope_MulticastStart:
		return &MulticastStart{Family: b.MulticastStart.GetFamily()}, nil
	case *wirepb.Envelope_MulticastReport:
		return multicastReportFromPB(b.MulticastReport)
	case *wirepb.Envelope_MulticastStatus:
		return &MulticastStatus{Done: b.MulticastStatus.GetDone()}, nil
	case *wirepb.Envelope_PatchRequest:
		return patchRequestFromPB(b.PatchRequest)
	case *wirepb.Envelope_PatchResponse:
		return &PatchResponse{Data: b.PatchResponse.GetData()}, nil
	case *wirepb.Envelope_ReflateRequest:
		return reflateRequestFromPB(b.ReflateRequest)
	case *wirepb.Envelope_ReflateResponse:
		return reflateResponseFromPB(b.ReflateResponse)
	case *wirepb.Envelope_SwarmTicketRequest:
		return swarmTicketRequestFromPB(b.SwarmTicketRequest)
	case *wirepb.Envelope_SwarmTicketResponse:
		return swarmTicketResponseFromPB(b.SwarmTicketResponse)
	case *wirepb.Envelope_SwarmOpen:
		return swarmOpenFromPB(b.SwarmOpen)
	case *wirepb.Envelope_SwarmOpened:
		return &SwarmOpened{Held: b.SwarmOpened.GetHeld()}, nil
	case *wirepb.Envelope_RendezvousOffer, *wirepb.Envelope_RendezvousAck, *wirepb.Envelope_RendezvousFind,
		*wirepb.Envelope_RendezvousFound:
		return rendezvousFromPB(e)
	case nil:
		return nil, fmt.Errorf("frame carries no message (unknown to protocol version %d?)", Version)
	}
	return nil, fmt.Errorf("unknown message %T", e.Body)
}
