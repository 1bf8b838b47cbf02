package reflate

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testLimit = 256 << 20

// testSection is one section of a made ELF file.
type testSection struct {
	name  string
	data  []byte // uncompressed
	level int    // compress/zlib's level of its stream; 0: stored uncompressed; cZlib: C zlib's compress()
}

// cZlib as a testSection's level: the stream is C zlib's (as GNU ld's);
// flushedSpeed: compress/zlib's BestSpeed flushed halfway, a stream that
// looks like the Go linker's and does not reproduce.
const cZlib, flushedSpeed = 100, 101

// makeELF writes a little-endian ELF64 file holding sections, each with a
// compression header and a zlib stream at its level.
func makeELF(t testing.TB, sections []testSection) []byte {
	t.Helper()
	var body bytes.Buffer
	body.Write(make([]byte, 64)) // the file header, written last
	strtab := []byte{0}
	var shdrs []elf.Section64
	shdrs = append(shdrs, elf.Section64{})
	for _, s := range sections {
		sh := elf.Section64{Name: uint32(len(strtab)), Type: uint32(elf.SHT_PROGBITS), Off: uint64(body.Len()), Addralign: 1}
		strtab = append(append(strtab, s.name...), 0)
		if s.level == 0 {
			body.Write(s.data)
		} else {
			sh.Flags = uint64(elf.SHF_COMPRESSED)
			binary.Write(&body, binary.LittleEndian, elf.Chdr64{Type: uint32(elf.COMPRESS_ZLIB), Size: uint64(len(s.data)), Addralign: 1})
			if s.level == cZlib {
				z, ok := zlibCompress(s.data)
				if !ok {
					t.Fatal("no zlib of C's in this build")
				}
				body.Write(z)
			} else if s.level == flushedSpeed {
				zw, _ := zlib.NewWriterLevel(&body, zlib.BestSpeed)
				zw.Write(s.data[:len(s.data)/2])
				zw.Flush()
				zw.Write(s.data[len(s.data)/2:])
				zw.Close()
			} else {
				zw, err := zlib.NewWriterLevel(&body, s.level)
				if err != nil {
					t.Fatal(err)
				}
				zw.Write(s.data)
				zw.Close()
			}
		}
		sh.Size = uint64(body.Len()) - sh.Off
		shdrs = append(shdrs, sh)
	}
	shdrs = append(shdrs, elf.Section64{Name: uint32(len(strtab)), Type: uint32(elf.SHT_STRTAB), Off: uint64(body.Len()), Addralign: 1})
	strtab = append(append(strtab, ".shstrtab"...), 0)
	body.Write(strtab)
	shdrs[len(shdrs)-1].Size = uint64(len(strtab))
	shoff := body.Len()
	for _, sh := range shdrs {
		binary.Write(&body, binary.LittleEndian, sh)
	}
	out := body.Bytes()
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: uint64(shoff), Ehsize: 64, Phentsize: 56, Shentsize: 64,
		Shnum: uint16(len(shdrs)), Shstrndx: uint16(len(shdrs) - 1),
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var h bytes.Buffer
	binary.Write(&h, binary.LittleEndian, hdr)
	copy(out, h.Bytes())
	return out
}

// dwarfish is n bytes of text that compresses as DWARF does, about 3:1.
func dwarfish(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	words := []string{"runtime.", "main.", "func", "0x4a1f", "int64", "string", "(*T).Close", "\x00\x01\x02", "/src/x.go"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(byte(r.IntN(256)))
	}
	return b.Bytes()[:n]
}

// roundTrip checks Find, Expand and Contract on file and returns its layout.
func roundTrip(t testing.TB, file []byte, methods Method) Layout {
	t.Helper()
	r := bytes.NewReader(file)
	l, err := Find(r, int64(len(file)), testLimit, methods)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(int64(len(file)), testLimit); err != nil {
		t.Fatalf("Find's own layout: %v", err)
	}
	x, err := Expand(r, int64(len(file)), l)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(x)) != l.ExpandedSize(int64(len(file))) {
		t.Fatalf("expanded to %d bytes, layout says %d", len(x), l.ExpandedSize(int64(len(file))))
	}
	back, err := Contract(x, l)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, file) {
		t.Fatalf("contracted expansion differs from the file")
	}
	return l
}

// TestFindNamesReproducedSections: streams written at BestSpeed are named
// and expand in place; a stream of compress/zlib at another level and an
// uncompressed section are left as they are.
func TestFindNamesReproducedSections(t *testing.T) {
	info, line := dwarfish(1, 300<<10), dwarfish(2, 100<<10)
	file := makeELF(t, []testSection{
		{".text", dwarfish(3, 10<<10), 0},
		{".debug_info", info, zlib.BestSpeed},
		{".debug_str", dwarfish(4, 50<<10), zlib.DefaultCompression},
		{".debug_ranges", dwarfish(5, 50<<10), zlib.BestCompression},
		{".debug_line", line, zlib.BestSpeed},
	})
	l := roundTrip(t, file, Methods())
	if len(l) != 2 || l[0].Size != int64(len(info)) || l[1].Size != int64(len(line)) || l[0].Method != GoFlate {
		t.Fatalf("layout %+v, want .debug_info and .debug_line", l)
	}
	x, _ := Expand(bytes.NewReader(file), int64(len(file)), l)
	if !bytes.Contains(x, info) || !bytes.Contains(x, line) {
		t.Fatal("expansion lacks a section's content")
	}
}

// TestFindNotELF: any other file has an empty layout and expands to itself.
func TestFindNotELF(t *testing.T) {
	for _, file := range [][]byte{nil, []byte("\x7fEL"), []byte("\x7fELF but not really"), dwarfish(5, 4096)} {
		if l := roundTrip(t, file, Methods()); len(l) != 0 {
			t.Fatalf("layout %+v of a file that is not ELF", l)
		}
	}
}

// TestFindLimit: sections whose expansion passes the limit are left out.
func TestFindLimit(t *testing.T) {
	file := makeELF(t, []testSection{{".debug_a", dwarfish(1, 200<<10), zlib.BestSpeed}, {".debug_b", dwarfish(2, 200<<10), zlib.BestSpeed}})
	l, err := Find(bytes.NewReader(file), int64(len(file)), int64(len(file))+250<<10, Methods())
	if err != nil || len(l) != 1 {
		t.Fatalf("layout %+v (%v), want one section under the limit", l, err)
	}
	if l, _ := Find(bytes.NewReader(file), int64(len(file)), int64(len(file))-1, Methods()); len(l) != 0 {
		t.Fatalf("layout %+v of a file over the limit", l)
	}
}

// TestContractRefusesChangedSection: an expansion whose section no longer
// compresses to its length is refused, not written short.
func TestContractRefusesChangedSection(t *testing.T) {
	file := makeELF(t, []testSection{{".debug_info", dwarfish(1, 100<<10), zlib.BestSpeed}})
	l := roundTrip(t, file, GoFlate)
	x, _ := Expand(bytes.NewReader(file), int64(len(file)), l)
	copy(x[l[0].Off:], dwarfish(9, 20<<10)) // other bytes: another stream
	if _, err := Contract(x, l); !errors.Is(err, ErrNotReproduced) {
		t.Fatalf("Contract of a changed section: %v, want ErrNotReproduced", err)
	}
	if _, err := Contract(x[:10], l); err == nil {
		t.Fatal("Contract of a cut expansion succeeded")
	}
}

// TestCheck refuses layouts no file of the size can have.
func TestCheck(t *testing.T) {
	for _, l := range []Layout{
		{{Off: -1, Len: 10, Size: 10, Method: GoFlate}},
		{{Off: 90, Len: 20, Size: 10, Method: GoFlate}},
		{{Off: 10, Len: 0, Size: 10, Method: GoFlate}},
		{{Off: 10, Len: 10, Size: -1, Method: GoFlate}},
		{{Off: 10, Len: 10, Size: 10, Method: GoFlate}, {Off: 15, Len: 10, Size: 10, Method: GoFlate}},
		{{Off: 10, Len: 10, Size: 1 << 40, Method: GoFlate}},
		{{Off: 10, Len: 10, Size: 10}},
		{{Off: 10, Len: 10, Size: 10, Method: GoFlate | Zlib}},
		make(Layout, MaxSections+1),
	} {
		if err := l.Check(100, 1<<20); err == nil {
			t.Errorf("layout %+v passed Check", l)
		}
	}
	if err := (Layout{{Off: 10, Len: 10, Size: 30, Method: GoFlate}, {Off: 20, Len: 80, Size: 100, Method: Zlib}}).Check(100, 1<<20); err != nil {
		t.Errorf("a good layout: %v", err)
	}
}

// goBuild builds a small Go program with the given linker flags.
func goBuild(t *testing.T, ldflags string) []byte {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	src := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Fprintln(os.Stderr, \"hello\", len(os.Args)) }\n"
	for name, data := range map[string]string{"go.mod": "module hello\n\ngo 1.21\n", "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-ldflags="+ldflags, "-o", "hello", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(ldflags, "external") {
			t.Skipf("no external linker here: %v: %s", err, out)
		}
		t.Fatalf("go build: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// compressedSections counts a file's SHF_COMPRESSED sections.
func compressedSections(t *testing.T, file []byte) int {
	f, err := elf.NewFile(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_COMPRESSED != 0 {
			n++
		}
	}
	return n
}

// TestGoLinkerReproduced: every compressed debug section of a program the
// Go linker linked compresses again byte for byte (the linker's
// compress/zlib at BestSpeed, whose output does not depend on how its input
// was written).
func TestGoLinkerReproduced(t *testing.T) {
	file := goBuild(t, "-linkmode=internal")
	n := compressedSections(t, file)
	if n == 0 {
		t.Fatal("the Go linker compressed no section")
	}
	l := roundTrip(t, file, GoFlate)
	if len(l) != n {
		t.Fatalf("%d of %d compressed sections reproduced", len(l), n)
	}
	t.Logf("%d sections, %d bytes expand to %d", len(l), len(file), l.ExpandedSize(int64(len(file))))
}

// TestExternalLinkerReproduced: a program linked by the host linker (as
// any with cgo beyond the standard library's is: Blueshift itself) has its
// debug sections compressed by GNU ld with C zlib's compress(), which Go's
// compress/zlib does not reproduce at any level; the system's zlib does.
func TestExternalLinkerReproduced(t *testing.T) {
	file := goBuild(t, "-linkmode=external")
	n := compressedSections(t, file)
	if n == 0 {
		t.Skip("the host linker compressed no section")
	}
	if l := roundTrip(t, file, GoFlate); len(l) != 0 {
		t.Fatalf("compress/zlib reproduced %+v, streams C zlib wrote", l)
	}
	if !haveZlib() {
		t.Skip("no zlib of C's in this build")
	}
	if l := roundTrip(t, file, Zlib); len(l) != n {
		t.Fatalf("zlib %s reproduced %d of %d sections the host linker compressed", zlibVersion(), len(l), n)
	}
}

// TestZlibSections: sections C zlib compressed are named by Zlib alone and
// round-trip.
func TestZlibSections(t *testing.T) {
	if !haveZlib() {
		t.Skip("no zlib of C's in this build")
	}
	file := makeELF(t, []testSection{{".debug_info", dwarfish(1, 300<<10), cZlib}, {".debug_line", dwarfish(2, 100<<10), zlib.BestSpeed}})
	if l := roundTrip(t, file, Methods()); len(l) != 2 || l[0].Method != Zlib || l[1].Method != GoFlate {
		t.Fatalf("layout %+v, want a Zlib and a GoFlate section", l)
	}
	if l := roundTrip(t, file, GoFlate); len(l) != 1 {
		t.Fatalf("layout %+v with GoFlate alone", l)
	}
}

// FuzzReflate: no input panics Find, and whatever Find names expands and
// contracts back to the input.
func FuzzReflate(f *testing.F) {
	f.Add(makeELF(f, []testSection{{".debug_info", dwarfish(1, 2000), zlib.BestSpeed}, {".text", []byte("code"), 0}}))
	f.Add(makeELF(f, []testSection{{".debug_a", dwarfish(2, 500), zlib.BestSpeed}, {".debug_b", dwarfish(3, 300), zlib.DefaultCompression}}))
	if haveZlib() {
		f.Add(makeELF(f, []testSection{{".debug_c", dwarfish(4, 700), cZlib}}))
	}
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, file []byte) {
		r := bytes.NewReader(file)
		l, err := Find(r, int64(len(file)), 1<<20, Methods())
		if err != nil {
			return
		}
		x, err := Expand(r, int64(len(file)), l)
		if err != nil {
			t.Fatalf("Expand of Find's layout %+v: %v", l, err)
		}
		back, err := Contract(x, l)
		if err != nil || !bytes.Equal(back, file) {
			t.Fatalf("Contract of Find's layout %+v: %v", l, err)
		}
	})
}

// TestFindTriesBounded: a file of many sections that do not reproduce
// costs at most MaxSections tries; those after are not looked at.
func TestFindTriesBounded(t *testing.T) {
	var secs []testSection
	for i := range MaxSections {
		secs = append(secs, testSection{".debug_x", dwarfish(uint64(i), 200), flushedSpeed})
	}
	secs = append(secs, testSection{".debug_info", dwarfish(99, 2000), zlib.BestSpeed})
	file := makeELF(t, secs)
	if l := roundTrip(t, file, Methods()); len(l) != 0 {
		t.Fatalf("layout %+v: a section after %d tries was tried", l, MaxSections)
	}
	if l := roundTrip(t, makeELF(t, secs[1:]), Methods()); len(l) != 1 {
		t.Fatalf("layout %+v, want the BestSpeed section", l)
	}
}
