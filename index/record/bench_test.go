package record

import "testing"

// Benchmarks of the per-record costs on a 100 MiB file's record (1600
// blocks): what a writer pays once, and what every receiver pays.
func BenchmarkSeal(b *testing.B) {
	r := fileRecord(1600, 64<<10)
	e, _ := Seal(r, testKey, testPriv)
	b.SetBytes(int64(len(e.Bytes())))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(r, testKey, testPriv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenVerifyRecord(b *testing.B) {
	e, _ := Seal(fileRecord(1600, 64<<10), testKey, testPriv)
	raw := e.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		o, err := Open(raw)
		if err == nil {
			err = o.Verify(testPub)
		}
		if err == nil {
			_, err = o.Record()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenRecordSmall(b *testing.B) {
	e, _ := Seal(fileRecord(1, 100), testKey, testPriv)
	raw := e.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		o, err := Open(raw)
		if err == nil {
			_, err = o.Record()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
