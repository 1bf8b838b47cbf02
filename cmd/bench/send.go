package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// ---- scenario 9: a one-off send of a file (issue 19)
//
// `blueshift send FILE` on one device and `blueshift receive CODE DIR` on
// the other, against croc (built by this harness from its Go module), over
// the shaped link between two namespaces: wall time from the sender's first
// command to the verified file, and IP bytes on the link. Then the same with
// the receiver killed (SIGKILL) once half the file's bytes have crossed the
// link and run again: the bytes of both attempts over the file's size show
// whether anything crossed twice.
//
// croc runs with its own relay (`croc relay`) in the sender's namespace and
// --relay pointing at it, --no-local on the sender: its traffic is sender ->
// relay (inside the namespace) -> receiver (over the link). The namespaces
// have no route out, so nothing reaches a public relay, a DNS server or a
// multicast group beyond the two namespaces' bridge.

const (
	caseSendWhole  = "whole file"
	caseSendResume = "receiver killed -9 at 50 %, run again"
	crocModule     = "github.com/schollz/croc/v10@v10.7.0"
	crocPass       = "bench-relay-pass"
)

// sendTool is one program that moves a file by a code.
type sendTool struct {
	name string
	// prepare runs once per attempt pair (a relay, for croc) and returns
	// what to stop at the end.
	prepare func(ctx context.Context, r *sendRun) (func(), error)
	// sender starts the sending side; code is the code to use when the
	// tool takes one (croc) and the code printed is returned (blueshift).
	sender func(ctx context.Context, r *sendRun, attempt int) (*proc, string, error)
	// receiver starts the receiving side for code.
	receiver func(ctx context.Context, r *sendRun, code string, attempt int) (*proc, error)
	// senderStays: the sender's offer survives the receiver's death (it
	// need not be started again for the resumed receive).
	senderStays bool
}

// sendRun is one measured transfer.
type sendRun struct {
	nw    *netns.Network
	work  string // homes and logs
	file  string // the file sent
	dst   string // the receiver's directory
	ports []int  // [sender, receiver, croc relay base]
}

func (r *sendRun) log(name string, attempt int) string {
	return filepath.Join(r.work, fmt.Sprintf("%s-%d.log", name, attempt))
}

// buildCroc builds croc from its module (downloaded into the module cache
// by the go command) into work.
func buildCroc(ctx context.Context, work string) (string, error) {
	dl := exec.CommandContext(ctx, "go", "mod", "download", "-json", crocModule)
	dl.Dir = work
	out, err := run(ctx, dl)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", crocModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal([]byte(out), &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("download %s: no module directory in %q", crocModule, firstLine(out))
	}
	src := filepath.Join(work, "croc-src")
	defer os.RemoveAll(src)
	if _, err := run(ctx, exec.CommandContext(ctx, "cp", "-r", mod.Dir, src)); err != nil {
		return "", err
	}
	if _, err := run(ctx, exec.CommandContext(ctx, "chmod", "-R", "u+w", src)); err != nil {
		return "", err
	}
	bin := filepath.Join(work, "croc")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if _, err := run(ctx, build); err != nil {
		return "", fmt.Errorf("build croc: %w", err)
	}
	return bin, nil
}

// blueshiftSendTool drives `blueshift send` and `blueshift receive`, each
// with its in-process daemon, with the flags of the bench's daemons that
// this build's send and receive offer.
func blueshiftSendTool(ctx context.Context, bin string) sendTool {
	help, _ := exec.CommandContext(ctx, bin, "send", "--help").CombinedOutput()
	var flags []string
	for _, f := range []string{"--no-discovery", "--no-dht", "--no-quic"} {
		if strings.Contains(string(help), f) {
			flags = append(flags, f)
		}
	}
	home := func(r *sendRun, i int) string { return filepath.Join(r.work, fmt.Sprintf("bs-home-%d", i)) }
	addr := func(r *sendRun, i int) string { return fmt.Sprintf("%s:%d", r.nw.Endpoints[i].IP, r.ports[i]) }
	return sendTool{
		name:        "blueshift",
		prepare:     func(context.Context, *sendRun) (func(), error) { return func() {}, nil },
		senderStays: true,
		sender: func(ctx context.Context, r *sendRun, attempt int) (*proc, string, error) {
			// The offer names the configured port unless told: --addr is where
			// this transfer's daemon listens.
			args := append([]string{"--home", home(r, 0), "send", r.file, "--json", "--listen", addr(r, 0), "--addr", addr(r, 0)}, flags...)
			p, err := startProc("blueshift send", r.nw.Endpoints[0].Command(context.Background(), bin, args...), r.log("bs-send", attempt))
			if err != nil {
				return nil, "", err
			}
			// The first JSON object on stdout names the code.
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if code := codeIn(r.log("bs-send", attempt)); code != "" {
					return p, code, nil
				}
				if err := p.died(); err != nil {
					return nil, "", err
				}
				if ctx.Err() != nil {
					p.stop(5 * time.Second)
					return nil, "", ctx.Err()
				}
			}
			p.stop(5 * time.Second)
			return nil, "", fmt.Errorf("blueshift send printed no code in 2 minutes: see %s", r.log("bs-send", attempt))
		},
		receiver: func(_ context.Context, r *sendRun, code string, attempt int) (*proc, error) {
			args := append([]string{"--home", home(r, 1), "receive", code, r.dst, "--json", "--addr", addr(r, 0), "--listen", addr(r, 1)}, flags...)
			return startProc("blueshift receive", r.nw.Endpoints[1].Command(context.Background(), bin, args...), r.log("bs-receive", attempt))
		},
	}
}

// codeIn returns the "code" of the first JSON object line in the log.
func codeIn(log string) string {
	f, err := os.Open(log)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v struct{ Code string }
		if strings.HasPrefix(sc.Text(), "{") && json.Unmarshal(sc.Bytes(), &v) == nil && v.Code != "" {
			return v.Code
		}
	}
	return ""
}

// crocSendTool drives croc with its own relay in the sender's namespace.
func crocSendTool(bin string) sendTool {
	relay := func(r *sendRun) string { return fmt.Sprintf("%s:%d", r.nw.Endpoints[0].IP, r.ports[2]) }
	cmd := func(r *sendRun, i int, env []string, args ...string) *exec.Cmd {
		c := r.nw.Endpoints[i].Command(context.Background(), bin, args...)
		home := filepath.Join(r.work, fmt.Sprintf("croc-home-%d", i))
		_ = os.MkdirAll(home, 0o755)
		// croc keeps its settings under $HOME/.config/croc.
		c.Env = append(append(os.Environ(), "HOME="+home), env...)
		return c
	}
	const code = "bench-croc-code-9"
	return sendTool{
		name: "croc",
		prepare: func(ctx context.Context, r *sendRun) (func(), error) {
			ports := make([]string, 5)
			for i := range ports {
				ports[i] = fmt.Sprint(r.ports[2] + i)
			}
			c := cmd(r, 0, nil, "--pass", crocPass, "relay", "--host", r.nw.Endpoints[0].IP, "--ports", strings.Join(ports, ","))
			p, err := startProc("croc relay", c, r.log("croc-relay", 0))
			if err != nil {
				return nil, err
			}
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if err := p.died(); err != nil {
					return nil, err
				}
				conn, err := r.nw.Endpoints[1].Dial(ctx, "tcp", relay(r))
				if err == nil {
					conn.Close()
					return func() { p.stop(5 * time.Second) }, nil
				}
			}
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("croc relay not listening on %s after 30s: see %s", relay(r), r.log("croc-relay", 0))
		},
		sender: func(_ context.Context, r *sendRun, attempt int) (*proc, string, error) {
			// croc takes a chosen code from CROC_SECRET on Linux.
			c := cmd(r, 0, []string{"CROC_SECRET=" + code}, "--relay", relay(r), "--pass", crocPass, "--yes", "--disable-clipboard", "--ignore-stdin",
				"send", "--no-local", r.file)
			p, err := startProc("croc send", c, r.log("croc-send", attempt))
			if err != nil {
				return nil, "", err
			}
			// croc hashes the whole file before it offers it, and a receiver
			// that connects meanwhile fails ("securing channel...problem with
			// decoding: invalid character", croc v10.7.0): the receiver starts
			// once the code is printed, as blueshift's does (after its scan).
			for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
				if b, _ := os.ReadFile(r.log("croc-send", attempt)); bytes.Contains(b, []byte("Code is:")) {
					return p, code, nil
				}
				if err := p.died(); err != nil {
					return nil, "", err
				}
				if time.Now().After(deadline) {
					p.stop(5 * time.Second)
					return nil, "", fmt.Errorf("croc send printed no code in 5 minutes: see %s", r.log("croc-send", attempt))
				}
			}
		},
		receiver: func(_ context.Context, r *sendRun, code string, attempt int) (*proc, error) {
			// The code goes in CROC_SECRET as for the sender; a resumed
			// receive asks "Resume? (y/N)" on stdin.
			c := cmd(r, 1, []string{"CROC_SECRET=" + code}, "--relay", relay(r), "--pass", crocPass, "--yes", "--out", r.dst)
			c.Dir = r.dst
			c.Stdin = strings.NewReader(strings.Repeat("y\n", 16))
			return startProc("croc receive", c, r.log("croc-receive", attempt))
		},
	}
}

// sendScenario measures every tool sending file (of size bytes).
func (b *bench) sendScenario(ctx context.Context, scenario, file string, tools []sendTool, runs int) {
	for r := range runs {
		for _, cas := range []string{caseSendWhole, caseSendResume} {
			for _, t := range tools {
				if ctx.Err() != nil {
					return
				}
				m, err := b.sendOnce(ctx, t, file, cas == caseSendResume)
				if err != nil {
					b.fail(scenario, cas, t.name, err)
					continue
				}
				b.rows = append(b.rows, row{scenario, cas, t.name, r, "wall_s", m.wall.Seconds()},
					row{scenario, cas, t.name, r, "wire_bytes", float64(m.wire)})
				for k, v := range m.extra {
					b.rows = append(b.rows, row{scenario, cas, t.name, r, k, v})
				}
				b.log.Info("measured", "scenario", scenario, "case", cas, "tool", t.name, "run", r, "wall_s", m.wall.Seconds(), "wire", m.wire, "extra", m.extra)
			}
		}
	}
}

// sendOnce is one transfer on a fresh shaped pair of namespaces; with
// resume, the receiver is killed once half the file has crossed the link,
// then run again (and the sender too when its offer did not survive).
func (b *bench) sendOnce(ctx context.Context, t sendTool, file string, resume bool) (measure, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return measure{}, err
	}
	size := fi.Size()
	nw, err := b.network(ctx, true, 2)
	if err != nil {
		return measure{}, err
	}
	defer nw.Close()
	ports, err := netns.FreePorts(3)
	if err != nil {
		return measure{}, err
	}
	r := &sendRun{nw: nw, work: b.dir("send-" + t.name), dst: b.dir("recv"), ports: ports}
	defer removeTree(r.dst)
	// The sender's own folder: blueshift stages hard links beside the file.
	srcDir := b.dir("sendsrc")
	defer os.RemoveAll(srcDir)
	r.file = filepath.Join(srcDir, filepath.Base(file))
	if err := os.Link(file, r.file); err != nil {
		return measure{}, err
	}
	stopPrep, err := t.prepare(ctx, r)
	if err != nil {
		return measure{}, err
	}
	defer stopPrep()
	ctr, err := netns.NewLinkCounter(ctx, nw.Endpoints[0].NS, b.uniq("t"))
	if err != nil {
		return measure{}, err
	}
	defer ctr.Close()
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop(5 * time.Second)
		}
	}()
	t0 := time.Now()
	sp, code, err := t.sender(ctx, r, 0)
	if err != nil {
		return measure{}, err
	}
	procs = append(procs, sp)
	rp, err := t.receiver(ctx, r, code, 0)
	if err != nil {
		return measure{}, err
	}
	procs = append(procs, rp)
	m := measure{extra: map[string]float64{}}
	deadline := time.Now().Add(b.cfg.Timeout)
	if resume {
		var at int64
		for at = ctr.Total(ctx); at < size/2; at = ctr.Total(ctx) {
			if sp.exited() && sp.err != nil {
				return measure{}, sp.died()
			}
			if rp.exited() {
				return measure{}, fmt.Errorf("receiver ended before half the file crossed (%d of %d bytes): %v", at, size, rp.died())
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return measure{}, fmt.Errorf("half the file did not cross in %v (%d of %d bytes)", b.cfg.Timeout, at, size)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = syscall.Kill(-rp.pid(), syscall.SIGKILL)
		<-rp.done
		m.extra["killed_at_x"] = float64(at) / float64(size)
		if !t.senderStays || sp.exited() {
			sp.stop(5 * time.Second)
			if sp, _, err = t.sender(ctx, r, 1); err != nil {
				return measure{}, fmt.Errorf("sender, run again: %w", err)
			}
			procs = append(procs, sp)
		}
		if rp, err = t.receiver(ctx, r, code, 1); err != nil {
			return measure{}, err
		}
		procs = append(procs, rp)
	}
	for !rp.exited() {
		if sp.exited() && sp.err != nil {
			return measure{}, sp.died()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return measure{}, fmt.Errorf("receive not done in %v: see %s", b.cfg.Timeout, r.work)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rp.err != nil {
		return measure{}, rp.died()
	}
	got := filepath.Join(r.dst, filepath.Base(file))
	if _, err := run(ctx, exec.CommandContext(ctx, "cmp", file, got)); err != nil {
		return measure{}, fmt.Errorf("received file %s differs from the sent one: %w", got, err)
	}
	m.wall = time.Since(t0)
	m.wire = ctr.Total(ctx)
	m.extra["wire_x"] = float64(m.wire) / float64(size)
	os.RemoveAll(r.work) // kept only when the run failed
	return m, nil
}
