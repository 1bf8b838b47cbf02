package engine

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/index/store"
)

// touchFloor is the least a touch and a first sync of tiny files cost on
// the file system the devices use, whatever the sync tool does around it:
// the time per file of the calls each cannot do without, measured one file
// after another in the same run as BenchmarkTouch.
//
//   - create: a first sync's receiver creating each file as apply does (a
//     temp file written, closed and renamed into place);
//   - hash: the sender reading and hashing each file (in both: a touch
//     changes the mtime, so the content must be read to be known equal);
//   - setattr: a touch's receiver checking each file and setting its
//     times (and every other one's mode, as touchAll changes them);
//   - index: one device writing what it keeps of each file (a record of a
//     tiny file's stored size, its local state and its tree leaf) to a
//     Pebble database opened with the index's options, in batches of
//     floorBatch, flushed, not compacted; and, as the least any index
//     could keep, one 64-byte entry per file.
//
// A touch costs at least hash+setattr per file and a first sync
// hash+create; both write the same index entries on both devices. So no
// implementation that keeps this index's entries takes a touch below
// (hash+setattr+2·index) / (hash+create+2·index) of a first sync
// (floor-touch/first), and none that keeps any index below the same ratio
// with least for index (floor-least-touch/first).
type touchFloor struct {
	create, hash, setattr, index time.Duration // per file
	least                        time.Duration // index with one small entry per file
}

// Sizes of what the index keeps of a 1 KiB file signed in a batch
// (measured on a device after a first sync of such files: the record's
// envelope with its batch proof, the local state, the tree leaf).
const (
	floorRecordLen = 405
	floorStateLen  = 21
	floorLeafLen   = 32
	floorBatch     = 512
)

func measureTouchFloor(b *testing.B, n int) touchFloor {
	b.Helper()
	dir := b.TempDir()
	root := filepath.Join(dir, "files")
	name := func(i int) string { return filepath.Join(root, tinyName(i)) }
	for i := range min(n, 100) {
		if err := os.MkdirAll(filepath.Dir(name(i)), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	content := tinyContent(0)
	perFile := func(what string, op func(i int) error) time.Duration {
		start := time.Now()
		for i := range n {
			if err := op(i); err != nil {
				b.Fatalf("touch floor, %s of file %d: %v", what, i, err)
			}
		}
		return time.Since(start) / time.Duration(n)
	}
	var fl touchFloor
	fl.create = perFile("create", func(i int) error {
		p := name(i)
		tmp := filepath.Join(filepath.Dir(p), ".floor-"+filepath.Base(p))
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(content, uint64(i))
		if _, err := f.Write(content); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, p)
	})
	buf := make([]byte, len(content))
	fl.hash = perFile("hash", func(i int) error {
		f, err := os.Open(name(i))
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Stat(); err != nil {
			return err
		}
		if _, err := f.Read(buf); err != nil {
			return err
		}
		block.Sum(buf)
		return nil
	})
	when := time.Now().Add(-time.Hour)
	fl.setattr = perFile("setattr", func(i int) error {
		if _, err := os.Lstat(name(i)); err != nil {
			return err
		}
		if err := os.Chtimes(name(i), when, when); err != nil {
			return err
		}
		if i%2 == 0 {
			return os.Chmod(name(i), 0o600)
		}
		return nil
	})
	fl.index = indexFloor(b, filepath.Join(dir, "index"), n, false)
	fl.least = indexFloor(b, filepath.Join(dir, "least"), n, true)
	return fl
}

// indexFloor writes n files' index entries as one device keeps them (see
// touchFloor), or, if least, only one 64-byte value per file (what any
// index must keep: which version of the file it has), and returns the time
// per file, the flush of the memtable included.
func indexFloor(b *testing.B, dir string, n int, least bool) time.Duration {
	b.Helper()
	db, err := store.Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	space, err := db.Space(share.ID{1})
	if err != nil {
		b.Fatal(err)
	}
	rec, state, leaf := make([]byte, floorRecordLen), make([]byte, floorStateLen), make([]byte, floorLeafLen)
	if least {
		rec = make([]byte, 64)
	}
	start := time.Now()
	batch := db.Pebble().NewBatch()
	for i := range n {
		k := block.Sum(binary.LittleEndian.AppendUint64(nil, uint64(i)))
		copy(rec, k[:])
		err := batch.Set(space.RecordKey(k), rec, nil)
		if !least {
			copy(leaf, k[8:])
			err = errors.Join(err,
				batch.Set(space.StateKey(tinyName(i)), state, nil),
				batch.Set(append(append(space.TreePrefix(), 'L'), k[:]...), leaf, nil))
		}
		if err != nil {
			b.Fatal(err)
		}
		if (i+1)%floorBatch == 0 || i == n-1 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch = db.Pebble().NewBatch()
		}
	}
	if err := db.Pebble().Flush(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start) / time.Duration(n)
}

// report adds the floor to b's metrics: the four costs per file, and the
// touch/first ratio of the file system calls alone, with both devices'
// writes of this index's entries, and with the least index's (see
// touchFloor).
func (fl touchFloor) report(b *testing.B) {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(fl.create), "floor-create-us/file")
	b.ReportMetric(us(fl.hash), "floor-hash-us/file")
	b.ReportMetric(us(fl.setattr), "floor-setattr-us/file")
	b.ReportMetric(us(fl.index), "floor-index-us/file")
	touch, first := fl.hash+fl.setattr, fl.hash+fl.create
	b.ReportMetric(float64(touch)/float64(first), "floor-fs-touch/first")
	b.ReportMetric(float64(touch+2*fl.index)/float64(first+2*fl.index), "floor-touch/first")
	b.ReportMetric(float64(touch+2*fl.least)/float64(first+2*fl.least), "floor-least-touch/first")
}
