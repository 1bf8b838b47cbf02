package record

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestVectorUpdate(t *testing.T) {
	var v Vector
	v1 := v.Update(5, 0)
	v2 := v1.Update(2, 0)
	v3 := v2.Update(5, 100)
	v4 := v3.Update(5, 50) // clock behind the counter: still moves forward
	v5 := v4.Update(9, 0)
	for _, tt := range []struct {
		got, want Vector
	}{
		{v1, Vector{{5, 1}}},
		{v2, Vector{{2, 1}, {5, 1}}},
		{v3, Vector{{2, 1}, {5, 100}}},
		{v4, Vector{{2, 1}, {5, 101}}},
		{v5, Vector{{2, 1}, {5, 101}, {9, 1}}},
	} {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("got %v, want %v", tt.got, tt.want)
		}
		if err := tt.got.check(); err != nil {
			t.Errorf("%v: %v", tt.got, err)
		}
	}
	if v1.Compare(Vector{{5, 1}}) != Equal || len(v) != 0 {
		t.Errorf("Update mutated its receiver")
	}
}

func TestVectorUpdateDoesNotShareArray(t *testing.T) {
	v := make(Vector, 2, 10)
	v[0], v[1] = Counter{1, 1}, Counter{3, 1}
	a := v.Update(2, 0)
	b := v.Update(4, 0)
	if !slices.Equal(a, Vector{{1, 1}, {2, 1}, {3, 1}}) || !slices.Equal(b, Vector{{1, 1}, {3, 1}, {4, 1}}) {
		t.Fatalf("updates of one vector interfere: %v %v", a, b)
	}
	m := v.Merge(Vector{{0, 7}})
	m[0].Value = 99
	if v[0].Value != 1 {
		t.Fatalf("Merge result shares the receiver's array")
	}
}

func TestVectorCompare(t *testing.T) {
	tests := []struct {
		a, b Vector
		want Ordering
	}{
		{nil, nil, Equal},
		{Vector{{1, 1}}, Vector{{1, 1}}, Equal},
		{Vector{{1, 2}}, Vector{{1, 1}}, Greater},
		{Vector{{1, 1}}, Vector{{1, 2}}, Lesser},
		{Vector{{1, 1}}, nil, Greater},
		{nil, Vector{{1, 1}}, Lesser},
		{Vector{{1, 1}, {2, 1}}, Vector{{1, 1}}, Greater},
		{Vector{{1, 1}}, Vector{{2, 1}}, Concurrent},
		{Vector{{1, 2}, {2, 1}}, Vector{{1, 1}, {2, 2}}, Concurrent},
		{Vector{{1, 2}, {3, 1}}, Vector{{1, 2}, {2, 1}, {3, 1}}, Lesser},
	}
	for _, tt := range tests {
		if got := tt.a.Compare(tt.b); got != tt.want {
			t.Errorf("%v.Compare(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestVectorProperties checks the algebra on random vectors: Merge is an
// upper bound of both sides, commutative, and Compare is antisymmetric.
func TestVectorProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() Vector {
		var v Vector
		for range rng.IntN(5) {
			v = v.Update(Device(rng.IntN(6)+1), uint64(rng.IntN(3)))
		}
		return v
	}
	flip := map[Ordering]Ordering{Equal: Equal, Greater: Lesser, Lesser: Greater, Concurrent: Concurrent}
	for range 2000 {
		a, b := random(), random()
		m := a.Merge(b)
		if err := m.check(); err != nil {
			t.Fatalf("Merge(%v, %v) = %v: %v", a, b, m, err)
		}
		if o := m.Compare(a); o != Greater && o != Equal {
			t.Fatalf("Merge(%v, %v) = %v is not >= %v", a, b, m, a)
		}
		if !slices.Equal(m, b.Merge(a)) {
			t.Fatalf("Merge not commutative for %v, %v", a, b)
		}
		if a.Compare(b) != flip[b.Compare(a)] {
			t.Fatalf("Compare not antisymmetric for %v, %v", a, b)
		}
		if u := m.Update(3, 0); u.Compare(a) != Greater || u.Compare(b) != Greater {
			t.Fatalf("update after merge does not dominate both sides")
		}
	}
}
