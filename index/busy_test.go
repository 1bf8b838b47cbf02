package index

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blueshift-sync/blueshift/index/record"
)

// TestScanLeavesBusyPathsAlone: a path ScanOptions.Busy names is neither
// recorded nor tombstoned, and is listed in the result; the next scan
// without it records it as usual.
func TestScanLeavesBusyPathsAlone(t *testing.T) {
	e := newEnv(t)
	e.write("kept.txt", []byte("kept"))
	e.write("gone.txt", []byte("gone"))
	e.scan()
	e.write("new.txt", []byte("new"))
	if err := os.Remove(filepath.Join(e.root, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	busy := func(p record.Path) bool { return p == "new.txt" || p == "gone.txt" }
	res, err := e.sh.Scan(context.Background(), ScanOptions{Busy: busy})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Busy)
	if !slices.Equal(res.Busy, []record.Path{"gone.txt", "new.txt"}) || res.Records != 0 {
		t.Fatalf("busy %v, %d records; want gone.txt and new.txt left alone, no record", res.Busy, res.Records)
	}
	recs := e.live(t)
	if _, ok := recs["new.txt"]; ok {
		t.Error("a busy new file was recorded")
	}
	if _, ok := recs["gone.txt"]; !ok {
		t.Error("a busy file gone from disk was tombstoned")
	}
	if res := e.scan(); res.Records != 2 || len(res.Busy) != 0 {
		t.Fatalf("the next scan: %+v, want the two records", res)
	}
}
