package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// VaultCapability in a Hello says the device speaks the vault messages
// (an encrypted member's store, sync/vault); no other device is sent one.
const VaultCapability = "vault/1"

// VaultListedCapability in a Hello (version 6) says the device also reads
// and keeps sealed items of version 2, which list their sealed blocks
// outside the sealed body (sync/vault): a writer seals those only for an
// encrypted member that announces it.
const VaultListedCapability = "vault/2"

// Limits of the vault messages. A put or an answer stays well under
// MaxFrameSize: senders batch to VaultBatchBytes.
const (
	MaxVaultItems     = 4096         // items in one VaultPut or VaultGetResponse, keys in one VaultGet
	MaxVaultItemSize  = 1 << 20      // bytes of one sealed item
	MaxVaultBlocks    = 256          // sealed blocks in one VaultPut or VaultBlocksResponse
	MaxVaultNames     = 4096         // names in one VaultBlocks
	MaxVaultEntries   = 8192         // entries in one VaultListResponse
	VaultKeySize      = 64           // slot (32) then pusher (32)
	VaultTagSize      = 32           // an item's tag
	VaultNameSize     = 32           // a sealed block's name
	VaultBatchBytes   = 8 << 20      // what a sender puts in one message, about
	maxVaultBlockSize = 1<<18 + 4096 // a sealed block: the chunker's maximum, padded, plus the tag
)

// VaultPut gives an encrypted member sealed items and sealed blocks of
// Share (a request; answered by VaultPutAck).
type VaultPut struct {
	Share  share.ID
	Items  [][]byte
	Blocks [][]byte
}

// VaultPutAck says how many of a put's items and blocks were new.
type VaultPutAck struct {
	Items, Blocks uint32
	// Missing counts items left out because they name sealed blocks the
	// member does not hold (version 6; 0 from older members).
	Missing uint32
}

// VaultList asks for the entries of Share's items after key After (empty:
// from the first).
type VaultList struct {
	Share share.ID
	After []byte
	Since uint64 // the generation listed last; 0: none
}

// VaultEntry is one item of a store as listed.
type VaultEntry struct {
	Key [VaultKeySize]byte
	Seq uint64
	Tag [VaultTagSize]byte
	// ListsBlocks: the item names its sealed blocks outside its sealed
	// body (version 6; false from older members).
	ListsBlocks bool
}

// VaultListResponse is a page of entries in key order.
type VaultListResponse struct {
	Entries    []VaultEntry
	More       bool
	Generation uint64 // counts changes to the share's items at the store
	Unchanged  bool   // nothing changed since the asked generation: no entries
}

// VaultGet asks for the items at Keys.
type VaultGet struct {
	Share share.ID
	Keys  [][VaultKeySize]byte
}

// VaultGetResponse holds the items found.
type VaultGetResponse struct {
	Items [][]byte
}

// VaultBlocks asks which sealed blocks are held, and with Data their bytes.
type VaultBlocks struct {
	Share share.ID
	Names [][VaultNameSize]byte
	Data  bool
}

// VaultBlocksResponse: Held (a bit per name asked) and, with data asked,
// the held blocks' bytes in the order asked.
type VaultBlocksResponse struct {
	Held []byte
	Data [][]byte
}

// Holds reports whether name i of the request was held.
func (m *VaultBlocksResponse) Holds(i int) bool {
	return i >= 0 && i/8 < len(m.Held) && m.Held[i/8]&(1<<(i%8)) != 0
}

func (m *VaultPut) validate() error {
	if len(m.Items) > MaxVaultItems || len(m.Blocks) > MaxVaultBlocks {
		return fmt.Errorf("vault put with %d items, %d blocks: over the limit", len(m.Items), len(m.Blocks))
	}
	if err := sizes("sealed item", m.Items, MaxVaultItemSize); err != nil {
		return fmt.Errorf("vault put: %w", err)
	}
	if err := sizes("sealed block", m.Blocks, maxVaultBlockSize); err != nil {
		return fmt.Errorf("vault put: %w", err)
	}
	return nil
}

func (*VaultPutAck) validate() error { return nil }

func (m *VaultList) validate() error {
	if len(m.After) != 0 && len(m.After) != VaultKeySize {
		return fmt.Errorf("vault list after a key of %d bytes, want %d", len(m.After), VaultKeySize)
	}
	return nil
}

func (m *VaultListResponse) validate() error {
	if len(m.Entries) > MaxVaultEntries {
		return fmt.Errorf("vault list of %d entries, limit %d", len(m.Entries), MaxVaultEntries)
	}
	return nil
}

func (m *VaultGet) validate() error {
	if len(m.Keys) > MaxVaultItems {
		return fmt.Errorf("vault get of %d keys, limit %d", len(m.Keys), MaxVaultItems)
	}
	return nil
}

func (m *VaultGetResponse) validate() error {
	if len(m.Items) > MaxVaultItems {
		return fmt.Errorf("vault get response of %d items, limit %d", len(m.Items), MaxVaultItems)
	}
	return sizes("sealed item", m.Items, MaxVaultItemSize)
}

func (m *VaultBlocks) validate() error {
	if len(m.Names) > MaxVaultNames {
		return fmt.Errorf("vault blocks of %d names, limit %d", len(m.Names), MaxVaultNames)
	}
	return nil
}

func (m *VaultBlocksResponse) validate() error {
	if len(m.Held) > (MaxVaultNames+7)/8 || len(m.Data) > MaxVaultBlocks {
		return fmt.Errorf("vault blocks response of %d bytes of bits, %d blocks: over the limit", len(m.Held), len(m.Data))
	}
	return sizes("sealed block", m.Data, maxVaultBlockSize)
}

// sizes checks that each of l holds 1..limit bytes.
func sizes(what string, l [][]byte, limit int) error {
	for _, b := range l {
		if len(b) == 0 || len(b) > limit {
			return fmt.Errorf("%s of %d bytes, limit %d", what, len(b), limit)
		}
	}
	return nil
}

func (m *VaultPut) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_VaultPut{VaultPut: &wirepb.VaultPut{Share: m.Share[:], Items: m.Items, Blocks: m.Blocks}}
}

func (m *VaultPutAck) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_VaultPutAck{VaultPutAck: &wirepb.VaultPutAck{Items: m.Items, Blocks: m.Blocks, Missing: m.Missing}}
}

func (m *VaultList) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_VaultList{VaultList: &wirepb.VaultList{Share: m.Share[:], After: m.After, Since: m.Since}}
}

func (m *VaultListResponse) toPB(e *wirepb.Envelope) {
	p := &wirepb.VaultListResponse{More: m.More, Generation: m.Generation, Unchanged: m.Unchanged, Entries: make([]*wirepb.VaultEntry, len(m.Entries))}
	for i, en := range m.Entries {
		p.Entries[i] = &wirepb.VaultEntry{Key: en.Key[:], Seq: en.Seq, Tag: en.Tag[:], ListsBlocks: en.ListsBlocks}
	}
	e.Body = &wirepb.Envelope_VaultListResponse{VaultListResponse: p}
}

func (m *VaultGet) toPB(e *wirepb.Envelope) {
	p := &wirepb.VaultGet{Share: m.Share[:], Keys: make([][]byte, len(m.Keys))}
	for i := range m.Keys {
		p.Keys[i] = m.Keys[i][:]
	}
	e.Body = &wirepb.Envelope_VaultGet{VaultGet: p}
}

func (m *VaultGetResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_VaultGetResponse{VaultGetResponse: &wirepb.VaultGetResponse{Items: m.Items}}
}

func (m *VaultBlocks) toPB(e *wirepb.Envelope) {
	p := &wirepb.VaultBlocks{Share: m.Share[:], Data: m.Data, Names: make([][]byte, len(m.Names))}
	for i := range m.Names {
		p.Names[i] = m.Names[i][:]
	}
	e.Body = &wirepb.Envelope_VaultBlocks{VaultBlocks: p}
}

func (m *VaultBlocksResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_VaultBlocksResponse{VaultBlocksResponse: &wirepb.VaultBlocksResponse{Held: m.Held, Data: m.Data}}
}

func vaultPutFromPB(p *wirepb.VaultPut) (*VaultPut, error) {
	if len(p.GetItems()) > MaxVaultItems || len(p.GetBlocks()) > MaxVaultBlocks {
		return nil, fmt.Errorf("vault put over the limit")
	}
	m := &VaultPut{Items: p.GetItems(), Blocks: p.GetBlocks()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("vault put: %w", err)
	}
	return m, nil
}

func vaultListFromPB(p *wirepb.VaultList) (*VaultList, error) {
	m := &VaultList{After: p.GetAfter(), Since: p.GetSince()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("vault list: %w", err)
	}
	return m, nil
}

func vaultListResponseFromPB(p *wirepb.VaultListResponse) (*VaultListResponse, error) {
	if len(p.GetEntries()) > MaxVaultEntries {
		return nil, fmt.Errorf("vault list response of %d entries, limit %d", len(p.GetEntries()), MaxVaultEntries)
	}
	m := &VaultListResponse{More: p.GetMore(), Generation: p.GetGeneration(), Unchanged: p.GetUnchanged()}
	if n := len(p.GetEntries()); n > 0 {
		m.Entries = make([]VaultEntry, n)
	}
	for i, en := range p.GetEntries() {
		m.Entries[i].Seq = en.GetSeq()
		m.Entries[i].ListsBlocks = en.GetListsBlocks()
		if err := fixed("vault key", m.Entries[i].Key[:], en.GetKey()); err != nil {
			return nil, fmt.Errorf("vault list response: %w", err)
		}
		if err := fixed("vault tag", m.Entries[i].Tag[:], en.GetTag()); err != nil {
			return nil, fmt.Errorf("vault list response: %w", err)
		}
	}
	return m, nil
}

func vaultGetFromPB(p *wirepb.VaultGet) (*VaultGet, error) {
	if len(p.GetKeys()) > MaxVaultItems {
		return nil, fmt.Errorf("vault get of %d keys, limit %d", len(p.GetKeys()), MaxVaultItems)
	}
	m := &VaultGet{Keys: make([][VaultKeySize]byte, len(p.GetKeys()))}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("vault get: %w", err)
	}
	for i, k := range p.GetKeys() {
		if err := fixed("vault key", m.Keys[i][:], k); err != nil {
			return nil, fmt.Errorf("vault get: %w", err)
		}
	}
	return m, nil
}

func vaultBlocksFromPB(p *wirepb.VaultBlocks) (*VaultBlocks, error) {
	if len(p.GetNames()) > MaxVaultNames {
		return nil, fmt.Errorf("vault blocks of %d names, limit %d", len(p.GetNames()), MaxVaultNames)
	}
	m := &VaultBlocks{Data: p.GetData(), Names: make([][VaultNameSize]byte, len(p.GetNames()))}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("vault blocks: %w", err)
	}
	for i, n := range p.GetNames() {
		if err := fixed("sealed block name", m.Names[i][:], n); err != nil {
			return nil, fmt.Errorf("vault blocks: %w", err)
		}
	}
	return m, nil
}

// vaultName names a vault message.
func vaultName(m Message) string {
	switch m.(type) {
	case *VaultPut:
		return "VaultPut"
	case *VaultPutAck:
		return "VaultPutAck"
	case *VaultList:
		return "VaultList"
	case *VaultListResponse:
		return "VaultListResponse"
	case *VaultGet:
		return "VaultGet"
	case *VaultGetResponse:
		return "VaultGetResponse"
	case *VaultBlocks:
		return "VaultBlocks"
	}
	return "VaultBlocksResponse"
}
