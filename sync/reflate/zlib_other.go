//go:build !((linux || darwin) && (amd64 || arm64))

package reflate

// haveZlib: on this platform the system's zlib is not opened (its uLong
// may not be 64 bits); sections C zlib compressed are not expanded.
func haveZlib() bool { return false }

func zlibCompress([]byte) ([]byte, bool) { return nil, false }

func zlibVersion() string { return "" }
