package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// makeTree writes the same small tree, with fixed mtimes, under dir.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{"a.txt": "alpha", "d/b.txt": "beta", "d/e/c.bin": string(bytes.Repeat([]byte{7}, 300000))}
	when := time.Unix(1_700_000_000, 123456789)
	for p, data := range files {
		abs := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(abs, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(abs, when, when); err != nil {
			t.Fatal(err)
		}
	}
}

type rootOut struct {
	Root    string `json:"root"`
	Records uint64 `json:"records"`
	Errors  int    `json:"errors"`
}

func inspectRootOf(t *testing.T, dir string) rootOut {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := inspectRoot(context.Background(), dir, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var r rootOut
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	return r
}

func TestInspectRootIsAFunctionOfTheTree(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	makeTree(t, a)
	makeTree(t, b)
	ra, rb := inspectRootOf(t, a), inspectRootOf(t, b)
	if ra.Root != rb.Root || ra.Records != 5 || len(ra.Root) != 64 {
		t.Fatalf("equal trees: %+v and %+v", ra, rb)
	}
	ents, _ := os.ReadDir(a)
	if len(ents) != 2 {
		t.Fatalf("inspect root wrote inside the folder: %d entries", len(ents))
	}
	os.WriteFile(filepath.Join(b, "a.txt"), []byte("alphA"), 0o644)
	os.Chtimes(filepath.Join(b, "a.txt"), time.Unix(1_700_000_000, 123456789), time.Unix(1_700_000_000, 123456789))
	if rc := inspectRootOf(t, b); rc.Root == ra.Root {
		t.Fatal("different trees gave one root")
	}
}

func TestInspectChunks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	os.WriteFile(p, data, 0o644)
	var out bytes.Buffer
	if err := inspectChunks(context.Background(), p, &out); err != nil {
		t.Fatal(err)
	}
	var next int64
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var c struct {
			Offset int64  `json:"offset"`
			Length int64  `json:"length"`
			Hash   string `json:"hash"`
		}
		if err := json.Unmarshal(line, &c); err != nil || c.Offset != next || len(c.Hash) != 64 {
			t.Fatalf("line %q: %+v %v", line, c, err)
		}
		next += c.Length
	}
	if next != int64(len(data)) {
		t.Fatalf("chunks cover %d of %d bytes", next, len(data))
	}
	if code := run([]string{"inspect", "chunks", filepath.Join(dir, "missing")}); code != exitFail {
		t.Fatalf("missing file: exit %d", code)
	}
	if code := run([]string{"inspect", "chunks"}); code != exitUsage {
		t.Fatalf("no argument: exit %d", code)
	}
}
