// Package reflate undoes and redoes the compression of a program's
// compressed debug sections, so a delta of two builds can be taken between
// their uncompressed bytes.
//
// The Go linker compresses a program's DWARF (the ELF sections .debug_*
// with SHF_COMPRESSED, a compression header of type COMPRESS_ZLIB) with
// Go's compress/zlib at BestSpeed. A compressed stream differs everywhere
// after its first changed byte, so two builds that differ by a few moved
// addresses differ in all of their compressed DWARF, while the DWARF itself
// differs little. Find names the sections whose stream this package
// compresses again byte for byte; Expand writes the file with each of them
// decompressed in place; Contract compresses them again and gives back the
// file.
//
// A section is named only when compressing its content again gives its
// stream exactly. Programs linked by an external linker (a Go program with
// cgo, linked by GNU ld with --compress-debug-sections) carry streams
// written by C zlib, which Go's compress/zlib does not reproduce at any
// level: those are compressed again with the system's zlib, opened at run
// time (Zlib, where Methods has it); without one, Find names none of them.
//
// A file is outside input: every size read from it is bounded (Limits),
// and a Layout from a peer is checked (Layout.Check) before use.
package reflate
