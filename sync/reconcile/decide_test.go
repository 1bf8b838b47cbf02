package reconcile

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func side(by record.Device, v record.Vector, content string, mtime time.Time, deleted bool) *Side {
	r := record.Record{
		Path: "a.txt", Kind: record.File, Mode: 0o644, ModTime: mtime, Version: v,
		ModifiedBy: by, Deleted: deleted,
	}
	if !deleted {
		r.FileHash = block.Sum([]byte(content))
		r.Size = int64(len(content))
	}
	leaf := merkle.Leaf(block.Sum([]byte(content + mtime.String() + string(rune(by)))))
	if deleted {
		leaf = merkle.Leaf(block.Sum([]byte("deleted" + string(rune(by)))))
	}
	return &Side{Rec: r, Leaf: leaf}
}

func vec(cs ...uint64) record.Vector {
	var v record.Vector
	for i := 0; i+1 < len(cs); i += 2 {
		v = append(v, record.Counter{Device: record.Device(cs[i]), Value: cs[i+1]})
	}
	return v
}

func TestDecide(t *testing.T) {
	later := t0.Add(time.Second)
	tests := []struct {
		name          string
		local, remote *Side
		want          Outcome
	}{
		{"no local record", nil, side(1, vec(1, 1), "x", t0, false), Take},
		{"same envelope", side(1, vec(1, 1), "x", t0, false), side(1, vec(1, 1), "x", t0, false), Keep},
		{"remote newer", side(1, vec(1, 1), "x", t0, false), side(2, vec(1, 1, 2, 1), "y", t0, false), Take},
		{"local newer", side(2, vec(1, 1, 2, 1), "y", t0, false), side(1, vec(1, 1), "x", t0, false), Keep},
		{"conflict, remote later", side(1, vec(1, 2), "x", t0, false), side(2, vec(1, 1, 2, 1), "y", later, false), TakeAfterCopy},
		{"conflict, local later", side(1, vec(1, 2), "x", later, false), side(2, vec(1, 1, 2, 1), "y", t0, false), Keep},
		{"conflict, same time, larger device wins", side(1, vec(1, 2), "x", t0, false), side(2, vec(1, 1, 2, 1), "y", t0, false), TakeAfterCopy},
		{"conflict, same content", side(1, vec(1, 2), "x", t0, false), side(2, vec(1, 1, 2, 1), "x", later, false), Take},
		{"remote delete vs local edit", side(1, vec(1, 2), "x", t0, false), side(2, vec(1, 1, 2, 1), "", later, true), Keep},
		{"local delete vs remote edit", side(1, vec(1, 2), "", later, true), side(2, vec(1, 1, 2, 1), "y", t0, false), Take},
		{"both deleted", side(1, vec(1, 2), "", t0, true), side(2, vec(1, 1, 2, 1), "", t0, true), Take},
		{"remote delete newer", side(1, vec(1, 1), "x", t0, false), side(2, vec(1, 1, 2, 1), "", t0, true), Take},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.local, *tt.remote); got != tt.want {
				t.Errorf("Decide = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDecideAgrees checks that two devices holding a and b reach the same
// verdict: exactly one of them changes its disk to the other's record, or
// neither does when the envelopes are the same.
func TestDecideAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	contents := []string{"x", "y", "z"}
	for i := 0; i < 5000; i++ {
		mk := func(by record.Device) *Side {
			v := vec(1, uint64(rng.IntN(3)), 2, uint64(rng.IntN(3)))
			var nz record.Vector
			for _, c := range v {
				if c.Value > 0 {
					nz = append(nz, c)
				}
			}
			return side(by, nz, contents[rng.IntN(3)], t0.Add(time.Duration(rng.IntN(2))*time.Second), rng.IntN(4) == 0)
		}
		a, b := mk(record.Device(1+rng.IntN(2))), mk(record.Device(1+rng.IntN(2)))
		ab, ba := Decide(a, *b), Decide(b, *a)
		if a.Leaf == b.Leaf {
			if ab != Keep || ba != Keep {
				t.Fatalf("same envelope: %v/%v", ab, ba)
			}
			continue
		}
		aTakes, bTakes := ab != Keep, ba != Keep
		if aTakes == bTakes {
			t.Fatalf("case %d: both %v (a=%+v b=%+v): %v / %v", i, aTakes, a.Rec, b.Rec, ab, ba)
		}
		if ab == TakeAfterCopy && ba == TakeAfterCopy {
			t.Fatalf("two conflict copies")
		}
	}
}
