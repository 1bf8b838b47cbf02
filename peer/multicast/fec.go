package multicast

import (
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// Forward error correction: a payload is cut into ShardSize shards (the
// last padded with zeros), taken MaxGroupShards at a time; each group gets
// m Reed-Solomon parity shards, m chosen by the sender from the loss it
// hears of (Pacer.Parity), so any k of a group's k+m shards rebuild it.
const (
	// MaxGroupShards is the most data shards in one group.
	MaxGroupShards = 32
	// maxParity is the most parity shards of one group.
	maxParity = 32
	// maxBlocksPending bounds the payloads an Assembler builds at once: a
	// sender sends blocks in order, so a block still short of shards when
	// this many newer ones started will not complete (unicast repairs it);
	// the oldest is dropped.
	maxBlocksPending = 16
)

// groups returns how many groups a payload of size bytes is cut into.
func groups(size int) int {
	n := (size + ShardSize - 1) / ShardSize
	return (n + MaxGroupShards - 1) / MaxGroupShards
}

// groupK returns the data shards of group g of a payload of size bytes.
func groupK(size, g int) int {
	n := (size + ShardSize - 1) / ShardSize
	return min(MaxGroupShards, n-g*MaxGroupShards)
}

// codes keeps one Reed-Solomon encoder per shape; they are safe for
// concurrent use.
var codes sync.Map // [2]int{k, m} -> reedsolomon.Encoder

func code(k, m int) (reedsolomon.Encoder, error) {
	key := [2]int{k, m}
	if c, ok := codes.Load(key); ok {
		return c.(reedsolomon.Encoder), nil
	}
	c, err := reedsolomon.New(k, m)
	if err != nil {
		return nil, fmt.Errorf("reed-solomon code %d+%d: %w", k, m, err)
	}
	codes.Store(key, c)
	return c, nil
}

// Encode cuts payload (the block's encoding enc, at index block of its
// file) into shards with m parity shards per group.
func Encode(block uint32, enc uint8, payload []byte, m int) ([]Shard, error) {
	if len(payload) == 0 || len(payload) > MaxPayload {
		return nil, fmt.Errorf("encode block %d: payload of %d bytes (limit %d)", block, len(payload), MaxPayload)
	}
	m = max(0, min(m, maxParity))
	var out []Shard
	for g := range groups(len(payload)) {
		k := groupK(len(payload), g)
		shards := make([][]byte, k+m)
		start := g * MaxGroupShards * ShardSize
		for i := range k {
			s := make([]byte, ShardSize)
			copy(s, payload[min(start+i*ShardSize, len(payload)):min(start+(i+1)*ShardSize, len(payload))])
			shards[i] = s
		}
		if m > 0 {
			for i := k; i < k+m; i++ {
				shards[i] = make([]byte, ShardSize)
			}
			c, err := code(k, m)
			if err != nil {
				return nil, err
			}
			if err := c.Encode(shards); err != nil {
				return nil, fmt.Errorf("encode block %d: %w", block, err)
			}
		}
		for i, s := range shards {
			out = append(out, Shard{Block: block, Size: uint32(len(payload)), Enc: enc, Group: uint16(g), Index: uint8(i), K: uint8(k), M: uint8(m), Data: s})
		}
	}
	return out, nil
}

// Payload is a block put back together by an Assembler.
type Payload struct {
	Block uint32
	Enc   uint8
	Data  []byte
}

// Assembler puts payloads back together from their shards. It is not safe
// for concurrent use. A block is delivered once; shards of a delivered
// block, or of one marked Skip, are dropped.
type Assembler struct {
	pending map[uint32]*building
	done    map[uint32]bool
	started uint64 // blocks started, for building.order
}

type building struct {
	order  uint64 // when it started: the oldest is dropped first
	size   int
	enc    uint8
	groups []groupShards
	left   int // groups not yet rebuilt
}

type groupShards struct {
	k, m   int
	shards [][]byte // nil until the group's shape is known
	have   int
	done   bool
}

// NewAssembler returns an empty Assembler.
func NewAssembler() *Assembler {
	return &Assembler{pending: make(map[uint32]*building), done: make(map[uint32]bool)}
}

// Skip marks a block as not wanted (held already): its shards are dropped.
func (a *Assembler) Skip(block uint32) { a.done[block] = true; delete(a.pending, block) }

// Add takes a shard (checked by Opener); when it completes its block, Add
// returns the payload.
func (a *Assembler) Add(sh Shard) (Payload, bool) {
	if a.done[sh.Block] {
		return Payload{}, false
	}
	if sh.check() != nil || len(sh.Data) != ShardSize {
		return Payload{}, false
	}
	b := a.pending[sh.Block]
	if b == nil {
		if len(a.pending) >= maxBlocksPending {
			a.dropOldest()
		}
		a.started++
		b = &building{order: a.started, size: int(sh.Size), enc: sh.Enc, groups: make([]groupShards, groups(int(sh.Size)))}
		b.left = len(b.groups)
		a.pending[sh.Block] = b
	}
	if int(sh.Size) != b.size || sh.Enc != b.enc {
		return Payload{}, false // disagrees with the block's first shard: the sender's only, so never
	}
	g := &b.groups[sh.Group]
	if g.done {
		return Payload{}, false
	}
	if g.shards == nil {
		g.k, g.m = int(sh.K), int(sh.M)
		g.shards = make([][]byte, g.k+g.m)
	}
	if int(sh.M) != g.m || g.shards[sh.Index] != nil {
		return Payload{}, false
	}
	g.shards[sh.Index] = append([]byte(nil), sh.Data...)
	g.have++
	if g.have < g.k {
		return Payload{}, false
	}
	if g.m > 0 {
		c, err := code(g.k, g.m)
		if err != nil || c.ReconstructData(g.shards) != nil {
			return Payload{}, false
		}
	}
	g.done = true
	b.left--
	if b.left > 0 {
		return Payload{}, false
	}
	data := make([]byte, 0, b.size)
	for _, g := range b.groups {
		for _, s := range g.shards[:g.k] {
			data = append(data, s...)
		}
	}
	delete(a.pending, sh.Block)
	a.done[sh.Block] = true
	return Payload{Block: sh.Block, Enc: b.enc, Data: data[:b.size]}, true
}

// dropOldest gives up the block started first of those pending.
func (a *Assembler) dropOldest() {
	var oldest uint32
	first := true
	for k, b := range a.pending {
		if first || b.order < a.pending[oldest].order {
			oldest, first = k, false
		}
	}
	delete(a.pending, oldest)
}

// Pending returns how many blocks are being put together.
func (a *Assembler) Pending() int { return len(a.pending) }
