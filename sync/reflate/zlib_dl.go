//go:build (linux || darwin) && (amd64 || arm64)

package reflate

import (
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The system's zlib, opened at run time (purego: no cgo, no C headers to
// build with): a machine without it still runs Blueshift, and sections its
// linker compressed are then simply not expanded.
var libz struct {
	once    sync.Once
	ok      bool
	bound   func(srcLen uint64) uint64
	comp2   func(dst *byte, dstLen *uint64, src *byte, srcLen uint64, level int32) int32
	version func() string
}

// libzNames are the names the system's zlib goes by, tried in order.
var libzNames = map[string][]string{
	"linux":  {"libz.so.1", "libz.so"},
	"darwin": {"/usr/lib/libz.1.dylib", "libz.dylib"},
}

// haveZlib reports whether the system's zlib could be opened.
func haveZlib() bool { return openZlib() }

func openZlib() bool {
	libz.once.Do(func() {
		for _, name := range libzNames[runtime.GOOS] {
			h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			if err != nil {
				continue
			}
			purego.RegisterLibFunc(&libz.bound, h, "compressBound")
			purego.RegisterLibFunc(&libz.comp2, h, "compress2")
			purego.RegisterLibFunc(&libz.version, h, "zlibVersion")
			libz.ok = true
			return
		}
	})
	return libz.ok
}

// zlibCompress compresses src as zlib's compress() does (level 6, a 32 KiB
// window, the default memory level and strategy), which is how GNU ld
// compresses debug sections (--compress-debug-sections=zlib). ok is false
// when the system has no zlib.
func zlibCompress(src []byte) ([]byte, bool) {
	if !openZlib() {
		return nil, false
	}
	bound := libz.bound(uint64(len(src)))
	dst := make([]byte, bound)
	var in *byte
	if len(src) > 0 {
		in = unsafe.SliceData(src) // read during the call only
	}
	n := bound
	const defaultCompression, ok = -1, 0 // Z_DEFAULT_COMPRESSION, Z_OK
	if libz.comp2(unsafe.SliceData(dst), &n, in, uint64(len(src)), defaultCompression) != ok {
		return nil, false
	}
	runtime.KeepAlive(src)
	return dst[:n], true
}

// zlibVersion is the version of the system's zlib, "" without one.
func zlibVersion() string {
	if !openZlib() {
		return ""
	}
	return libz.version()
}
