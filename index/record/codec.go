package record

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record/recordpb"
)

// Validate reports the first rule r breaks, wrapped in ErrInvalidRecord
// (and ErrInvalidPath for a bad path), or nil.
func (r Record) Validate() error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidRecord, r.Path, err)
	}
	return nil
}

func (r Record) validate() error {
	if _, err := ParsePath(string(r.Path)); err != nil {
		return err
	}
	switch {
	case r.Kind < File || r.Kind > Symlink:
		return fmt.Errorf("unknown kind %d", r.Kind)
	case r.Mode&^0o777 != 0:
		return fmt.Errorf("mode %#o has bits outside 0777", r.Mode)
	case r.Size < 0:
		return fmt.Errorf("negative size %d", r.Size)
	case len(r.Version) == 0:
		return fmt.Errorf("empty version vector")
	case len(r.Version) > MaxVectorLen:
		return fmt.Errorf("version vector of %d devices, limit %d", len(r.Version), MaxVectorLen)
	case r.ModifiedBy == 0:
		return fmt.Errorf("no modifying device")
	}
	if err := r.Version.check(); err != nil {
		return err
	}
	if r.Version.Get(r.ModifiedBy) == 0 {
		return fmt.Errorf("modifying device %016x is not in the version vector %v", uint64(r.ModifiedBy), r.Version)
	}
	if r.Deleted || r.Kind != File {
		what := "a " + r.Kind.String()
		if r.Deleted {
			what = "a deleted record"
		}
		switch {
		case r.Size != 0:
			return fmt.Errorf("%s has size %d", what, r.Size)
		case len(r.Blocks) != 0:
			return fmt.Errorf("%s has %d blocks", what, len(r.Blocks))
		case !r.FileHash.IsZero():
			return fmt.Errorf("%s has a file hash", what)
		}
	}
	if r.Deleted || r.Kind != Symlink {
		if r.Target != "" {
			return fmt.Errorf("only a live symlink has a target")
		}
		return r.checkBlocks()
	}
	switch {
	case r.Target == "":
		return fmt.Errorf("symlink without a target")
	case len(r.Target) > MaxTargetLen:
		return fmt.Errorf("symlink target of %d bytes, limit %d", len(r.Target), MaxTargetLen)
	}
	for i := 0; i < len(r.Target); i++ {
		if r.Target[i] == 0 {
			return fmt.Errorf("symlink target contains NUL")
		}
	}
	return nil
}

// checkBlocks checks that block sizes are sane and add up to Size.
func (r Record) checkBlocks() error {
	if len(r.Blocks) > MaxBlocks {
		return fmt.Errorf("%d blocks, limit %d", len(r.Blocks), MaxBlocks)
	}
	var sum int64
	for i, b := range r.Blocks {
		if b.Size == 0 || b.Size > MaxBlockSize {
			return fmt.Errorf("block %d has size %d, want 1..%d", i, b.Size, MaxBlockSize)
		}
		sum += int64(b.Size)
	}
	if sum != r.Size {
		return fmt.Errorf("blocks add up to %d bytes, size says %d", sum, r.Size)
	}
	return nil
}

// encodeRecord validates r and returns its body encoding.
func encodeRecord(r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	m := &recordpb.Record{
		Path:        string(r.Path),
		Kind:        recordpb.Kind(r.Kind),
		Size:        r.Size,
		Mode:        r.Mode,
		ModTimeSec:  r.ModTime.Unix(),
		ModTimeNsec: uint32(r.ModTime.Nanosecond()),
		Deleted:     r.Deleted,
		ModifiedBy:  uint64(r.ModifiedBy),
	}
	if len(r.Blocks) > 0 {
		m.BlockHashes = make([]byte, 0, len(r.Blocks)*block.Size)
		m.BlockSizes = make([]uint32, 0, len(r.Blocks))
		for _, b := range r.Blocks {
			m.BlockHashes = append(m.BlockHashes, b.Hash[:]...)
			m.BlockSizes = append(m.BlockSizes, b.Size)
		}
	}
	if !r.FileHash.IsZero() {
		m.FileHash = r.FileHash[:]
	}
	if r.Target != "" {
		m.Target = []byte(r.Target)
	}
	m.Version = make([]*recordpb.Counter, len(r.Version))
	for i, c := range r.Version {
		m.Version[i] = &recordpb.Counter{Device: uint64(c.Device), Value: c.Value}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode record %q: %w", r.Path, err)
	}
	return b, nil
}

// decodeRecord decodes and validates a body. Errors wrap ErrCorrupt.
func decodeRecord(body []byte) (Record, error) {
	if err := prescan(body); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	var m recordpb.Record
	if err := proto.Unmarshal(body, &m); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	r, err := fromProto(&m)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return r, nil
}

func fromProto(m *recordpb.Record) (Record, error) {
	switch {
	case len(m.BlockHashes)%block.Size != 0:
		return Record{}, fmt.Errorf("block hashes of %d bytes, not a multiple of %d", len(m.BlockHashes), block.Size)
	case len(m.BlockHashes)/block.Size != len(m.BlockSizes):
		return Record{}, fmt.Errorf("%d block hashes but %d block sizes", len(m.BlockHashes)/block.Size, len(m.BlockSizes))
	case m.ModTimeNsec >= 1e9:
		return Record{}, fmt.Errorf("modification time nanoseconds %d out of range", m.ModTimeNsec)
	case m.Kind < 0 || m.Kind > 255:
		return Record{}, fmt.Errorf("unknown kind %d", m.Kind)
	}
	r := Record{
		Path:       Path(m.Path),
		Kind:       Kind(m.Kind),
		Size:       m.Size,
		Mode:       m.Mode,
		ModTime:    time.Unix(m.ModTimeSec, int64(m.ModTimeNsec)).UTC(),
		Target:     string(m.Target),
		Deleted:    m.Deleted,
		ModifiedBy: Device(m.ModifiedBy),
	}
	if len(m.BlockSizes) > 0 {
		r.Blocks = make([]BlockRef, len(m.BlockSizes))
		for i := range r.Blocks {
			r.Blocks[i] = BlockRef{Hash: block.Hash(m.BlockHashes[i*block.Size:]), Size: m.BlockSizes[i]}
		}
	}
	switch len(m.FileHash) {
	case 0:
	case block.Size:
		r.FileHash = block.Hash(m.FileHash)
	default:
		return Record{}, fmt.Errorf("file hash of %d bytes", len(m.FileHash))
	}
	r.Version = make(Vector, len(m.Version))
	for i, c := range m.Version {
		r.Version[i] = Counter{Device: Device(c.Device), Value: c.Value}
	}
	return r, nil
}

// Field numbers of recordpb.Record that prescan bounds.
const (
	fieldPath        = 1
	fieldBlockHashes = 7
	fieldBlockSizes  = 8
	fieldFileHash    = 9
	fieldTarget      = 10
	fieldVersion     = 11
	maxCounterLen    = 2 * 11 // two fields, each a tag and at most 10 bytes
)

// prescan walks the body's top-level fields and checks every length and
// repeat count against its limit before proto.Unmarshal allocates for them.
// A repeated field may appear more than once (protobuf concatenates), so
// counts are summed.
func prescan(b []byte) error {
	var hashBytes, sizes, counters int
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if num == fieldBlockSizes && typ == protowire.VarintType {
				sizes++
			}
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			if sizes > MaxBlocks {
				return fmt.Errorf("more than %d block sizes: %w", MaxBlocks, ErrTooLarge)
			}
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		limit := -1
		switch num {
		case fieldPath:
			limit = MaxPathLen
		case fieldBlockHashes:
			hashBytes += len(v)
			limit = MaxBlocks*block.Size - (hashBytes - len(v))
		case fieldBlockSizes:
			for p := v; len(p) > 0; sizes++ {
				_, k := protowire.ConsumeVarint(p)
				if k < 0 {
					return fmt.Errorf("block sizes: %w", protowire.ParseError(k))
				}
				p = p[k:]
			}
			if sizes > MaxBlocks {
				return fmt.Errorf("more than %d block sizes: %w", MaxBlocks, ErrTooLarge)
			}
		case fieldFileHash:
			limit = block.Size
		case fieldTarget:
			limit = MaxTargetLen
		case fieldVersion:
			counters++
			limit = maxCounterLen
			if counters > MaxVectorLen {
				return fmt.Errorf("more than %d version counters: %w", MaxVectorLen, ErrTooLarge)
			}
		}
		if limit >= 0 && len(v) > limit {
			return fmt.Errorf("field %d of %d bytes, limit %d: %w", num, len(v), limit, ErrTooLarge)
		}
	}
	return nil
}
