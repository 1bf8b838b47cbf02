package index

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/index/record"
)

// A scan with batch signing on seals its records in batches of sealBatch
// (the last one shorter) under one signature each; a second device checks
// and commits them, relayed in any order and one at a time, and ends with
// byte-identical envelopes and the same tree root. Without batch signing
// every envelope is signed alone.
func TestScanSignsInBatches(t *testing.T) {
	a := newEnv(t)
	b := newEnv(t)
	b.key = a.key
	b.db.Close()
	b.open()
	const files = 2*sealBatch + 7
	for i := range files {
		a.write(fmt.Sprintf("f/%03d", i), []byte{byte(i)})
	}
	a.sh.SetBatchSigning(true)
	a.scan()

	roots := map[[32]byte]int{}
	var envs []record.Envelope
	if err := a.sh.Records(func(en Entry) error {
		n, _ := en.Envelope.Batch()
		if n == 0 {
			return fmt.Errorf("record %q signed alone", en.Record.Path)
		}
		r, _ := en.Envelope.Root()
		roots[r]++
		envs = append(envs, en.Envelope)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(envs) != files+1 || len(roots) != 3 { // the files and folder f
		t.Fatalf("%d records under %d batch roots, want %d under 3", len(envs), len(roots), files+1)
	}
	// B gets them newest-key-last, each alone, as a relay hands them over.
	for i := len(envs) - 1; i >= 0; i-- {
		en, err := record.Open(envs[i].Bytes())
		if err != nil {
			t.Fatal(err)
		}
		rec, err := b.sh.Check(en)
		if err != nil {
			t.Fatalf("check relayed record %d: %v", i, err)
		}
		var st *FileState
		if rec.Kind == record.File {
			b.write(rec.Path.OS(), mustRead(t, filepath.Join(a.root, rec.Path.OS())))
			fi, _ := os.Lstat(filepath.Join(b.root, rec.Path.OS()))
			s := stateOf(fi)
			st = &s
		}
		if err := b.sh.Commit(en, st); err != nil {
			t.Fatal(err)
		}
	}
	ra, na, _ := a.sh.TreeRoot()
	rb, nb, _ := b.sh.TreeRoot()
	if ra != rb || na != nb {
		t.Fatalf("trees differ: %d and %d records", na, nb)
	}
	for _, e := range envs {
		got, ok, err := b.sh.Lookup(mustPath(t, b, e))
		if err != nil || !ok || !bytes.Equal(got.Envelope.Bytes(), e.Bytes()) {
			t.Fatalf("B's envelope for %x differs from A's (%v)", e.Key(), err)
		}
	}

	// Off again: a change is signed alone.
	a.sh.SetBatchSigning(false)
	a.write("f/000", []byte("changed"))
	a.scan("f/000")
	en, _, _ := a.sh.Lookup("f/000")
	if n, _ := en.Envelope.Batch(); n != 0 {
		t.Fatalf("with batch signing off a record was sealed in a batch of %d", n)
	}
}

// A scan seals its records in tree-key order: read in key order (as a
// walk asks for them), the records of each batch come one after another,
// so an answer to a walk's request shares batches instead of carrying a
// proof and a signature per record. Sealed in the order the scan met
// them, every batch here was spread over the whole key range.
func TestScanSealsInKeyOrder(t *testing.T) {
	a := newEnv(t)
	const files = 5*sealBatch + 3
	for i := range files {
		a.write(fmt.Sprintf("d%d/%03d", i%7, i), []byte{byte(i)})
	}
	a.sh.SetBatchSigning(true)
	a.scan()

	var order [][32]byte // batch root of each record, in key order
	if err := a.sh.Records(func(en Entry) error {
		r, ok := en.Envelope.Root()
		if !ok {
			return fmt.Errorf("record %q signed alone", en.Record.Path)
		}
		order = append(order, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runs, done := 0, map[[32]byte]bool{}
	for i, r := range order {
		if i > 0 && r == order[i-1] {
			continue
		}
		if done[r] {
			t.Fatalf("record %d of %d in key order returns to a batch left before: batches are not runs of keys", i, len(order))
		}
		done[r] = true
		runs++
	}
	if want := (len(order) + sealBatch - 1) / sealBatch; runs != want {
		t.Fatalf("%d records in %d batches, want %d", len(order), runs, want)
	}
}

func mustPath(t *testing.T, e *env, env record.Envelope) record.Path {
	t.Helper()
	r, err := e.sh.Check(env)
	if err != nil {
		t.Fatal(err)
	}
	return r.Path
}

// A batched envelope signed by another share's key is refused by Check
// and Commit, with or without its batch's root seen before.
func TestBatchOfAnotherShareRefused(t *testing.T) {
	a := newEnv(t)
	other := newEnv(t)
	other.key = testKey(t, 9)
	other.db.Close()
	other.open()
	for i := range 3 {
		other.write(fmt.Sprintf("x%d", i), []byte("forged"))
	}
	other.sh.SetBatchSigning(true)
	other.scan()
	forged, _, _ := other.sh.Lookup("x1")
	if n, _ := forged.Envelope.Batch(); n != 3 {
		t.Fatalf("batch of %d, want 3", n)
	}
	if _, err := a.sh.Check(forged.Envelope); err == nil {
		t.Fatal("Check took a batch signed by another share")
	}
	if err := a.sh.Commit(forged.Envelope, nil); err == nil {
		t.Fatal("Commit took a batch signed by another share")
	}
}

// TestScanBatchesEndAtTheirBytes: a scan commits a batch once it holds
// scanBatchBytes, however few paths that is, so that Pebble never takes it
// as a memtable of its own (a batch of more than half a memtable) and its
// buffer stays small. 1,500 files whose long paths make each path's
// writes ~3 KB: one batch by count (batchPaths), two or more by bytes.
func TestScanBatchesEndAtTheirBytes(t *testing.T) {
	a := newEnv(t)
	const files = 1500
	dir := strings.Repeat("d", 200) + "/" + strings.Repeat("e", 200) + "/" + strings.Repeat("f", 200)
	for i := range files {
		a.write(fmt.Sprintf("%s/%s%04d", dir, strings.Repeat("g", 200), i), []byte{byte(i)})
	}
	a.sh.SetBatchSigning(true)
	var batches []int // paths per batch
	cancel := a.sh.Subscribe(func(u Update) {
		if u.FromScan {
			batches = append(batches, len(u.Envelopes))
		}
	})
	defer cancel()
	a.scan()
	total := 0
	for _, n := range batches {
		total += n
	}
	if total < files {
		t.Fatalf("the scan committed %d records in %v, want %d", total, batches, files)
	}
	if len(batches) < 2 {
		t.Fatalf("%d paths of ~3 KB each committed in %d batch (%v): a batch did not end at %d bytes", files, len(batches), batches, scanBatchBytes)
	}
}
