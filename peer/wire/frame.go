package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"weak"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// Limits on what a peer may send. Every one is checked before allocating.
const (
	HeaderSize   = 4        // the frame's length prefix
	MaxFrameSize = 16 << 20 // bytes after the length prefix
	// MaxFields bounds the protobuf fields (at every depth) of one frame, so a
	// frame of tiny empty elements cannot make protobuf allocate ~50x its size.
	MaxFields = 1 << 18

	MaxNameLen       = 256 // Hello.DeviceName, bytes
	MaxCapabilities  = 64
	MaxCapabilityLen = 64
	MaxSealedInvites = 8    // per Hello
	MaxSealedInvite  = 1024 // bytes each
	MaxCodePake      = 1024 // bytes of a PAKE message in CodeRequest/CodeResponse
	MaxCodeLocator   = 8    // characters of CodeRequest.locator
	MaxTextLen       = 1024 // Close.Reason, ErrorResponse.Message, bytes
	MaxPrefixes      = 4096 // per NodesRequest
	MaxNodes         = 4096 // per NodesResponse
	MaxEntries       = 4096 // per bucket node
	MaxKeys          = 4096 // per RecordsRequest
	MaxRecords       = 4096 // per RecordsResponse or RecordPush
	MaxRecordSize    = 8 << 20
	MaxBlockSize     = 1 << 20 // BlockRequest.Size (chunks are at most 256 KiB today)
	MaxBlockData     = MaxBlockSize + 64<<10
	MaxInline        = 64 << 10 // RecordData.Content
	MaxSignatureSize = 256 << 10

	// typicalBlockFrame is the least size of a large frame buffer, so that a
	// released one fits the next block frame.
	typicalBlockFrame = 256<<10 + 1<<10
)

var (
	// ErrMalformed wraps every reason a received frame is refused: the peer
	// broke the protocol (or the bytes were damaged). Drop the connection.
	ErrMalformed = errors.New("malformed frame")
	// ErrInvalid: a message we were asked to send breaks a limit or rule.
	ErrInvalid = errors.New("invalid message")
)

// Message is one of the message types of this package (always a pointer:
// *Hello, *NodesRequest, ...).
type Message interface {
	validate() error
	toPB(*wirepb.Envelope)
}

// Frame is what one frame carries: a message and the request ID it belongs to.
type Frame struct {
	ID  uint64
	Msg Message
}

// AppendFrame appends f, length prefix included, to dst.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	if err := checkFrame(f); err != nil {
		return dst, fmt.Errorf("encode frame: %w: %w", err, ErrInvalid)
	}
	env := &wirepb.Envelope{Id: f.ID}
	f.Msg.toPB(env)
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, env)
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s: %w", Name(f.Msg), err)
	}
	n := len(dst) - start - HeaderSize
	if n > MaxFrameSize {
		return dst[:start], fmt.Errorf("encode %s: %d bytes exceed the frame limit %d: %w", Name(f.Msg), n, MaxFrameSize, ErrInvalid)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// WriteFrame writes f to w in one Write call.
func WriteFrame(w io.Writer, f Frame) error {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Decode reads one frame body (without its length prefix) and checks it.
func Decode(b []byte) (Frame, error) {
	if len(b) > MaxFrameSize {
		return Frame{}, fmt.Errorf("frame of %d bytes exceeds %d: %w", len(b), MaxFrameSize, ErrMalformed)
	}
	if err := countFields(b); err != nil {
		return Frame{}, fmt.Errorf("decode frame: %v: %w", err, ErrMalformed)
	}
	var env wirepb.Envelope
	if err := proto.Unmarshal(b, &env); err != nil {
		return Frame{}, fmt.Errorf("decode frame: %v: %w", err, ErrMalformed)
	}
	m, err := fromPB(&env)
	if err != nil {
		return Frame{}, fmt.Errorf("decode frame: %v: %w", err, ErrMalformed)
	}
	f := Frame{ID: env.Id, Msg: m}
	if err := checkFrame(f); err != nil {
		return Frame{}, fmt.Errorf("decode frame: %v: %w", err, ErrMalformed)
	}
	return f, nil
}

// Reader reads frames from a stream. It keeps one 32 KiB buffer for small
// frames; a larger frame is read into a buffer of its own, which goes back
// to the Reader once decoded (protobuf copies what it keeps), or for a
// BlockResponse, whose Data it is, at Release. Not safe for concurrent use.
type Reader struct {
	r   io.Reader
	hdr [HeaderSize]byte
	buf []byte
	// free holds large frame buffers given back by BlockResponse.Release. A
	// sync.Pool: the garbage collector empties it when the connection idles.
	free sync.Pool // of *[]byte
	// spare is the buffer of the last large frame protobuf copied out of,
	// held weakly for the same reason. Not in free: under the race detector
	// a sync.Pool drops a quarter of what it is given, on purpose, and a
	// frame after a dropped buffer grows a new one (CI saw 2x garbage).
	spare weak.Pointer[[]byte]
}

// NewReader returns a Reader of r. Give it a buffered r: it reads the length
// prefix and the body in two calls.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r}
}

// ReadFrame reads and decodes the next frame. It returns io.EOF at a clean
// end between frames, an error wrapping io.ErrUnexpectedEOF inside one, and
// ErrMalformed for a frame the protocol does not allow.
func (r *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if err == io.EOF {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("read frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(r.hdr[:])
	if n == 0 || n > MaxFrameSize {
		return Frame{}, fmt.Errorf("read frame: length %d outside 1..%d: %w", n, MaxFrameSize, ErrMalformed)
	}
	if n >= aliasMin {
		// A large frame gets its own buffer, which a decoded BlockResponse
		// keeps as its Data instead of a copy.
		b, err := r.readLarge(int(n))
		if err != nil {
			return Frame{}, err
		}
		if f, ok := decodeBlockResponse(b); ok {
			f.Msg.(*BlockResponse).release = func() { r.free.Put(&b) }
			return f, nil
		}
		// Anything else is copied out of b by protobuf: b serves the next
		// large frame. (A new 8 MiB buffer grows through 256 KiB..4 MiB
		// ones, ~2x the frame in garbage: a first sync of small files,
		// whose records come 8 MiB of contents at a time, made 1 GB of it.)
		f, err := Decode(b)
		r.spare = weak.Make(&b)
		return f, err
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, aliasMin)
	}
	b := r.buf[:n]
	if err := r.readBody(b); err != nil {
		return Frame{}, err
	}
	return Decode(b)
}

// readLarge reads a frame body of n bytes into a buffer of its own,
// reusing a released one if it fits. A new buffer grows with the bytes that
// arrive, past a typical block frame: a peer's length prefix alone never
// makes us set aside 16 MiB (on QUIC it could otherwise do so on every
// request stream at once without sending the bytes).
func (r *Reader) readLarge(n int) ([]byte, error) {
	if p := r.spare.Value(); p != nil && cap(*p) >= n {
		r.spare = weak.Pointer[[]byte]{}
		b := (*p)[:n]
		return b, r.readBody(b)
	}
	if p, ok := r.free.Get().(*[]byte); ok && cap(*p) >= n {
		b := (*p)[:n]
		return b, r.readBody(b)
	}
	b := make([]byte, 0, typicalBlockFrame)
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n, 2*cap(b))-len(b))
		}
		m := min(n, cap(b))
		if _, err := io.ReadFull(r.r, b[len(b):m]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read frame of %d bytes: %w", n, err)
		}
		b = b[:m]
	}
	return b, nil
}

func (r *Reader) readBody(b []byte) error {
	if _, err := io.ReadFull(r.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read frame of %d bytes: %w", len(b), err)
	}
	return nil
}

// checkFrame enforces the ID rules and the message's limits.
func checkFrame(f Frame) error {
	if f.Msg == nil {
		return fmt.Errorf("frame without a message")
	}
	switch f.Msg.(type) {
	case *Ping, *Pong:
	case *NodesRequest, *RecordsRequest, *BlockRequest, *JoinRequest, *CodeRequest, *PunchRequest, *MembersRequest, *Introduction, *RelayInvite,
		*NodesResponse, *RecordsResponse, *BlockResponse, *JoinResponse, *CodeResponse, *PunchResponse, *MembersResponse, *IntroductionAck, *RelayInviteAck, *ErrorResponse,
		*VaultPut, *VaultPutAck, *VaultList, *VaultListResponse, *VaultGet, *VaultGetResponse, *VaultBlocks, *VaultBlocksResponse, *VaultAddrs, *VaultAddrsAck,
		*MulticastWant, *MulticastOffer, *MulticastReady, *MulticastStart, *MulticastReport, *MulticastStatus,
		*PatchRequest, *PatchResponse, *ReflateRequest, *ReflateResponse,
		*SwarmTicketRequest, *SwarmTicketResponse, *SwarmOpen, *SwarmOpened,
		*RendezvousOffer, *RendezvousAck, *RendezvousFind, *RendezvousFound:
		if f.ID == 0 {
			return fmt.Errorf("%s without a request ID", Name(f.Msg))
		}
	default:
		if f.ID != 0 {
			return fmt.Errorf("one-way %s with request ID %d", Name(f.Msg), f.ID)
		}
	}
	return f.Msg.validate()
}

// countFields walks the frame's protobuf encoding with the schema and fails
// once it has seen MaxFields fields, before protobuf allocates anything.
func countFields(b []byte) error {
	n := 0
	return walkFields(b, (&wirepb.Envelope{}).ProtoReflect().Descriptor(), &n, 0)
}

func walkFields(b []byte, md protoreflect.MessageDescriptor, n *int, depth int) error {
	if depth > 8 { // our schema nests 4 deep
		return fmt.Errorf("messages nested too deep")
	}
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return protowire.ParseError(tl)
		}
		if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
			return fmt.Errorf("groups are not part of the protocol")
		}
		vl := protowire.ConsumeFieldValue(num, typ, b[tl:])
		if vl < 0 {
			return protowire.ParseError(vl)
		}
		if *n++; *n > MaxFields {
			return fmt.Errorf("more than %d fields in one frame", MaxFields)
		}
		if typ == protowire.BytesType {
			if fd := md.Fields().ByNumber(num); fd != nil && fd.Message() != nil {
				v, _ := protowire.ConsumeBytes(b[tl:])
				if err := walkFields(v, fd.Message(), n, depth+1); err != nil {
					return err
				}
			}
		}
		b = b[tl+vl:]
	}
	return nil
}
