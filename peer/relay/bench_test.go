package relay

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// BenchmarkRelayedVsDirect moves 8 MiB rounds from a to b over a relayed
// stream (TLS inside TLS, spliced by p, no rate cap) and, in alternating
// rounds of the same run, over a direct TLS stream on the same loopback:
// the "relayed/direct" metric is the relayed throughput as a fraction of
// the direct one.
func BenchmarkRelayedVsDirect(b *testing.B) {
	const round = 8 << 20
	w := newWorld(b, Options{Rate: -1})
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	relayed, err := w.ca.Dial(ctx, w.p.ID(), w.pAddr, w.b.ID())
	if err != nil {
		b.Fatal(err)
	}
	defer relayed.Close()
	relayedB, err := w.cb.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer relayedB.Close()

	btls := conn.NewTLS(w.b, quiet)
	ln, err := btls.Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	direct, err := conn.NewTLS(w.a, quiet).Dial(ctx, ln.Addr().String(), w.b.ID())
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	directB, err := ln.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer directB.Close()

	buf := make([]byte, 64<<10)
	move := func(src, dst net.Conn) time.Duration {
		began := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, dst, round)
			done <- err
		}()
		for sent := 0; sent < round; sent += len(buf) {
			if _, err := src.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return time.Since(began)
	}
	var tRelayed, tDirect time.Duration
	b.SetBytes(round)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tRelayed += move(relayed, relayedB)
		tDirect += move(direct, directB)
	}
	b.ReportMetric(tDirect.Seconds()/tRelayed.Seconds(), "relayed/direct")
	b.ReportMetric(float64(round)*float64(b.N)/tRelayed.Seconds()/1e6, "relayed-MB/s")
}
