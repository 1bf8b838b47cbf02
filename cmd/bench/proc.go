package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// proc is one process the harness started and owns: it is stopped by stop
// (SIGTERM, then SIGKILL), and its CPU time and peak RSS are read either live
// from /proc or, after exit, from wait4's rusage (which includes the children
// it reaped, such as rsync daemon's per-connection processes).
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has been waited for
	err     error         // Wait's result; valid after done
	logPath string
	// timeOut is set when the process is GNU time running the program
	// (startTimed): the file where time writes the program's rusage.
	timeOut string
}

// timeBin is GNU time (Debian package "time").
const timeBin = "/usr/bin/time"

// startTimed starts bin with args on endpoint ep under GNU time, which
// starts it with a real fork: Go starts children with vfork, and Linux folds
// the parent's high-water mark into a vfork child's maxrss at exec, so
// rusage of a program Go started directly reports the harness's peak RSS
// (40-120 MB) instead of the program's. time's fork gives the program a copy
// of time's own small address space instead, and time reports the program's
// rusage (its reaped children included) in workDir.
func startTimed(ctx context.Context, name string, ep netns.Endpoint, logPath, rusagePath, bin string, args ...string) (*proc, error) {
	targs := append([]string{"-o", rusagePath, "-f", "rusage %M %U %S", bin}, args...)
	p, err := startProc(name, ep.Command(ctx, timeBin, targs...), logPath)
	if err != nil {
		return nil, err
	}
	p.timeOut = rusagePath
	return p, nil
}

// startProc starts cmd with stdout and stderr appended to logPath.
func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	// A Blueshift daemon, whatever its flags, fails to start rather than ask
	// the public DHT routers (cmd/blueshift's envNoPublicDHT; older builds
	// ignore it and get --no-dht).
	cmd.Env = append(cmd.Environ(), "BLUESHIFT_NO_PUBLIC_DHT=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// died returns an error describing an unexpected exit (with the end of the
// log), or nil while the process runs.
func (p *proc) died() error {
	if !p.exited() {
		return nil
	}
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	tail := strings.Join(lines[max(0, len(lines)-4):], " | ")
	return fmt.Errorf("%s (pid %d) exited while the harness waited: %v (%s); last log lines: %s", p.name, p.pid(), p.err, p.cmd.ProcessState, tail)
}

// stop sends SIGTERM, waits up to grace, then kills the process group.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	if p.timeOut != "" {
		// GNU time dies of SIGTERM without writing the rusage: signal the
		// program it runs instead, and time reports when it ends.
		for _, c := range children(p.pid()) {
			_ = syscall.Kill(c, syscall.SIGTERM)
		}
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// usage is CPU seconds (user+system) and peak resident memory in bytes.
type usage struct {
	CPU float64
	RSS int64
	// Peaks is each process's peak RSS, in the window's order (set by
	// window.close only).
	Peaks []int64
}

// children lists the PIDs of pid's direct children.
func children(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// finalUsage is the rusage of the exited process and its reaped children;
// under GNU time, the program's as time reported it.
func (p *proc) finalUsage() usage {
	<-p.done
	if p.timeOut != "" {
		if u, err := parseTimeOutput(p.timeOut); err == nil {
			return u
		}
	}
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return usage{}
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return usage{CPU: cpu, RSS: ru.Maxrss * 1024}
}

// parseTimeOutput reads the "rusage MAXRSS_KB USER_S SYS_S" line GNU time
// wrote (after a "Command exited with..." line when the program failed).
func parseTimeOutput(path string) (usage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return usage{}, fmt.Errorf("read time output: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "rusage" {
			continue
		}
		kb, err1 := strconv.ParseInt(f[1], 10, 64)
		us, err2 := strconv.ParseFloat(f[2], 64)
		ss, err3 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return usage{}, fmt.Errorf("parse time output %q", line)
		}
		return usage{CPU: us + ss, RSS: kb * 1024}, nil
	}
	return usage{}, fmt.Errorf("no rusage line in %s", path)
}

// liveUsage reads /proc/PID/stat (utime+stime+cutime+cstime) and VmHWM.
func liveUsage(pid int) (usage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return usage{}, fmt.Errorf("parse stat of pid %d: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return usage{}, fmt.Errorf("parse stat of pid %d: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:15] { // fields 14-17: utime stime cutime cstime
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	u := usage{CPU: float64(ticks) / clockTicks}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			u.RSS = kb * 1024
		}
	}
	return u, nil
}

// resetPeak resets VmHWM to the current RSS so a measurement window starts
// clean (clear_refs 5; needs the same user or root).
func resetPeak(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// window measures CPU and peak RSS of long-lived processes over an interval.
type window struct {
	procs []*proc
	start []usage
}

func openWindow(procs []*proc) *window {
	w := &window{procs: procs}
	for _, p := range procs {
		resetPeak(p.pid())
		u, _ := liveUsage(p.pid())
		w.start = append(w.start, u)
	}
	return w
}

// close returns the CPU seconds used by all processes since openWindow, the
// largest peak RSS of any one of them, and each one's peak.
func (w *window) close() usage {
	var tot usage
	for i, p := range w.procs {
		u, err := liveUsage(p.pid())
		tot.Peaks = append(tot.Peaks, u.RSS)
		if err != nil {
			continue
		}
		tot.CPU += u.CPU - w.start[i].CPU
		tot.RSS = max(tot.RSS, u.RSS)
	}
	return tot
}

// run executes a short command to completion and returns its output.
func run(ctx context.Context, cmd *exec.Cmd) (string, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), ctx.Err()
}
