package record

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Ordering is how two version vectors relate.
type Ordering int

const (
	Equal      Ordering = iota // same history
	Greater                    // the receiver has seen everything the other has, and more
	Lesser                     // the other has seen everything the receiver has, and more
	Concurrent                 // each has seen something the other has not: a conflict
)

// String names the ordering for messages.
func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Greater:
		return "greater"
	case Lesser:
		return "lesser"
	case Concurrent:
		return "concurrent"
	}
	return fmt.Sprintf("ordering(%d)", int(o))
}

// Get returns d's counter, 0 if v does not name d.
func (v Vector) Get(d Device) uint64 {
	i, ok := v.find(d)
	if !ok {
		return 0
	}
	return v[i].Value
}

// Update returns v with d's counter moved to max(old+1, now). Passing a clock
// (e.g. Unix seconds) as now makes counters readable and keeps a device that
// lost its database from reusing old values; correctness does not depend on
// it (now = 0 gives a plain counter). v is not modified.
func (v Vector) Update(d Device, now uint64) Vector {
	i, ok := v.find(d)
	out := make(Vector, 0, len(v)+1)
	out = append(out, v[:i]...)
	old := uint64(0)
	if ok {
		old = v[i].Value
		i++
	}
	next := old + 1
	if old == math.MaxUint64 {
		next = old // saturate: only a hostile writer gets here
	}
	out = append(out, Counter{Device: d, Value: max(next, now)})
	return append(out, v[i:]...)
}

// Compare reports how v relates to o.
func (v Vector) Compare(o Vector) Ordering {
	vBigger, oBigger := false, false
	i, j := 0, 0
	for i < len(v) || j < len(o) {
		switch {
		case j == len(o) || (i < len(v) && v[i].Device < o[j].Device):
			vBigger = vBigger || v[i].Value > 0
			i++
		case i == len(v) || o[j].Device < v[i].Device:
			oBigger = oBigger || o[j].Value > 0
			j++
		default:
			vBigger = vBigger || v[i].Value > o[j].Value
			oBigger = oBigger || o[j].Value > v[i].Value
			i++
			j++
		}
	}
	switch {
	case vBigger && oBigger:
		return Concurrent
	case vBigger:
		return Greater
	case oBigger:
		return Lesser
	}
	return Equal
}

// Merge returns the element-wise maximum of v and o: a vector that has seen
// both histories. Neither input is modified.
func (v Vector) Merge(o Vector) Vector {
	out := make(Vector, 0, max(len(v), len(o)))
	i, j := 0, 0
	for i < len(v) || j < len(o) {
		switch {
		case j == len(o) || (i < len(v) && v[i].Device < o[j].Device):
			out = append(out, v[i])
			i++
		case i == len(v) || o[j].Device < v[i].Device:
			out = append(out, o[j])
			j++
		default:
			out = append(out, Counter{Device: v[i].Device, Value: max(v[i].Value, o[j].Value)})
			i++
			j++
		}
	}
	return out
}

// String renders the vector for logs: "{0000000000000001:3 …}".
func (v Vector) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%016x:%d", uint64(c.Device), c.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// check reports why v is not a well-formed vector (sorted by device, no
// duplicates, no zero values), or nil.
func (v Vector) check() error {
	for i, c := range v {
		if c.Value == 0 {
			return fmt.Errorf("version vector has a zero counter for device %016x", uint64(c.Device))
		}
		if i > 0 && v[i-1].Device >= c.Device {
			return fmt.Errorf("version vector is not sorted by device at entry %d", i)
		}
	}
	return nil
}

// find returns where d is, or where it would be inserted.
func (v Vector) find(d Device) (int, bool) {
	return slices.BinarySearchFunc(v, d, func(c Counter, d Device) int {
		switch {
		case c.Device < d:
			return -1
		case c.Device > d:
			return 1
		}
		return 0
	})
}
