package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// A dishonest relay: it forwards a's TLS records to b, and once armed,
// changes one byte of the next record, or sends it twice.
type badRelay int

const (
	flipByte badRelay = iota
	replayRecord
	dropRecord
)

func (b badRelay) String() string {
	return [...]string{"flips a byte", "replays a record", "drops a record"}[b]
}

// forward copies TLS records from src to dst, misbehaving once armed.
func (b badRelay) forward(dst, src net.Conn, armed *atomic.Bool) {
	done := false
	for {
		head := make([]byte, 5)
		if _, err := io.ReadFull(src, head); err != nil {
			dst.Close()
			return
		}
		body := make([]byte, binary.BigEndian.Uint16(head[3:]))
		if _, err := io.ReadFull(src, body); err != nil {
			dst.Close()
			return
		}
		rec := append(head, body...)
		if armed.Load() && !done {
			done = true
			switch b {
			case flipByte:
				rec[len(rec)/2] ^= 0x20
			case replayRecord:
				rec = append(rec, rec...)
			case dropRecord:
				continue
			}
		}
		if _, err := dst.Write(rec); err != nil {
			return
		}
	}
}

// TestRelayThatTampersBreaksTheSession: the inner TLS of a relayed stream
// fails when the relay changes, replays or drops a record, and the reader
// is handed none of the changed, replayed or later bytes.
func TestRelayThatTampersBreaksTheSession(t *testing.T) {
	for _, bad := range []badRelay{flipByte, replayRecord, dropRecord} {
		t.Run(bad.String(), func(t *testing.T) {
			a, b, p := newID(t), newID(t), newID(t)
			sa, sb, armed, stop := tamperedPair(t, a, b, p, bad)
			defer stop()
			first, second := []byte("first message, delivered intact"), []byte("second message: "+marker)
			armed.Store(false)
			if _, err := sa.Write(first); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(first))
			if _, err := io.ReadFull(sb, got); err != nil || string(got) != string(first) {
				t.Fatalf("before tampering, b read %q, %v", got, err)
			}
			armed.Store(true)
			if bad == dropRecord {
				// The dropped record is the first; the second then arrives
				// out of sequence.
				sa.Write(first)
			}
			sa.Write(second)
			sb.SetReadDeadline(time.Now().Add(20 * time.Second))
			var read []byte
			buf := make([]byte, 1024)
			var err error
			for err == nil {
				var n int
				n, err = sb.Read(buf)
				read = append(read, buf[:n]...)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("b's session ended with %v, want a TLS error", err)
			}
			if bad == replayRecord {
				if string(read) != string(second) {
					t.Fatalf("b read %q before the replay failed the session, want the second message once", read)
				}
			} else if len(read) != 0 {
				t.Fatalf("b was handed %q from a tampered session", read)
			}
			t.Logf("b's session failed: %v", err)
		})
	}
}

// TestRelayedTLSIsPinned: a relay that connects a to a device other than
// the one a asked for fails a's handshake with ErrWrongPeer.
func TestRelayedTLSIsPinned(t *testing.T) {
	a, b, c, p := newID(t), newID(t), newID(t), newID(t)
	x, y := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var cerr error
	wg.Go(func() {
		s, err := conn.NewTLS(c, testLogger(t)).Relayed(ctx, y, a.ID(), p.ID(), false)
		if err == nil {
			s.Close()
		}
		cerr = err
	})
	_, err := conn.NewTLS(a, testLogger(t)).Relayed(ctx, x, b.ID(), p.ID(), true)
	x.Close()
	wg.Wait()
	y.Close()
	if !errors.Is(err, conn.ErrWrongPeer) {
		t.Fatalf("a, relayed to c while asking for b: %v, want ErrWrongPeer (c's side: %v)", err, cerr)
	}
}

// tamperedPair makes a relayed TLS pair a-b over TCP on 127.0.0.1, a's
// records to b going through bad.
func tamperedPair(t *testing.T, a, b, p *identity.Identity, bad badRelay) (sa, sb conn.Stream, armed *atomic.Bool, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	armed = new(atomic.Bool)
	// a <-> relay end 1 ... relay end 2 <-> b: two TCP connections spliced
	// by the forwarders.
	aRaw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	relayA, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	bRaw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	relayB, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { bad.forward(relayB, relayA, armed) })
	wg.Go(func() { flipByte.forward(relayA, relayB, new(atomic.Bool)) }) // b to a: honest
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var berr error
	var hs sync.WaitGroup
	hs.Go(func() { sb, berr = conn.NewTLS(b, testLogger(t)).Relayed(ctx, bRaw, a.ID(), p.ID(), false) })
	sa, err = conn.NewTLS(a, testLogger(t)).Relayed(ctx, aRaw, b.ID(), p.ID(), true)
	hs.Wait()
	if err != nil || berr != nil {
		t.Fatalf("handshake through an honest relay: a %v, b %v", err, berr)
	}
	return sa, sb, armed, func() {
		sa.Close()
		sb.Close()
		relayA.Close()
		relayB.Close()
		wg.Wait()
	}
}
