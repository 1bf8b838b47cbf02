package record

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/bits"
	gosync "sync"

	"github.com/zeebo/blake3"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

// Batched envelopes. A writer that seals many records at once signs one
// root instead of each record: the root of a Merkle tree (the shape of RFC
// 9162's, BLAKE3 instead of SHA-256) over the records' leaf hashes, in the
// order they were sealed. Each envelope carries its own inclusion proof, so
// it verifies alone (relayed, in a vault, or as the only record of its
// batch a peer receives) and is the same bytes on every device:
//
//	field 1  kind         varint
//	field 2  tree key     32 bytes
//	field 3  body         bytes
//	field 5  batch size n varint, 2..MaxBatch
//	field 6  index        varint, 0..n-1
//	field 7  proof        32 bytes per level, deepest sibling first;
//	                      the count follows from (index, n), at most
//	                      MaxProofDepth
//	field 8  signature    64 bytes, Ed25519 over batchSignDomain ||
//	                      n (4 bytes, big-endian) || root
//
//	leaf = BLAKE3(batchLeafDomain || kind || tree key || body)
//	node = BLAKE3(0x01 || left || right)
//
// A single-record envelope (field 4 after the body) stays as it was; Open
// reads both and nothing else. Leaves begin with the domain's first byte
// and nodes with 0x01, so a node is never taken for a leaf.
const (
	// MaxBatch bounds the records under one batch signature.
	MaxBatch = 1 << MaxProofDepth
	// MaxProofDepth bounds an inclusion proof: ceil(log2(MaxBatch)).
	MaxProofDepth = 10
)

const (
	batchLeafDomain = "blueshift/envelope-leaf/v1\x00"
	batchSignDomain = "blueshift/envelope-batch/v1\x00"
	nodePrefix      = 0x01
	hashSize        = 32
)

// Envelope fields after the body: a single signature, or the batch fields.
const (
	singleSigField protowire.Number = 4
	batchField     protowire.Number = 5
	indexField     protowire.Number = 6
	proofField     protowire.Number = 7
	batchSigField  protowire.Number = 8
)

func sigField(n uint32) protowire.Number {
	if n > 0 {
		return batchSigField
	}
	return singleSigField
}

// SealBatch validates and encodes rs and signs them together: one Ed25519
// signature over the root of their batch. keys[i] is the tree key of
// rs[i].Path. A batch of one is sealed as Seal does. It fails for more than
// MaxBatch records.
func SealBatch(rs []Record, keys []merkle.Key, priv ed25519.PrivateKey) ([]Envelope, error) {
	switch {
	case len(rs) != len(keys):
		return nil, fmt.Errorf("seal batch: %d records, %d tree keys", len(rs), len(keys))
	case len(rs) > MaxBatch:
		return nil, fmt.Errorf("seal batch of %d records: %w (limit %d)", len(rs), ErrTooLarge, MaxBatch)
	case len(rs) == 0:
		return nil, nil
	case len(rs) == 1:
		e, err := Seal(rs[0], keys[0], priv)
		if err != nil {
			return nil, err
		}
		return []Envelope{e}, nil
	case len(priv) != ed25519.PrivateKeySize:
		return nil, fmt.Errorf("seal batch: signing key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	n := uint32(len(rs))
	bodies := make([][]byte, n)
	leaves := make([][hashSize]byte, n)
	for i, r := range rs {
		body, err := encodeRecord(r)
		if err != nil {
			return nil, fmt.Errorf("seal record %q: %w", r.Path, err)
		}
		if len(body) > MaxEnvelopeSize-512-MaxProofDepth*hashSize {
			return nil, fmt.Errorf("seal record %q: body of %d bytes: %w", r.Path, len(body), ErrTooLarge)
		}
		bodies[i] = body
		leaves[i] = leafHash(kindRecord, keys[i], body)
	}
	proofs := make([][]byte, n)
	root := buildBatch(leaves, proofs)
	sig := ed25519.Sign(priv, rootMessage(n, root))
	envs := make([]Envelope, n)
	for i := range envs {
		envs[i] = encodeBatched(kindRecord, keys[i], bodies[i], n, uint32(i), proofs[i], sig)
	}
	return envs, nil
}

func encodeBatched(kind byte, key merkle.Key, body []byte, n, index uint32, proof, sig []byte) Envelope {
	raw, bodyAt := appendHead(make([]byte, 0, envelopeSize(len(body))+8+2+len(proof)), kind, key, body)
	raw = protowire.AppendTag(raw, batchField, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(n))
	raw = protowire.AppendTag(raw, indexField, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(index))
	raw = protowire.AppendTag(raw, proofField, protowire.BytesType)
	raw = protowire.AppendVarint(raw, uint64(len(proof)))
	proofAt := len(raw)
	raw = append(raw, proof...)
	raw = protowire.AppendTag(raw, batchSigField, protowire.BytesType)
	raw = protowire.AppendBytes(raw, sig)
	return Envelope{
		raw:   raw,
		kind:  kind,
		key:   key,
		body:  raw[bodyAt : bodyAt+len(body) : bodyAt+len(body)],
		sig:   raw[len(raw)-sigSize:],
		n:     n,
		index: index,
		proof: raw[proofAt : proofAt+len(proof) : proofAt+len(proof)],
		leaf:  leafOf(raw),
	}
}

// Batch returns the envelope's place in its batch: n records signed
// together and its index among them; n is 0 for an envelope signed alone.
func (e Envelope) Batch() (n, index int) { return int(e.n), int(e.index) }

// Root returns the root of the batch a batched envelope belongs to,
// computed from its leaf and proof (not verified), and false for an
// envelope signed alone.
func (e Envelope) Root() ([hashSize]byte, bool) {
	if e.n == 0 {
		return [hashSize]byte{}, false
	}
	return rootFromProof(leafHash(e.kind, e.key, e.body), e.index, e.n, e.proof), true
}

// verifyBatched checks the proof up to the root and the root's signature,
// which roots (if not nil) may already have seen verified.
func (e Envelope) verifyBatched(pub ed25519.PublicKey, roots *Roots) error {
	root, _ := e.Root()
	var k rootKey
	if roots != nil {
		k = newRootKey(pub, e.n, root, e.sig)
		if roots.has(k) {
			return nil
		}
	}
	if !ed25519.Verify(pub, rootMessage(e.n, root), e.sig) {
		return fmt.Errorf("verify record envelope %x (record %d of a batch of %d): %w", e.key[:4], e.index, e.n, ErrBadSignature)
	}
	if roots != nil {
		roots.add(k)
	}
	return nil
}

// Roots remembers batch roots whose signature verified, so the other
// records of a batch cost a few hashes each instead of an Ed25519
// verification. It keeps the last size roots. Safe for concurrent use.
type Roots struct {
	mu struct {
		gosync.Mutex
		set  map[rootKey]struct{}
		ring []rootKey
		next int
	}
	size int
}

// NewRoots returns a cache of the last size verified roots.
func NewRoots(size int) *Roots {
	r := &Roots{size: max(size, 1)}
	r.mu.set = make(map[rootKey]struct{}, r.size)
	return r
}

// Verify is e.Verify(pub), skipping the signature of a batch root this
// cache saw verified under pub with the same signature.
func (r *Roots) Verify(e Envelope, pub ed25519.PublicKey) error { return e.verify(pub, r) }

// rootKey names what was verified: the key, the batch size, the root and
// the very signature bytes (another signature of the same root is other
// envelope bytes, and is checked on its own).
type rootKey [hashSize]byte

func newRootKey(pub ed25519.PublicKey, n uint32, root [hashSize]byte, sig []byte) rootKey {
	var b [ed25519.PublicKeySize + 4 + hashSize + sigSize]byte
	at := copy(b[:], pub)
	binary.BigEndian.PutUint32(b[at:], n)
	at += 4
	at += copy(b[at:], root[:])
	copy(b[at:], sig)
	return blake3.Sum256(b[:])
}

func (r *Roots) has(k rootKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.mu.set[k]
	return ok
}

func (r *Roots) add(k rootKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.mu.set[k]; ok {
		return
	}
	if len(r.mu.ring) < r.size {
		r.mu.ring = append(r.mu.ring, k)
	} else {
		delete(r.mu.set, r.mu.ring[r.mu.next])
		r.mu.ring[r.mu.next] = k
		r.mu.next = (r.mu.next + 1) % r.size
	}
	r.mu.set[k] = struct{}{}
}

// leafHash is a record's leaf in its batch: what a single signature would
// sign, hashed under the batch leaf domain.
func leafHash(kind byte, key merkle.Key, body []byte) [hashSize]byte {
	// One Sum256 of the concatenation: a blake3.Hasher per leaf allocated
	// and cleared kilobytes of state, more than hashing a small record.
	var small [512]byte
	m := small[:0]
	if n := len(batchLeafDomain) + 1 + keySize + len(body); n > len(small) {
		m = make([]byte, 0, n)
	}
	m = append(m, batchLeafDomain...)
	m = append(m, kind)
	m = append(m, key[:]...)
	m = append(m, body...)
	return blake3.Sum256(m)
}

func nodeHash(l, r []byte) [hashSize]byte {
	var b [1 + 2*hashSize]byte
	b[0] = nodePrefix
	copy(b[1:], l)
	copy(b[1+hashSize:], r)
	return blake3.Sum256(b[:])
}

func rootMessage(n uint32, root [hashSize]byte) []byte {
	m := make([]byte, 0, len(batchSignDomain)+4+hashSize)
	m = append(m, batchSignDomain...)
	m = binary.BigEndian.AppendUint32(m, n)
	return append(m, root[:]...)
}

// split is the size of a batch tree's left subtree over n > 1 leaves: the
// largest power of two below n.
func split(n uint32) uint32 { return 1 << (bits.Len32(n-1) - 1) }

// buildBatch returns the root over leaves and appends to proofs[i] the
// sibling hashes of leaf i, deepest first.
func buildBatch(leaves [][hashSize]byte, proofs [][]byte) [hashSize]byte {
	n := uint32(len(leaves))
	if n == 1 {
		return leaves[0]
	}
	k := split(n)
	l := buildBatch(leaves[:k], proofs[:k])
	r := buildBatch(leaves[k:], proofs[k:])
	for i := range proofs[:k] {
		proofs[i] = append(proofs[i], r[:]...)
	}
	for i := range proofs[k:] {
		proofs[int(k)+i] = append(proofs[int(k)+i], l[:]...)
	}
	return nodeHash(l[:], r[:])
}

// proofDepth is the number of sibling hashes in the proof of leaf index of
// a batch of n.
func proofDepth(index, n uint32) int {
	d := 0
	for n > 1 {
		k := split(n)
		if index < k {
			n = k
		} else {
			index, n = index-k, n-k
		}
		d++
	}
	return d
}

// rootFromProof hashes leaf up its proof (proofDepth(index, n) hashes, as
// Open checked) to the batch root.
func rootFromProof(leaf [hashSize]byte, index, n uint32, proof []byte) [hashSize]byte {
	var leftSibling [MaxProofDepth]bool // per level from the top
	d := 0
	for n > 1 && d < MaxProofDepth {
		k := split(n)
		if index < k {
			n = k
		} else {
			leftSibling[d] = true
			index, n = index-k, n-k
		}
		d++
	}
	h := leaf
	for t := 0; t < d && (t+1)*hashSize <= len(proof); t++ {
		sib := proof[t*hashSize : (t+1)*hashSize]
		if leftSibling[d-1-t] {
			h = nodeHash(sib, h[:])
		} else {
			h = nodeHash(h[:], sib)
		}
	}
	return h
}

// next returns the number of the next field without consuming it, or 0.
func (d *decoder) next() protowire.Number {
	if d.err != nil {
		return 0
	}
	n, _, l := protowire.ConsumeTag(d.buf)
	if l < 0 {
		return 0
	}
	return n
}

// batch reads fields 5-7 of a batched envelope.
func (d *decoder) batch() (n, index uint32, proof []byte) {
	n = uint32(d.varint(batchField, MaxBatch))
	if d.err == nil && n < 2 {
		d.fail(fmt.Sprintf("batch of %d records", n))
		return 0, 0, nil
	}
	index = uint32(d.varint(indexField, uint64(max(n, 1)-1)))
	want := proofDepth(index, n) * hashSize
	proof = d.bytes(proofField, want, want)
	if d.err != nil {
		return 0, 0, nil
	}
	return n, index, proof
}

// Batches on the wire. Records of one batch sent together need not each
// carry the signature and the proof: Trimmed is an envelope without them
// (fields 1-6), SplitBatch gives what a receiver holding only some of a
// batch's records needs besides (the signature, and the hashes of the
// subtrees none of them is in), and JoinBatch rebuilds the exact envelopes
// from those, which then verify as any other.

// Trimmed returns a batched envelope's bytes without its proof and
// signature (a prefix of Bytes), and false for an envelope signed alone.
func (e Envelope) Trimmed() ([]byte, bool) {
	if e.n == 0 {
		return nil, false
	}
	return e.raw[:len(e.raw)-len(e.proof)-protowire.SizeTag(proofField)-protowire.SizeVarint(uint64(len(e.proof)))-
		protowire.SizeTag(batchSigField)-1-sigSize], true
}

// Signature returns the envelope's signature: its own, or its batch's.
func (e Envelope) Signature() []byte { return e.sig }

// SplitBatch returns, for envelopes of one batch (same size, root and
// signature; distinct indexes), the hashes of the maximal subtrees of the
// batch that hold none of them, in the order JoinBatch takes them.
func SplitBatch(envs []Envelope) ([][hashSize]byte, error) {
	if len(envs) == 0 || envs[0].n == 0 {
		return nil, fmt.Errorf("split batch: no batched envelope")
	}
	n := envs[0].n
	present := make(map[uint32]bool, len(envs))
	known := make(map[[2]uint32][hashSize]byte) // subtree [lo, hi) -> hash
	var root [hashSize]byte
	for i, e := range envs {
		if e.n != n || !bytesEqual(e.sig, envs[0].sig) || present[e.index] {
			return nil, fmt.Errorf("split batch: envelope %d is not of the batch of envelope 0 (or repeats an index): %w", i, ErrCorrupt)
		}
		present[e.index] = true
		r := pathNodes(leafHash(e.kind, e.key, e.body), e.index, n, e.proof, known)
		if i == 0 {
			root = r
		} else if r != root {
			return nil, fmt.Errorf("split batch: envelope %d has another root: %w", i, ErrCorrupt)
		}
	}
	var out [][hashSize]byte
	var walk func(lo, hi uint32)
	walk = func(lo, hi uint32) {
		if !anyIn(present, lo, hi) {
			out = append(out, known[[2]uint32{lo, hi}])
			return
		}
		if hi-lo == 1 {
			return
		}
		k := split(hi - lo)
		walk(lo, lo+k)
		walk(lo+k, hi)
	}
	walk(0, n)
	return out, nil
}

// pathNodes hashes leaf up its proof as rootFromProof does, noting the hash
// of every subtree it passes (its own and the siblings') in known.
func pathNodes(leaf [hashSize]byte, index, n uint32, proof []byte, known map[[2]uint32][hashSize]byte) [hashSize]byte {
	type level struct{ lo, hi, sibLo, sibHi uint32 }
	var levels [MaxProofDepth]level
	d := 0
	lo, hi := uint32(0), n
	for hi-lo > 1 && d < MaxProofDepth {
		k := split(hi - lo)
		if index < lo+k {
			levels[d] = level{lo, hi, lo + k, hi}
			hi = lo + k
		} else {
			levels[d] = level{lo, hi, lo, lo + k}
			lo += k
		}
		d++
	}
	h := leaf
	known[[2]uint32{lo, hi}] = h
	for t := 0; t < d && (t+1)*hashSize <= len(proof); t++ {
		l := levels[d-1-t]
		var sib [hashSize]byte
		copy(sib[:], proof[t*hashSize:])
		known[[2]uint32{l.sibLo, l.sibHi}] = sib
		if l.sibLo < index {
			h = nodeHash(sib[:], h[:])
		} else {
			h = nodeHash(h[:], sib[:])
		}
		known[[2]uint32{l.lo, l.hi}] = h
	}
	return h
}

func anyIn(present map[uint32]bool, lo, hi uint32) bool {
	if int(hi-lo) > len(present) {
		for i := range present {
			if i >= lo && i < hi {
				return true
			}
		}
		return false
	}
	for i := lo; i < hi; i++ {
		if present[i] {
			return true
		}
	}
	return false
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// JoinBatch rebuilds the envelopes of one batch from their trimmed bytes
// (Trimmed), the batch signature and the hashes SplitBatch gave, in the
// order of trimmed. It checks the form (one batch size, distinct indexes,
// every hash used), not the signature: Verify the envelopes it returns.
func JoinBatch(trimmed [][]byte, sig []byte, hashes [][hashSize]byte) ([]Envelope, error) {
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("join batch: no records: %w", ErrCorrupt)
	}
	if len(sig) != sigSize {
		return nil, fmt.Errorf("join batch: signature of %d bytes: %w", len(sig), ErrCorrupt)
	}
	type part struct {
		kind  byte
		key   merkle.Key
		body  []byte
		index uint32
	}
	parts := make([]part, len(trimmed))
	var n uint32
	at := make(map[uint32]int, len(trimmed)) // index -> part
	for i, raw := range trimmed {
		if len(raw) > MaxEnvelopeSize {
			return nil, fmt.Errorf("join batch: record of %d bytes: %w", len(raw), ErrTooLarge)
		}
		d := decoder{buf: raw}
		p := part{kind: byte(d.varint(1, uint64(kindSealed)))}
		if p.kind == 0 && d.err == nil {
			d.fail("body kind 0")
		}
		key := d.bytes(2, keySize, keySize)
		p.body = d.bytes(3, 1, MaxEnvelopeSize)
		pn := uint32(d.varint(batchField, MaxBatch))
		if d.err == nil && (pn < 2 || (n != 0 && pn != n)) {
			d.fail(fmt.Sprintf("batch of %d records among batches of %d", pn, n))
		}
		n = pn
		p.index = uint32(d.varint(indexField, uint64(max(n, 1)-1)))
		if d.err == nil && len(d.buf) > 0 {
			d.fail(fmt.Sprintf("%d bytes after the batch index", len(d.buf)))
		}
		if _, dup := at[p.index]; d.err == nil && dup {
			d.fail(fmt.Sprintf("index %d twice", p.index))
		}
		if d.err != nil {
			return nil, fmt.Errorf("join batch: record %d: %w", i, d.err)
		}
		copy(p.key[:], key)
		parts[i] = p
		at[p.index] = i
	}
	if len(hashes) > int(n) {
		return nil, fmt.Errorf("join batch: %d hashes for a batch of %d: %w", len(hashes), n, ErrCorrupt)
	}
	proofs := make([][]byte, len(parts))
	present := presentOf(at)
	var bad error
	var build func(lo, hi uint32) [hashSize]byte
	build = func(lo, hi uint32) [hashSize]byte {
		if bad != nil {
			return [hashSize]byte{}
		}
		if hi-lo == 1 {
			if i, ok := at[lo]; ok {
				p := parts[i]
				return leafHash(p.kind, p.key, p.body)
			}
		}
		if !anyIn(present, lo, hi) {
			if len(hashes) == 0 {
				bad = fmt.Errorf("join batch: too few hashes: %w", ErrCorrupt)
				return [hashSize]byte{}
			}
			h := hashes[0]
			hashes = hashes[1:]
			return h
		}
		k := split(hi - lo)
		l, r := build(lo, lo+k), build(lo+k, hi)
		for idx, i := range at {
			switch {
			case idx >= lo && idx < lo+k:
				proofs[i] = append(proofs[i], r[:]...)
			case idx >= lo+k && idx < hi:
				proofs[i] = append(proofs[i], l[:]...)
			}
		}
		return nodeHash(l[:], r[:])
	}
	build(0, n)
	if bad == nil && len(hashes) > 0 {
		bad = fmt.Errorf("join batch: %d hashes left over: %w", len(hashes), ErrCorrupt)
	}
	if bad != nil {
		return nil, bad
	}
	envs := make([]Envelope, len(parts))
	for i, p := range parts {
		envs[i] = encodeBatched(p.kind, p.key, p.body, n, p.index, proofs[i], sig)
	}
	return envs, nil
}

// presentOf is the set of indexes at holds.
func presentOf(at map[uint32]int) map[uint32]bool {
	m := make(map[uint32]bool, len(at))
	for i := range at {
		m[i] = true
	}
	return m
}
