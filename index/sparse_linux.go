package index

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// dataRanges asks the file system (SEEK_DATA, SEEK_HOLE) where f's first
// size bytes hold data. ok is false when it cannot tell.
func dataRanges(f *os.File, size int64) (data []dataRange, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, false
	}
	ok = true
	cerr := rc.Control(func(fd uintptr) {
		for off := int64(0); off < size; {
			start, err := unix.Seek(int(fd), off, unix.SEEK_DATA)
			if errors.Is(err, unix.ENXIO) {
				break // only holes from off on
			}
			if err != nil {
				ok = false
				return
			}
			if start >= size {
				break
			}
			end, err := unix.Seek(int(fd), start, unix.SEEK_HOLE)
			if err != nil || end <= start || len(data) == maxDataRanges {
				ok = false
				return
			}
			end = min(end, size)
			data = append(data, dataRange{start, end})
			off = end
		}
		// Reading goes by ReadAt; the offset is put back all the same.
		if _, err := unix.Seek(int(fd), 0, unix.SEEK_SET); err != nil {
			ok = false
		}
	})
	return data, ok && cerr == nil
}
