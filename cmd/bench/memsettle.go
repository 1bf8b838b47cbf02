package main

import (
	"context"
	"os"
	"time"
)

// Memory handed back to the host. In a VM whose kernel reports free pages
// to its host (free page reporting; this machine's firecracker VM does, in
// blocks of 8 MiB), memory a run frees is given back about two seconds
// later, and the next process to touch it takes a fault into the host per
// page: writing 512 MiB into the page cache cost 1.0 s of system time on
// cold pages here and 0.1 s on pages freed the moment before. A tool timed
// right after another one's files were deleted wrote into warm pages and
// one timed first into cold ones, so the order of the tools decided much
// of a large file's ratio (rsync ran after Blueshift). Every initial sync
// now starts on cold pages: the harness waits until what the last run
// freed has been handed back.

// pageReporting is where such a kernel keeps its free page reporting
// parameters; reportSettle is how long after a free the handing back is
// done (two seconds' delay, then a pass or two).
const (
	pageReporting = "/sys/module/page_reporting"
	reportSettle  = 4 * time.Second
)

// reportsFreePages says whether this kernel hands freed memory back.
func reportsFreePages() bool {
	_, err := os.Stat(pageReporting)
	return err == nil
}

// settleFreedMemory waits until memory freed by the last run is handed back
// to the host, where the kernel does that: every tool's timed run then
// starts from the same state of memory.
func settleFreedMemory(ctx context.Context) {
	if !reportsFreePages() {
		return
	}
	t := time.NewTimer(reportSettle)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
