package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/cmd/internal/tree"
)

// bench holds what every scenario needs: the configuration, the tools, the
// scratch directory and the rows measured so far.
type bench struct {
	cfg      config
	log      *slog.Logger
	work     string // scratch directory, removed at the end
	rsyncBin string
	rsyncs   []rsyncTool
	clusters map[string]newCluster // "syncthing", "blueshift"
	order    []string              // cluster tools in table order
	rows     []row
	failures []string
	// retried lists baseline runs that failed once and were run again
	// (RESULTS.md shows them): Syncthing now and then does not converge.
	retried []string
	netNote string
	seq     int
	clock   *stopwatch // harness time per scenario
	// interrupted reports that the run is being stopped (SIGINT): a run
	// cut short then is not counted as a failure of the tool.
	interrupted func() bool
}

// uniq returns a fresh short name for namespaces, nft tables and folders.
func (b *bench) uniq(kind string) string {
	b.seq++
	return fmt.Sprintf("bsb%d%s%d", os.Getpid()%100000, kind, b.seq)
}

func (b *bench) add(scenario, cas, tool string, runIdx int, m measure) {
	b.rows = append(b.rows,
		row{scenario, cas, tool, runIdx, "wall_s", m.wall.Seconds()},
		row{scenario, cas, tool, runIdx, "wire_bytes", float64(m.wire)},
		row{scenario, cas, tool, runIdx, "cpu_s", m.cpu},
		row{scenario, cas, tool, runIdx, "rss_mb", float64(m.rss) / 1e6})
	for k, v := range m.extra {
		b.rows = append(b.rows, row{scenario, cas, tool, runIdx, k, v})
	}
}

func (b *bench) fail(scenario, cas, tool string, err error) {
	if b.interrupted != nil && b.interrupted() {
		b.log.Warn("run interrupted", "scenario", scenario, "case", cas, "tool", tool, "err", err)
		return
	}
	msg := fmt.Sprintf("%s / %s / %s: %v", scenario, cas, tool, err)
	b.log.Error("run failed", "scenario", scenario, "case", cas, "tool", tool, "err", err)
	b.failures = append(b.failures, msg)
}

// dir makes a fresh empty directory in the scratch area.
func (b *bench) dir(name string) string {
	d := filepath.Join(b.work, b.uniq(name))
	_ = os.MkdirAll(d, 0o755)
	return d
}

// cloneTree hard-links src into a new directory (the tools only read the
// source side, and a link copy of a GiB corpus is instant).
func (b *bench) cloneTree(ctx context.Context, src string) (string, error) {
	d := b.dir("src")
	if _, err := run(ctx, exec.CommandContext(ctx, "cp", "-al", src+"/.", d+"/")); err != nil {
		return "", err
	}
	return d, nil
}

// cloneAge is how old a cloned tree is when a cluster tool is given it:
// older than Blueshift's racy margin (index.racyMargin, 1 s), past which a
// scan's hash of a file stands for the blocks it serves. A folder a user
// shares was not written in the second before; a clone's hard links are
// (cp -al sets every file's ctime), and in the timed part the sender then
// hashed every block it served a second time, which rsync, reading the
// corpus itself, never pays.
const cloneAge = 1100 * time.Millisecond

// waitAged waits until cloneAge has passed since cloned (zero: no clone).
func waitAged(ctx context.Context, cloned time.Time) error {
	if cloned.IsZero() {
		return nil
	}
	select {
	case <-time.After(time.Until(cloned.Add(cloneAge))):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bench) network(ctx context.Context, shaped bool, n int) (*netns.Network, error) {
	if !shaped {
		return netns.Loopback(n), nil
	}
	nw, err := netns.NewShaped(ctx, b.uniq("n"), n, b.cfg.Link)
	if err == nil {
		b.netNote = nw.Note
	}
	return nw, err
}

// ---- scenarios 1, 2, 7: initial sync of a corpus

// initOpts are the variants of an initial sync.
type initOpts struct {
	shaped bool
	// inPlace: the corpus is a scratch tree of this one run, shared by the
	// cluster tool as it is (no link copy; the 1,000,000-file run).
	inPlace bool
	// after, when set, is called with the synced pair after each run that
	// converged, before the pair is torn down (scenario 4 measures
	// reconnecting on it). run is the run index.
	after func(ctx context.Context, run int, p pair)
	// timeout, when set, replaces the config's convergence limit (the
	// 1,000,000-file run takes longer than any other case).
	timeout time.Duration
	// profile, when set, is the path stem of Blueshift's CPU profiles of
	// this run (profiles.go).
	profile string
}

// pair is two identical trees an initial sync left behind: for a cluster
// tool, its running devices too (c; device 0 serves src, device 1 holds dst).
type pair struct {
	tool     string
	c        cluster // nil for rsync
	src, dst string
	// srcShared: src is the corpus itself (rsync pushes from it), so it must
	// be link-copied before a file of it is changed.
	srcShared bool
}

// initial measures every tool making an empty folder identical to corpus,
// counted from the first command (rsync's client, Syncthing's REST
// configuration, Blueshift's `share add`) to verified identical trees.
func (b *bench) initial(ctx context.Context, scenario, cas, corpus string, tools []string, runs int, o initOpts) {
	size := treeBytes(corpus)
	for r := range runs {
		for _, tool := range tools {
			if ctx.Err() != nil {
				return // interrupted: what was measured is reported
			}
			o := o
			if b.cfg.Profiles != "" && scenario == scLoop && tool == "blueshift" {
				o.profile = profileStem(b.cfg.Profiles, cas, r)
			}
			m, err := b.initialOnce(ctx, tool, corpus, o, r)
			if err != nil && tool != "blueshift" && ctx.Err() == nil {
				// A baseline's own failure (Syncthing 1.19 once stayed
				// "not in sync" for 3 minutes on the shaped link in CI) is
				// not what the bench tests: it gets one more run. A
				// failure of Blueshift is never run again.
				b.retried = append(b.retried, fmt.Sprintf("%s / %s / %s run %d: %v", scenario, cas, tool, r+1, err))
				b.log.Warn("baseline run failed; running it again", "scenario", scenario, "case", cas, "tool", tool, "err", err)
				m, err = b.initialOnce(ctx, tool, corpus, o, r)
			}
			if err != nil {
				b.fail(scenario, cas, tool, err)
				continue
			}
			if size > 0 {
				// CPU of both ends (every process) per GB synced (issue 14).
				if m.extra == nil {
					m.extra = map[string]float64{}
				}
				m.extra["cpu_s_per_gb"] = m.cpu / (float64(size) / 1e9)
			}
			b.log.Info("measured", "scenario", scenario, "case", cas, "tool", tool, "run", r, "wall_s", m.wall.Seconds(), "wire", m.wire, "cpu_s", m.cpu,
				"rss_mb", float64(m.rss)/1e6, "rss_dev0_mb", m.extra["rss_dev0_mb"], "rss_dev1_mb", m.extra["rss_dev1_mb"])
			b.add(scenario, cas, tool, r, m)
		}
	}
}

func (b *bench) initialOnce(ctx context.Context, tool, corpus string, o initOpts, run int) (measure, error) {
	settleFreedMemory(ctx) // what the last run wrote and deleted is cold again (memsettle.go)
	nw, err := b.network(ctx, o.shaped, 2)
	if err != nil {
		return measure{}, err
	}
	defer nw.Close()
	dst := b.dir("dst")
	defer removeTree(dst)
	if rt, ok := b.rsyncTool(tool); ok {
		m, err := rt.push(ctx, b.work, b.uniq("t"), nw, corpus, dst)
		if err == nil {
			err = tree.Compare(corpus, dst)
		}
		if nw.RelayDelay > 0 {
			b.log.Info("delay relay", "tool", tool, "connections", nw.Relayed())
		}
		if err == nil && o.after != nil {
			o.after(ctx, run, pair{tool: tool, src: corpus, dst: dst, srcShared: true})
		}
		return m, err
	}
	src := corpus
	var cloned time.Time
	if !o.inPlace {
		if src, err = b.cloneTree(ctx, corpus); err != nil {
			return measure{}, err
		}
		cloned = time.Now()
		defer os.RemoveAll(src)
	}
	home := b.dir("home")
	c, err := b.clusters[tool](ctx, home, nw, []string{src, dst})
	if err != nil {
		return measure{}, err
	}
	defer c.close()
	if bc, ok := c.(*blueshiftCluster); ok && o.profile != "" {
		bc.cpuProfile = o.profile
	}
	if err := nw.RelayPorts(ctx, portMap(c.wirePorts())); err != nil {
		return measure{}, err
	}
	if err := startAll(ctx, c, 2); err != nil {
		return measure{}, err
	}
	ctr, err := wireCounter(ctx, b.uniq("t"), nw, c.wirePorts())
	if err != nil {
		return measure{}, err
	}
	defer ctr.Close()
	if err := waitAged(ctx, cloned); err != nil {
		return measure{}, err
	}
	win := openWindow(c.procs())
	t0 := time.Now()
	if err := c.share(ctx); err != nil {
		return measure{}, err
	}
	limit := b.cfg.Timeout
	if o.timeout > 0 {
		limit = o.timeout
	}
	wctx, stopWatch := ctx, func() {}
	if o.shaped {
		wctx, stopWatch = watchStall(ctx, func() int64 { return ctr.Total(ctx) }, stallWindow, stallBytes) // stall.go
	}
	t1, err := waitConverged(wctx, c, 1, src, dst, limit)
	stopWatch()
	if err != nil {
		if ctx.Err() == nil && context.Cause(wctx) != nil {
			err = context.Cause(wctx)
		}
		return measure{}, err
	}
	u := win.close()
	if bc, ok := c.(*blueshiftCluster); ok {
		// A device that o.after restarts must not overwrite the profile
		// of the first sync with one of its reconnect.
		bc.cpuProfile = ""
	}
	if nw.RelayDelay > 0 {
		b.log.Info("delay relay", "tool", tool, "connections", nw.Relayed())
	}
	m := measure{wall: t1.Sub(t0), wire: ctr.Total(ctx), cpu: u.CPU, rss: u.RSS, extra: map[string]float64{}}
	for i, p := range u.Peaks {
		m.extra[fmt.Sprintf("rss_dev%d_mb", i)] = float64(p) / 1e6
	}
	if o.after != nil {
		o.after(ctx, run, pair{tool: tool, c: c, src: src, dst: dst})
	}
	c.close()
	if o.profile != "" {
		b.renderProfiles(ctx, o.profile, 2) // the daemons wrote their profiles as they stopped
	}
	os.RemoveAll(home) // kept only when the run failed (the deferred close is then a no-op)
	return m, nil
}

func (b *bench) rsyncTool(name string) (rsyncTool, bool) {
	for _, r := range b.rsyncs {
		if r.name == name {
			return r, true
		}
	}
	return rsyncTool{}, false
}

// ---- scenario 3: small edits to one large file

type editOp struct {
	name  string
	apply func(a string) error
	check string // file whose arrival on B ends the wait ("" = whole tree)
}

func (b *bench) editOps() []editOp {
	seed, size := b.cfg.Seed, b.cfg.EditSize
	f := func(a string) string { return filepath.Join(a, "edit.bin") }
	return []editOp{
		{"new file", func(a string) error {
			// Written outside the folder, then renamed in: the op itself is instant.
			tmp := filepath.Join(b.work, b.uniq("new"))
			if err := genRandomFile(tmp, seed, 7, size); err != nil {
				return err
			}
			return os.Rename(tmp, f(a))
		}, "edit.bin"},
		{"insert 1 B at 4096", func(a string) error { return insertAt(f(a), seed, 4096, 1) }, "edit.bin"},
		{"overwrite 4 KiB in the middle", func(a string) error { return overwriteAt(f(a), seed, size/2, 4096) }, "edit.bin"},
		{"append 1 MiB", func(a string) error { return appendTo(f(a), seed, 1<<20) }, "edit.bin"},
		{"rename", func(a string) error { return os.Rename(f(a), filepath.Join(a, "renamed.bin")) }, ""},
		{"move to another directory", func(a string) error {
			if err := os.Mkdir(filepath.Join(a, "moved"), 0o755); err != nil {
				return err
			}
			return os.Rename(filepath.Join(a, "renamed.bin"), filepath.Join(a, "moved", "renamed.bin"))
		}, ""},
	}
}

func (b *bench) edits(ctx context.Context, scenario string, tools []string, runs int) {
	for r := range runs {
		for _, tool := range tools {
			if ctx.Err() != nil {
				return // interrupted: what was measured is reported
			}
			ms, err := b.editsOnce(ctx, tool, false, b.editOps())
			if err != nil {
				b.fail(scenario, "edits", tool, err)
				continue
			}
			var total measure
			for i, op := range b.editOps() {
				b.add(scenario, op.name, tool, r, ms[i])
				total.wall += ms[i].wall
				total.wire += ms[i].wire
				total.cpu += ms[i].cpu
				total.rss = max(total.rss, ms[i].rss)
			}
			b.add(scenario, "all edits (total)", tool, r, total)
			b.log.Info("measured", "scenario", scenario, "tool", tool, "run", r, "total_wire", total.wire)
		}
	}
}

// editsOnce applies ops in turn to a synced pair of tool and measures each,
// on loopback or, if shaped, on the shaped link.
func (b *bench) editsOnce(ctx context.Context, tool string, shaped bool, ops []editOp) ([]measure, error) {
	nw, err := b.network(ctx, shaped, 2)
	if err != nil {
		return nil, err
	}
	defer nw.Close()
	a, dst := b.dir("a"), b.dir("b")
	defer os.RemoveAll(a)
	defer os.RemoveAll(dst)
	var ms []measure
	if rt, ok := b.rsyncTool(tool); ok {
		for _, op := range ops {
			if err := op.apply(a); err != nil {
				return nil, err
			}
			// rsync's best options for these ops: --fuzzy finds a renamed
			// file's old copy as the basis; --delete-after keeps it until then.
			// --modify-window=-1: compare mtimes to the nanosecond; edits land
			// within one second and the default quick check would skip them.
			m, err := rt.push(ctx, b.work, b.uniq("t"), nw, a, dst, "--delete-after", "--fuzzy", "--modify-window=-1")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op.name, err)
			}
			if err := tree.Compare(a, dst); err != nil {
				return nil, fmt.Errorf("%s: %w", op.name, err)
			}
			ms = append(ms, m)
		}
		return ms, nil
	}
	c, err := b.syncedPair(ctx, tool, b.dir("home"), nw, a, dst)
	if err != nil {
		return nil, err
	}
	defer c.close()
	ctr, err := wireCounter(ctx, b.uniq("t"), nw, c.wirePorts())
	if err != nil {
		return nil, err
	}
	defer ctr.Close()
	quiet(ctx, ctr, time.Second, 30*time.Second)
	for _, op := range ops {
		// The link is quiet here: before the first op, and after each op's
		// trailing quiet below.
		w0 := ctr.Total(ctx)
		win := openWindow(c.procs())
		t0 := time.Now()
		if err := op.apply(a); err != nil {
			return nil, err
		}
		t1, err := waitTreesEqual(ctx, a, dst, b.cfg.Timeout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op.name, err)
		}
		if _, err := waitConverged(ctx, c, 1, a, dst, b.cfg.Timeout); err != nil {
			return nil, fmt.Errorf("%s: %w", op.name, err)
		}
		quiet(ctx, ctr, time.Second, 30*time.Second) // count the trailing index updates too
		u := win.close()
		ms = append(ms, measure{wall: t1.Sub(t0), wire: ctr.Total(ctx) - w0, cpu: u.CPU, rss: u.RSS})
	}
	return ms, nil
}

// waitTreesEqual polls until b is identical to a; the poll interval grows
// with the cost of a comparison so the harness does not crowd the tools.
func waitTreesEqual(ctx context.Context, a, b string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		t := time.Now()
		if last = tree.Compare(a, b); last == nil {
			return t, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(max(10*time.Millisecond, 2*time.Since(t))):
		}
	}
	return time.Time{}, fmt.Errorf("trees not equal after %v: %w", timeout, last)
}

// quiet waits until the counter has not moved for still (at most limit).
func quiet(ctx context.Context, c *netns.Counter, still, limit time.Duration) {
	poll := min(100*time.Millisecond, max(20*time.Millisecond, still/5))
	last, since := c.Total(ctx), time.Now()
	for end := time.Now().Add(limit); time.Now().Before(end) && time.Since(since) < still && ctx.Err() == nil; {
		time.Sleep(poll)
		if n := c.Total(ctx); n != last {
			last, since = n, time.Now()
		}
	}
}

// ---- scenario 4: reconnect after a restart

// reconnect sets up a synced pair of corpus per tool and run (rsync: one
// untimed push) and measures reconnecting on it. Used when scenario 4 runs
// without the scenario (1 or 7) whose pairs it otherwise reuses.
func (b *bench) reconnect(ctx context.Context, scenario, corpus string, files int, tools []string, runs int) {
	for r := range runs {
		for _, tool := range tools {
			if ctx.Err() != nil {
				return // interrupted: what was measured is reported
			}
			ms, err := b.reconnectOnce(ctx, tool, corpus)
			if err != nil {
				b.fail(scenario, fmt.Sprint(files), tool, err)
				continue
			}
			b.addReconnect(files, tool, r, ms)
		}
	}
}

// reconnectAfter returns the initOpts.after hook that measures reconnecting
// on the pair an initial sync of a files-file corpus just left, for the
// first runsFor(scenario 4) runs; its time is charged to scenario 4.
func (b *bench) reconnectAfter(files int) func(ctx context.Context, run int, p pair) {
	return func(ctx context.Context, run int, p pair) {
		if run >= b.cfg.runsFor(scReconnect, fmt.Sprint(files)) || ctx.Err() != nil {
			return
		}
		prev := b.clock.enter(scNum(scReconnect), time.Now())
		defer func() { b.clock.enter(prev, time.Now()) }()
		ms, err := b.reconnectPair(ctx, p)
		if err != nil {
			b.fail(scReconnect, fmt.Sprint(files), p.tool, err)
			return
		}
		b.addReconnect(files, p.tool, run, ms)
	}
}

func (b *bench) addReconnect(files int, tool string, run int, ms []measure) {
	b.add(scReconnect, fmt.Sprintf("%d files, nothing changed", files), tool, run, ms[0])
	b.add(scReconnect, fmt.Sprintf("%d files, one changed", files), tool, run, ms[1])
	b.log.Info("measured", "scenario", scReconnect, "tool", tool, "files", files, "run", run, "unchanged_s", ms[0].wall.Seconds(), "unchanged_wire", ms[0].wire)
}

// syncedPair starts tool's two devices on src and dst, shares src and waits
// until dst matches it: the untimed setup the edit and reconnect scenarios
// start from. The caller closes the cluster.
func (b *bench) syncedPair(ctx context.Context, tool, home string, nw *netns.Network, src, dst string) (cluster, error) {
	c, err := b.clusters[tool](ctx, home, nw, []string{src, dst})
	if err != nil {
		return nil, err
	}
	err = startAll(ctx, c, 2)
	if err == nil {
		err = c.share(ctx)
	}
	if err == nil {
		_, err = waitConverged(ctx, c, 1, src, dst, b.cfg.Timeout)
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// reconnectOnce makes a synced pair of corpus (untimed) and measures
// reconnecting on it.
func (b *bench) reconnectOnce(ctx context.Context, tool, corpus string) ([]measure, error) {
	nw := netns.Loopback(2)
	src, err := b.cloneTree(ctx, corpus)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	dst := b.dir("dst")
	defer os.RemoveAll(dst)
	if rt, ok := b.rsyncTool(tool); ok {
		if _, err := rt.push(ctx, b.work, b.uniq("t"), nw, src, dst); err != nil {
			return nil, err
		}
		return b.reconnectPair(ctx, pair{tool: tool, src: src, dst: dst})
	}
	home := b.dir("home")
	c, err := b.syncedPair(ctx, tool, home, nw, src, dst)
	if err != nil {
		return nil, err
	}
	defer c.close()
	ms, err := b.reconnectPair(ctx, pair{tool: tool, c: c, src: src, dst: dst})
	if err == nil {
		c.close()
		os.RemoveAll(home)
	}
	return ms, err
}

// changeOne replaces the lexically first file of src with one whose first
// bytes differ (replaced, not edited in place: src shares inodes with the
// corpus).
func (b *bench) changeOne(src string) error {
	changed := firstFile(src)
	data, err := os.ReadFile(changed)
	if err != nil {
		return err
	}
	copy(data, patch(b.cfg.Seed, "reconnect", 0, min(len(data), 512)))
	tmp := changed + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, changed)
}

// reconnectPair measures, on a synced pair on loopback, B stopped and started
// again with nothing changed, then with one file changed while B was away:
// for rsync, a push of the unchanged and of the changed tree.
func (b *bench) reconnectPair(ctx context.Context, p pair) ([]measure, error) {
	nw := netns.Loopback(2)
	if rt, ok := b.rsyncTool(p.tool); ok {
		src := p.src
		if p.srcShared {
			var err error
			if src, err = b.cloneTree(ctx, p.src); err != nil {
				return nil, err
			}
			defer os.RemoveAll(src)
		}
		var ms []measure
		for i := range 2 {
			if i == 1 {
				if err := b.changeOne(src); err != nil {
					return nil, err
				}
			}
			m, err := rt.push(ctx, b.work, b.uniq("t"), nw, src, p.dst)
			if err != nil {
				return nil, err
			}
			if err := tree.Compare(src, p.dst); err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
		return ms, nil
	}
	c := p.c
	ctr, err := wireCounter(ctx, b.uniq("t"), nw, c.wirePorts())
	if err != nil {
		return nil, err
	}
	defer ctr.Close()
	var ms []measure
	quiet(ctx, ctr, time.Second, 30*time.Second)
	for i := range 2 {
		c.stop(1) // the link is quiet: first time above, then after each round
		if i == 1 {
			if err := b.changeOne(p.src); err != nil {
				return nil, err
			}
			time.Sleep(3 * time.Second) // A notices the change while B is away
		}
		quiet(ctx, ctr, time.Second, 30*time.Second)
		w0 := ctr.Total(ctx)
		winA := openWindow(c.procs())
		t0 := time.Now()
		if err := c.start(ctx, 1); err != nil {
			return nil, err
		}
		t1, err := waitConverged(ctx, c, 1, p.src, p.dst, b.cfg.Timeout)
		if err != nil {
			return nil, err
		}
		quiet(ctx, ctr, 2*time.Second, 60*time.Second)
		u := winA.close()
		if pb := c.procs(); len(pb) == 2 { // B's whole life: start-up is part of reconnecting
			if ub, err := liveUsage(pb[1].pid()); err == nil {
				u.CPU += ub.CPU
				u.RSS = max(u.RSS, ub.RSS)
			}
		}
		ms = append(ms, measure{wall: t1.Sub(t0), wire: ctr.Total(ctx) - w0, cpu: u.CPU, rss: u.RSS})
	}
	return ms, nil
}

// portMap maps device index to port.
func portMap(ports []int) map[int]int {
	m := map[int]int{}
	for i, p := range ports {
		m[i] = p
	}
	return m
}

// firstFile returns the lexically first regular file under root.
func firstFile(root string) string {
	l, _ := tree.List(root)
	var names []string
	for p, e := range l {
		if e.Mode.IsRegular() {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return ""
	}
	return filepath.Join(root, names[0])
}

// ---- scenario 6: change-to-synced latency

func (b *bench) latency(ctx context.Context, scenario string, tools []string, runs int) {
	for r := range runs {
		for _, tool := range tools {
			if ctx.Err() != nil {
				return // interrupted: what was measured is reported
			}
			if _, ok := b.rsyncTool(tool); ok {
				continue // rsync has no watcher: nothing to measure
			}
			lats, m, err := b.latencyOnce(ctx, tool)
			if err != nil {
				b.fail(scenario, "latency", tool, err)
				continue
			}
			m.extra = map[string]float64{"p50_s": percentile(lats, 0.50), "p99_s": percentile(lats, 0.99)}
			m.wall = time.Duration(percentile(lats, 0.50) * float64(time.Second))
			b.add(scenario, fmt.Sprintf("4 KiB edits (n=%d)", len(lats)), tool, r, m)
			b.log.Info("measured", "scenario", scenario, "tool", tool, "p50", m.extra["p50_s"], "p99", m.extra["p99_s"])
		}
	}
}

// latencyOnce returns each edit's latency, and the wire bytes, CPU and peak
// RSS of the whole series (wall is set by the caller).
func (b *bench) latencyOnce(ctx context.Context, tool string) ([]float64, measure, error) {
	nw := netns.Loopback(2)
	a, dst := b.dir("a"), b.dir("b")
	defer os.RemoveAll(a)
	defer os.RemoveAll(dst)
	c, err := b.clusters[tool](ctx, b.dir("home"), nw, []string{a, dst})
	if err != nil {
		return nil, measure{}, err
	}
	defer c.close()
	if err := startAll(ctx, c, 2); err != nil {
		return nil, measure{}, err
	}
	if err := c.share(ctx); err != nil {
		return nil, measure{}, err
	}
	if _, err := waitConverged(ctx, c, 1, a, dst, b.cfg.Timeout); err != nil {
		return nil, measure{}, err
	}
	ctr, err := wireCounter(ctx, b.uniq("t"), nw, c.wirePorts())
	if err != nil {
		return nil, measure{}, err
	}
	defer ctr.Close()
	quiet(ctx, ctr, time.Second, 30*time.Second)
	w0 := ctr.Total(ctx)
	win := openWindow(c.procs())
	var lats []float64
	for k := range b.cfg.LatencyEdits {
		// Each edit starts from an idle pair: the previous edit and the
		// index updates after it are done when the link has been quiet
		// for LatencyQuiet. No more waiting than that.
		quiet(ctx, ctr, b.cfg.LatencyQuiet, 10*time.Second)
		name := fmt.Sprintf("f%04d.txt", k/2)
		data := patch(b.cfg.Seed, "latency", int64(k), 4096)
		t0 := time.Now()
		if k%2 == 0 { // create a new file
			if err := os.WriteFile(filepath.Join(a, name), data, 0o644); err != nil {
				return nil, measure{}, err
			}
		} else if err := overwriteAt(filepath.Join(a, name), uint64(k), 0, 4096); err != nil { // modify in place
			return nil, measure{}, err
		}
		want, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			return nil, measure{}, err
		}
		for {
			got, _ := os.ReadFile(filepath.Join(dst, name))
			if string(got) == string(want) {
				break
			}
			if time.Since(t0) > 60*time.Second {
				return nil, measure{}, fmt.Errorf("edit %d of %q did not arrive in 60s", k, name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lats = append(lats, time.Since(t0).Seconds())
	}
	quiet(ctx, ctr, time.Second, 30*time.Second)
	u := win.close()
	return lats, measure{wire: ctr.Total(ctx) - w0, cpu: u.CPU, rss: u.RSS}, nil
}

// ---- scenario 5: fan-out from one seeder to three devices (and to more,
// random data: the swarm)

// fanoutCase names a case of scenario 5: receivers, and what the corpus is.
func fanoutCase(receivers int, what string) string {
	return fmt.Sprintf("1 seeder -> %d devices%s", receivers, what)
}

func (b *bench) fanout(ctx context.Context, scenario, corpus string, dataBytes int64, receivers int, what string, tools []string, runs int) {
	cas := fanoutCase(receivers, what)
	for r := range runs {
		for _, tool := range tools {
			if ctx.Err() != nil {
				return // interrupted: what was measured is reported
			}
			m, err := b.fanoutOnce(ctx, tool, corpus, receivers, what != "")
			if err != nil {
				b.fail(scenario, cas, tool, err)
				continue
			}
			m.extra["seeder_up_x"] = m.extra["seeder_up_bytes"] / float64(dataBytes)
			m.extra["seeder_sent_x"] = m.extra["seeder_sent_bytes"] / float64(dataBytes)
			b.add(scenario, cas, tool, r, m)
			b.log.Info("measured", "scenario", scenario, "case", cas, "tool", tool, "wall_s", m.wall.Seconds(), "seeder_up_x", m.extra["seeder_up_x"], "seeder_sent_x", m.extra["seeder_sent_x"])
		}
	}
}

func (b *bench) fanoutOnce(ctx context.Context, tool, corpus string, receivers int, late bool) (measure, error) {
	var m measure
	nw, err := b.network(ctx, true, receivers+1)
	if err != nil {
		return m, err
	}
	defer nw.Close()
	ctrs, err := crossedCounters(ctx, b, nw, receivers+1)
	if err != nil {
		return m, err
	}
	defer closeCounters(ctrs)
	read := func() {
		m.extra = map[string]float64{}
		readCrossed(ctx, ctrs, &m)
	}
	var dsts []string
	for i := range receivers {
		dsts = append(dsts, b.dir(fmt.Sprintf("d%d", i+1)))
	}
	defer func() {
		for _, d := range dsts {
			os.RemoveAll(d)
		}
	}()
	if rt, ok := b.rsyncTool(tool); ok {
		d, err := startRsyncd(ctx, rt.bin, b.work, nw.Endpoints[0], corpus, true)
		if err != nil {
			return m, err
		}
		defer d.p.stop(5 * time.Second)
		if err := nw.RelayPorts(ctx, map[int]int{0: d.port}); err != nil {
			return m, err
		}
		t0 := time.Now()
		var clients []*proc
		for i, dst := range dsts {
			args := append(append([]string{"-a"}, rt.opts...), d.url(), dst+"/")
			p, err := startTimed(ctx, "rsync", nw.Endpoints[i+1], filepath.Join(b.work, "fanout.log"), filepath.Join(b.work, b.uniq("fanout")+".time"), rt.bin, args...)
			if err != nil {
				return m, err
			}
			clients = append(clients, p)
		}
		for _, p := range clients {
			<-p.done
			if p.err != nil {
				return m, fmt.Errorf("rsync client: %w", p.err)
			}
		}
		m.wall = time.Since(t0)
		read()
		d.p.stop(5 * time.Second)
		for _, p := range append(clients, d.p) {
			u := p.finalUsage()
			m.cpu += u.CPU
			m.rss = max(m.rss, u.RSS)
		}
		for _, dst := range dsts {
			if err := tree.Compare(corpus, dst); err != nil {
				return m, err
			}
		}
		return m, nil
	}
	src, err := b.cloneTree(ctx, corpus)
	if err != nil {
		return m, err
	}
	cloned := time.Now()
	defer os.RemoveAll(src)
	// The swarm cases: every device shares the folder (and the receivers
	// know each other) before the data arrives at the seeder, as when a
	// release is dropped into a share that many devices follow; otherwise
	// each joiner would pull alone as it joins.
	arrive := ""
	if late {
		arrive, src = src, b.dir("src")
	}
	c, err := b.clusters[tool](ctx, b.dir("home"), nw, append([]string{src}, dsts...))
	if err != nil {
		return m, err
	}
	defer c.close()
	if err := nw.RelayPorts(ctx, portMap(c.wirePorts())); err != nil {
		return m, err
	}
	if err := startAll(ctx, c, receivers+1); err != nil {
		return m, err
	}
	if err := waitAged(ctx, cloned); err != nil {
		return m, err
	}
	win := openWindow(c.procs())
	t0 := time.Now()
	if err := c.share(ctx); err != nil {
		return m, err
	}
	if late {
		if err := moveInto(arrive, src); err != nil {
			return m, err
		}
		t0 = time.Now()
	}
	last, err := waitAllConverged(ctx, c, src, dsts, b.cfg.Timeout)
	if err != nil {
		return m, err
	}
	m.wall = last.Sub(t0)
	read()
	traceSeeder(ctx, b.log, nw, c, tool)
	u := win.close()
	m.cpu, m.rss = u.CPU, u.RSS
	return m, nil
}

// moveInto moves every entry of dir into dst (same file system).
func moveInto(dir, dst string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if err := os.Rename(filepath.Join(dir, de.Name()), filepath.Join(dst, de.Name())); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}

// ---- scenario 7: scale

// scale syncs ScaleFiles tiny files with Blueshift and Syncthing, then
// HugeFiles with Blueshift alone. The trees are made before the timed window
// and deleted after it. With fold4, scenario 4 measures reconnecting on the
// ScaleFiles pairs (rsync on an untimed push of the same corpus).
func (b *bench) scale(ctx context.Context, corp string, daemons []string, withBS, fold4 bool) error {
	cfg := b.cfg
	if n := cfg.ScaleFiles; n > 0 {
		dir := filepath.Join(corp, fmt.Sprintf("tiny-%d", n))
		if err := b.genTinyLogged(dir, n); err != nil {
			return err
		}
		o := initOpts{}
		if fold4 {
			o.after = b.reconnectAfter(n)
		}
		b.initial(ctx, scScale, fmt.Sprintf("%d tiny files", n), dir, daemons, cfg.runsFor(scScale, fmt.Sprint(n)), o)
		if fold4 && ctx.Err() == nil {
			prev := b.clock.enter(scNum(scReconnect), time.Now())
			var rs []string
			for _, r := range b.rsyncs {
				rs = append(rs, r.name)
			}
			b.reconnect(ctx, scReconnect, dir, n, rs, cfg.runsFor(scReconnect, fmt.Sprint(n)))
			b.clock.enter(prev, time.Now())
		}
		removeTree(dir)
	}
	n := cfg.HugeFiles
	if n == 0 || !withBS {
		return nil
	}
	cas := fmt.Sprintf("%d tiny files", n)
	for r := range cfg.runsFor(scScale, fmt.Sprint(n)) {
		if ctx.Err() != nil {
			return nil
		}
		// Made in place for this run alone: a link copy of 1,000,000 files
		// would cost as much as making them.
		dir := b.dir("huge")
		if err := b.genTinyLogged(dir, n); err != nil {
			return err
		}
		m, err := b.initialOnce(ctx, "blueshift", dir, initOpts{inPlace: true, timeout: 2 * b.cfg.Timeout}, r)
		t0 := time.Now()
		removeTree(dir)
		b.log.Info("deleted", "files", n, "s", time.Since(t0).Seconds())
		if err != nil {
			b.fail(scScale, cas, "blueshift", err)
			continue
		}
		b.log.Info("measured", "scenario", scScale, "case", cas, "tool", "blueshift", "run", r, "wall_s", m.wall.Seconds(), "rss_mb", float64(m.rss)/1e6)
		b.add(scScale, cas, "blueshift", r, m)
	}
	return nil
}

func (b *bench) genTinyLogged(dir string, n int) error {
	t0 := time.Now()
	if err := genTiny(dir, b.cfg.Seed, n); err != nil {
		return err
	}
	b.log.Info("generated tiny files", "files", n, "s", time.Since(t0).Seconds())
	return nil
}
