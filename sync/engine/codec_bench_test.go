package engine

import (
	"testing"

	"github.com/blueshift-sync/blueshift/index/record"
)

// BenchmarkSmallRecordDelta encodes the record of a touched small file as a
// delta against its previous record, as a push of a `touch` does once per
// file, and reports the bytes it costs on the wire.
func BenchmarkSmallRecordDelta(b *testing.B) {
	c, err := newCodec()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	key := newKey(b)
	seal := func(i int, mtime int64) record.Envelope { return sealTiny(b, key, i, mtime) }
	const n = 256
	olds, curs := make([]record.Envelope, n), make([]record.Envelope, n)
	for i := range n {
		olds[i], curs[i] = seal(i, 1_700_000_000), seal(i, 1_700_000_600)
	}
	b.ReportAllocs()
	var bytes int
	for i := 0; b.Loop(); i++ {
		rd := c.encodeRecord(curs[i%n], &olds[i%n])
		bytes += len(rd.Data)
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "B/record")
}
