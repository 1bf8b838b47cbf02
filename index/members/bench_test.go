package members

import (
	"crypto/ed25519"
	"encoding/binary"
	"testing"
	"time"
)

// BenchmarkMayWrite10k is the membership check's cost for 10,000 records
// of a share with 100 members, as a ratio to the work every record already
// costs a receiver: one Ed25519 verification (record.Envelope.Verify).
func BenchmarkMayWrite10k(b *testing.B) {
	w := newWorld(b, "a")
	st, _ := openStore(b)
	s := w.genesis("a")
	for i := range 99 {
		var d Device
		binary.BigEndian.PutUint64(d[:], uint64(i+1)<<8)
		if err := s.Append(w.entry(s, "a", add(d, ReadWrite))); err != nil {
			b.Fatal(err)
		}
	}
	var raw [][]byte
	for _, e := range s.Entries(0) {
		raw = append(raw, e.Encode())
	}
	if _, err := st.Merge(w.share, w.sharePK, raw); err != nil {
		b.Fatal(err)
	}
	const records = 10_000
	devs := make([]uint64, records)
	for i := range devs {
		devs[i] = uint64(i%99+1) << 8
	}
	// Baseline, measured in this run: verifying the signature of one
	// record envelope per record.
	e := s.Entries(0)[1]
	msg := e.signed()
	sig := e.Sigs[0]
	const verifies = 2000
	start := time.Now()
	for range verifies {
		if !ed25519.Verify(sig.Pub, msg, sig.Sig) {
			b.Fatal("a valid signature did not verify")
		}
	}
	verifyNs := float64(time.Since(start).Nanoseconds()) / verifies
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, d := range devs {
			if !st.MayWrite(w.share, d, 1) {
				b.Fatal("refused a writer")
			}
		}
	}
	b.StopTimer()
	per10k := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(per10k/1e3, "µs/10k-records")
	b.ReportMetric(per10k/(verifyNs*records), "check/verify")
}
