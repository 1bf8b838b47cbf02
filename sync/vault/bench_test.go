package vault

import (
	"context"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// BenchmarkEncryptedMember pushes a share's files to an encrypted member
// over TLS and pulls them back (sealed records, sealed padded blocks,
// opened and checked), against a baseline measured in the same run: the
// same blocks, in the clear, through the same connection and store (a
// VaultPut of the plain blocks, then a VaultBlocks of each). Metrics:
// time/plain and bytes/plain (bytes stored and carried, items included).
func BenchmarkEncryptedMember(b *testing.B) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	envs, blocks := files(b, key, 12) // ~4.6 MiB in 12 files
	var total int64
	for _, d := range blocks {
		total += int64(len(d))
	}
	server, _ := newIdentity(b)
	aID, aPriv := newIdentity(b)
	ctx := context.Background()

	plain := func() (time.Duration, int64) {
		m := newMember(b)
		m.access.writers[aID.ID()] = true
		c := dial(b, m, server, aID)
		start := time.Now()
		var names [][wire.VaultNameSize]byte
		var batch [][]byte
		var n int64
		flush := func() {
			if len(batch) == 0 {
				return
			}
			if _, err := c.Request(ctx, &wire.VaultPut{Share: key.ID(), Blocks: batch}); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
		for _, d := range blocks {
			if len(batch) == wire.MaxVaultBlocks {
				flush()
			}
			batch = append(batch, d)
			names = append(names, block.Sum(d))
			n += int64(len(d))
		}
		flush()
		for _, nm := range names {
			resp, err := c.Request(ctx, &wire.VaultBlocks{Share: key.ID(), Names: [][wire.VaultNameSize]byte{nm}, Data: true})
			if err != nil || len(resp.(*wire.VaultBlocksResponse).Data) != 1 {
				b.Fatalf("plain block back: %v", err)
			}
			n += int64(len(resp.(*wire.VaultBlocksResponse).Data[0]))
		}
		return time.Since(start), n
	}
	sealed := func() (time.Duration, int64) {
		m := newMember(b)
		m.access.writers[aID.ID()] = true
		c := dial(b, m, server, aID)
		start := time.Now()
		w := &Writer{Share: key.ID(), Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(blocks)}
		st, err := w.Push(ctx, c, envs)
		if err != nil {
			b.Fatal(err)
		}
		n := st.Bytes
		r := &Reader{Share: key.ID(), Base: base, Epoch: func(uint64) (seal.Keys, bool) { return base, true },
			MayPush: func(identity.DeviceID) bool { return true }}
		pst, err := r.Pull(ctx, c, nil, func(got []record.Envelope, f Fetch) error {
			for _, env := range got {
				rec, _ := env.Record()
				for _, ref := range rec.Blocks {
					d, err := f(ctx, ref.Hash, ref.Size)
					if err != nil {
						return err
					}
					n += int64(seal.SealedSize(len(d)))
				}
			}
			return nil
		})
		if err != nil || pst.Items != len(envs) {
			b.Fatalf("pulled %d records: %v", pst.Items, err)
		}
		return time.Since(start), n + pst.Bytes
	}
	b.SetBytes(total)
	b.ReportAllocs()
	var pt, st time.Duration
	var pb, sb int64
	for b.Loop() {
		t1, n1 := plain()
		t2, n2 := sealed()
		pt, st, pb, sb = pt+t1, st+t2, pb+n1, sb+n2
	}
	b.ReportMetric(float64(st)/float64(pt), "time/plain")
	b.ReportMetric(float64(sb)/float64(pb), "bytes/plain")
	// Per iteration, for cmd/bench's rows (scenario 11).
	n := float64(b.N)
	b.ReportMetric(st.Seconds()/n, "sealed-s")
	b.ReportMetric(pt.Seconds()/n, "plain-s")
	b.ReportMetric(float64(sb)/n, "sealed-bytes")
	b.ReportMetric(float64(pb)/n, "plain-bytes")
}
