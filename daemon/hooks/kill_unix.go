//go:build unix

package hooks

import (
	"os/exec"
	"syscall"
)

// killGroup makes the command the leader of its own process group and, on
// timeout, kills the whole group: a hook's children do not outlive it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
