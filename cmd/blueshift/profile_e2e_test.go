package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunWritesCPUProfile: run --cpu-profile leaves a CPU profile of the
// daemon's whole run once it stops (cmd/bench -profiles relies on it), and
// a path it cannot write is refused at start, naming the flag.
func TestRunWritesCPUProfile(t *testing.T) {
	d := newDevice(t, "prof")
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	d.startArgs(bin, "--home", d.home, "run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "off", "--cpu-profile", path)
	d.stop()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no profile after the daemon stopped: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("profile is not a gzipped pprof file: %v", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("profile cut short (written before the daemon stopped?): %v", err)
	}
	// A CPU profile's sample types are named in its string table.
	if !bytes.Contains(data, []byte("cpu")) || !bytes.Contains(data, []byte("nanoseconds")) {
		t.Fatalf("profile of %d bytes is not a CPU profile", len(data))
	}

	bad := filepath.Join(t.TempDir(), "missing", "cpu.pprof")
	if _, errOut, code := d.cli("run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "off", "--cpu-profile", bad); code != 2 || !strings.Contains(errOut, "--cpu-profile") {
		t.Fatalf("run --cpu-profile %s: exit %d, %q; want exit 2 naming the flag", bad, code, errOut)
	}
}
