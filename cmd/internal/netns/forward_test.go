package netns

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestForwardTCPLetsInThatPortOnly: from one home's device, home 1's device
// cannot be dialled at its router's WAN address until the router forwards
// the port; then that port connects (the connection arrives from home 0's
// WAN address, masqueraded) and another port still does not.
func TestForwardTCPLetsInThatPortOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if out, err := exec.Command("nft", "--version").CombinedOutput(); err != nil {
		t.Skipf("nftables unavailable: %v: %s", err, out)
	}
	ctx := context.Background()
	in, err := NewInternet(ctx, fmt.Sprintf("bspunch%d", os.Getpid()%100000), 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	h0, h1 := in.Homes[0].Device, in.Homes[1].Device
	var lns []net.Listener
	for _, port := range []string{":22100", ":22101"} {
		ln, err := h1.Listen("tcp", port)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		lns = append(lns, ln)
	}
	accepted := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := lns[0].Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		accepted <- c.RemoteAddr().String()
		io.WriteString(c, "hello")
		c.Close()
	}()
	// Dropped SYNs: a short limit can only make these dials fail, which is
	// what is expected of them.
	blocked := func(port string) {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if c, err := h0.Dial(dctx, "tcp", in.Homes[1].WAN+port); err == nil {
			c.Close()
			t.Fatalf("dialled home 1's router at %s without a port forward", port)
		}
	}
	blocked(":22100")
	if err := in.ForwardTCP(ctx, 1, 22100); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := h0.Dial(dctx, "tcp", in.Homes[1].WAN+":22100")
	if err != nil {
		t.Fatalf("dial through the port forward: %v", err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if from := <-accepted; !strings.HasPrefix(from, in.Homes[0].WAN+":") || string(got) != "hello" {
		t.Errorf("through the port forward: accepted from %s, read %q; want from home 0's WAN %s, \"hello\"", from, got, in.Homes[0].WAN)
	}
	blocked(":22101")
	lns[0].Close()
	<-done
}
