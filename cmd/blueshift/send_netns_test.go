package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// sendWorld is a send across NATs: p, a public device that shares nothing
// with anyone, and a (the sender) and b (the receiver), each behind its
// own home router (NAT, and a firewall that lets in replies only),
// unpaired, with nothing in common.
type sendWorld struct {
	in      *netns.Internet
	p, a, b *device
	point   string // p's address, the rendezvous
}

func newSendWorld(t *testing.T, prefix string, symmetric bool) *sendWorld {
	return newMeetWorld(t, prefix, symmetric, false)
}

// newMeetWorld is newSendWorld; with dht, p is a plain daemon (not a
// rendezvous) whose DHT node is the bootstrap of a's and b's, and every
// daemon runs the DHT.
func newMeetWorld(t *testing.T, prefix string, symmetric, dht bool) *sendWorld {
	in := newInternet(t, prefix)
	ctx := context.Background()
	if symmetric {
		for i := range in.Homes {
			if err := in.Symmetric(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := &sendWorld{in: in, point: in.Public[0].IP + ":22100"}
	w.p, w.a, w.b = newDevice(t, "p"), newDevice(t, "a"), newDevice(t, "b")
	run := func(d *device, ns string, extra ...string) {
		d.startInNetns(ns, append([]string{"--listen", ":22100", "--no-discovery", "--ui", "off", "--log-level", "debug"}, extra...)...)
	}
	if dht {
		// The DHT node listens on the peer port + 1; p bootstraps from
		// itself: no node outside these namespaces is ever asked.
		boot := in.Public[0].IP + ":22101"
		run(w.p, in.Public[0].NS, "--bootstrap", boot)
		run(w.a, in.Homes[0].Device.NS, "--bootstrap", boot)
		run(w.b, in.Homes[1].Device.NS, "--bootstrap", boot)
	} else {
		run(w.p, in.Public[0].NS, "--no-dht", "--rendezvous")
		run(w.a, in.Homes[0].Device.NS, "--no-dht")
		run(w.b, in.Homes[1].Device.NS, "--no-dht")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("p:\n%s\na:\n%s\nb:\n%s", w.p.logText(), w.a.logText(), w.b.logText())
		}
	})
	return w
}

// receive runs `receive CODE DIR --rendezvous P` for b and returns its
// output and error when it ends.
func (w *sendWorld) receive(t *testing.T, code, into string, timeout time.Duration, extra ...string) (string, error) {
	t.Helper()
	os.MkdirAll(into, 0o755)
	if extra == nil {
		extra = []string{"--rendezvous", w.point}
	}
	cmd := exec.Command(bin, append([]string{"--home", w.b.home, "receive", code, into, "--json", "--timeout", timeout.String()}, extra...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestNetnsSendAcrossNATs: a sends a 16 MiB file by code to b; both are
// behind home routers that masquerade and let in replies only, unpaired,
// with no device in common. They meet at p (--rendezvous on both sides),
// which knows neither and shares nothing: p tells each where it sees the
// other, a punches, b dials through. The file arrives intact over a direct
// QUIC connection between the two homes: a's router forwarded the file
// straight to b's, and what it exchanged with p is a small fraction of it.
func TestNetnsSendAcrossNATs(t *testing.T) {
	t.Parallel()
	w := newSendWorld(t, "bsns-s", false)
	ctx := context.Background()
	work := t.TempDir()
	const size = 16 << 20
	randomFile(t, filepath.Join(work, "src", "big.bin"), size)
	s := startSend(t, w.a, filepath.Join(work, "src"), "big.bin", "--rendezvous", w.point)

	public0, direct0, err := w.in.Forwarded(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	into := filepath.Join(work, "into")
	out, err := w.receive(t, s.offer.Code, into, 3*reachDeadline)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("receive across NATs: %v\n%s", err, out)
	}
	// The send's working folder (.blueshift-send-*) stays in src until the
	// send ends: compare once it has.
	if err := s.wait(t); err != nil {
		t.Fatalf("send: %v\n%s", err, s.err)
	}
	if diff := treeDiff(tree(t, filepath.Join(work, "src")), tree(t, into)); diff != "" {
		t.Fatalf("after the receive across NATs: %s", diff)
	}
	public, direct, err := w.in.Forwarded(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	viaP, straight := public-public0, direct-direct0
	t.Logf("a %d-byte file sent across two NATs in %v: a's router forwarded %d bytes to and from p (%.4f of the file) and %d straight to and from b's home (%.3f of the file)",
		size, took.Round(time.Millisecond), viaP, float64(viaP)/size, straight, float64(straight)/size)
	if straight < size {
		t.Errorf("a's router forwarded %d bytes to the other home, less than the %d-byte file: the file did not go straight", straight, size)
	}
	if viaP > size/20 {
		t.Errorf("a's router forwarded %d bytes to and from p during a %d-byte send: the data went through p", viaP, size)
	}
	// b's daemon connected to a's router's address over QUIC: the punched
	// way, not a relay (p relays nothing for them: see the test below).
	connected := regexp.MustCompile(`msg=connected .*addr=` + regexp.QuoteMeta(w.in.Homes[0].WAN) + `:\d+ .*transport=quic`)
	if !connected.MatchString(w.b.logText()) {
		t.Errorf("b's daemon never connected to a at a's router's address %s over QUIC", w.in.Homes[0].WAN)
	}
}

// TestNetnsSendSymmetricNATsFails: the same, with both routers mapping
// each destination to a port of its own (symmetric NATs): no punch gets
// through and p, which shares nothing with either, relays nothing. The
// receive ends, soon, with an error that says the sender was found, why
// it was not reached, that no relay serves devices sharing nothing, and
// what to do; nothing arrives.
func TestNetnsSendSymmetricNATsFails(t *testing.T) {
	t.Parallel()
	w := newSendWorld(t, "bsns-y", true)
	work := t.TempDir()
	randomFile(t, filepath.Join(work, "src", "big.bin"), 1<<20)
	s := startSend(t, w.a, filepath.Join(work, "src"), "big.bin", "--rendezvous", w.point)
	began := time.Now()
	into := filepath.Join(work, "into")
	out, err := w.receive(t, s.offer.Code, into, 3*reachDeadline)
	took := time.Since(began)
	t.Logf("receive between symmetric NATs ended after %v: %v\n%s", took.Round(time.Millisecond), err, out)
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("receive between symmetric NATs: %v, want exit 1", err)
	}
	for _, want := range []string{"was found at", "quic://" + w.in.Homes[0].WAN + ":", "symmetric", "relays only for members", "--addr"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if took >= 3*reachDeadline {
		t.Errorf("the receive ran into its --timeout (%v) instead of failing", took)
	}
	entries, _ := os.ReadDir(into)
	for _, e := range entries {
		t.Errorf("%s appeared in the receive folder after a failed receive", e.Name())
	}
	st, ok := w.p.status()
	if !ok {
		t.Fatal("p does not answer")
	}
	if st.Relay != nil && st.Relay.Bytes > 0 {
		t.Errorf("p relayed %d bytes for devices that share nothing with it", st.Relay.Bytes)
	}
}

// TestNetnsSendAcrossNATsByDHT: the same send with no server at all: p
// is a plain daemon (no --rendezvous) that only bootstraps a's and b's
// DHT nodes, and neither send nor receive names it. a publishes where it
// is under the code's DHT key, b finds it there and publishes where it
// is, a punches towards that, b dials through. The file goes straight
// from home to home; what a's router exchanged with p (the DHT's packets)
// is a small fraction of it. Before, a code nobody sends under fails
// with an error that says where the receive looked and what to try.
func TestNetnsSendAcrossNATsByDHT(t *testing.T) {
	t.Parallel()
	w := newMeetWorld(t, "bsns-d", false, true)
	ctx := context.Background()
	work := t.TempDir()
	const size = 16 << 20
	randomFile(t, filepath.Join(work, "src", "big.bin"), size)
	s := startSend(t, w.a, filepath.Join(work, "src"), "big.bin")

	// A code nobody sends under: the receive looks on the LAN and in the
	// DHT, then fails saying where it looked and what to try.
	wrong := "ZZZZZ-ZZZZZ"
	if s.offer.Code[:4] == "ZZZZ" {
		wrong = "YYYYY-YYYYY"
	}
	out, err := w.receive(t, wrong, filepath.Join(work, "wrong"), 3*reachDeadline, []string{}...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("receive of a code nobody sends under: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"the LAN", "the DHT: no send under this code", "--rendezvous", "--addr"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error for a code nobody sends under does not say %q:\n%s", want, out)
		}
	}

	public0, direct0, err := w.in.Forwarded(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(work, "into")
	out, err = w.receive(t, s.offer.Code, into, 3*reachDeadline, []string{}...)
	if err != nil {
		t.Fatalf("receive across NATs by the DHT: %v\n%s", err, out)
	}
	// The send's working folder (.blueshift-send-*) stays in src until the
	// send ends: compare once it has.
	if err := s.wait(t); err != nil {
		t.Fatalf("send: %v\n%s", err, s.err)
	}
	if diff := treeDiff(tree(t, filepath.Join(work, "src")), tree(t, into)); diff != "" {
		t.Fatalf("after the receive across NATs by the DHT: %s", diff)
	}
	public, direct, err := w.in.Forwarded(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	viaP, straight := public-public0, direct-direct0
	t.Logf("a %d-byte file sent across two NATs met in the DHT: a's router forwarded %d bytes to and from p (%.4f of the file) and %d straight to and from b's home (%.3f of the file)",
		size, viaP, float64(viaP)/size, straight, float64(straight)/size)
	if straight < size {
		t.Errorf("a's router forwarded %d bytes to the other home, less than the %d-byte file: the file did not go straight", straight, size)
	}
	if viaP > size/20 {
		t.Errorf("a's router forwarded %d bytes to and from p during a %d-byte send: the data went through p", viaP, size)
	}
	for _, want := range []string{"receive: the DHT holds an offer under this code", "receive: published where this device is"} {
		if !strings.Contains(w.b.logText(), want) {
			t.Errorf("b's log does not say %q", want)
		}
	}
	if !strings.Contains(w.a.logText(), "send: offered in the DHT") {
		t.Error("a's log does not say it offered the send in the DHT")
	}
	connected := regexp.MustCompile(`msg=connected .*addr=` + regexp.QuoteMeta(w.in.Homes[0].WAN) + `:\d+ .*transport=quic`)
	if !connected.MatchString(w.b.logText()) {
		t.Errorf("b's daemon never connected to a at a's router's address %s over QUIC", w.in.Homes[0].WAN)
	}
}
