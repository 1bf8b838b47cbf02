package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// rsync driver: an rsync daemon (one per transfer, so its rusage covers
// exactly that transfer, per-connection children included) and a client,
// over TCP on loopback or between namespaces.

type rsyncTool struct {
	name string
	bin  string
	opts []string // e.g. --compress --compress-choice=zstd
}

// measure is one measured transfer or sync.
type measure struct {
	wall  time.Duration
	wire  int64 // IP bytes, both directions
	cpu   float64
	rss   int64
	extra map[string]float64
}

type rsyncDaemon struct {
	p    *proc
	port int
	ep   netns.Endpoint
}

// startRsyncd serves module "bench" at path from endpoint ep.
func startRsyncd(ctx context.Context, bin, work string, ep netns.Endpoint, path string, readOnly bool) (*rsyncDaemon, error) {
	ports, err := netns.FreePorts(1)
	if err != nil {
		return nil, err
	}
	ro := "no"
	if readOnly {
		ro = "yes"
	}
	conf := filepath.Join(work, "rsyncd.conf")
	text := fmt.Sprintf("port = %d\naddress = %s\nuse chroot = no\nmax connections = 16\nlog file = %s\n[bench]\n  path = %s\n  read only = %s\n  uid = 0\n  gid = 0\n",
		ports[0], ep.IP, filepath.Join(work, "rsyncd.log"), path, ro)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	p, err := startTimed(context.Background(), "rsyncd", ep, filepath.Join(work, "rsyncd.out"), filepath.Join(work, fmt.Sprintf("rsyncd-%d.time", ports[0])),
		bin, "--daemon", "--no-detach", "--config="+conf)
	if err != nil {
		return nil, err
	}
	d := &rsyncDaemon{p: p, port: ports[0], ep: ep}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := ep.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", ep.IP, d.port)); err == nil {
			c.Close()
			return d, nil
		}
		if p.exited() {
			break
		}
	}
	p.stop(time.Second)
	return nil, fmt.Errorf("rsync daemon did not listen on %s:%d", ep.IP, d.port)
}

func (d *rsyncDaemon) url() string { return fmt.Sprintf("rsync://%s:%d/bench/", d.ep.IP, d.port) }

// wireCounter counts the traffic of a transfer: on loopback the given ports,
// in namespaces everything on the first endpoint's link.
func wireCounter(ctx context.Context, name string, nw *netns.Network, ports []int) (*netns.Counter, error) {
	if nw.Shaped {
		return netns.NewLinkCounter(ctx, nw.Endpoints[0].NS, name)
	}
	return netns.NewLoopbackCounter(ctx, name, ports)
}

// push copies src into dst: the client runs on endpoint 0 and pushes to a
// daemon on endpoint 1 that writes dst.
func (r rsyncTool) push(ctx context.Context, work, table string, nw *netns.Network, src, dst string, extra ...string) (measure, error) {
	var m measure
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return m, err
	}
	d, err := startRsyncd(ctx, r.bin, work, nw.Endpoints[1], dst, false)
	if err != nil {
		return m, err
	}
	defer d.p.stop(5 * time.Second)
	if err := nw.RelayPorts(ctx, map[int]int{1: d.port}); err != nil {
		return m, err
	}
	ctr, err := wireCounter(ctx, table, nw, []int{d.port})
	if err != nil {
		return m, err
	}
	defer ctr.Close()
	args := append(append([]string{"-a", "--stats"}, r.opts...), extra...)
	args = append(args, strings.TrimSuffix(src, "/")+"/", d.url())
	t0 := time.Now()
	client, err := startTimed(ctx, "rsync", nw.Endpoints[0], filepath.Join(work, "rsync-client.log"), filepath.Join(work, fmt.Sprintf("rsync-%s.time", table)), r.bin, args...)
	if err != nil {
		return m, err
	}
	<-client.done
	m.wall = time.Since(t0)
	if client.err != nil {
		return m, fmt.Errorf("rsync client: %w (log in %s)", client.err, work)
	}
	m.wire = ctr.Total(ctx)
	d.p.stop(5 * time.Second)
	cu, du := client.finalUsage(), d.p.finalUsage()
	m.cpu, m.rss = cu.CPU+du.CPU, max(cu.RSS, du.RSS)
	return m, nil
}
