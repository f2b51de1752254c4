package ewf

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

func osCreate(name string) (File, error) { return os.Create(name) }

func testMeta() Metadata {
	return Metadata{CaseNumber: "CASE-42", EvidenceNumber: "EV-7", Description: "test disk",
		Examiner: "J. Doe", Notes: "seized", Model: "WDC WD10", Serial: "SN123",
		AcquisitionTime: time.Unix(1795416150, 0), OS: "Linux", Software: "evidenced 0.1"}
}

// writeImage writes data (fed in odd-sized pieces to exercise chunk cutting) as an E01 set.
func writeImage(t testing.TB, data []byte, opt Options) (string, *Writer) {
	t.Helper()
	return writePieces(t, data, opt, func() int { return 100_000 + mrand.IntN(300_000) })
}

// writePieces writes data as an E01 set in pieces of the sizes piece gives.
func writePieces(t testing.TB, data []byte, opt Options, piece func() int) (string, *Writer) {
	t.Helper()
	base := filepath.Join(t.TempDir(), "img")
	opt.MediaSize = int64(len(data))
	if opt.CaseNumber == "" {
		opt.Metadata = testMeta()
	}
	w, err := NewWriter(osCreate, base, opt)
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), piece())
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	m, s := md5.Sum(data), sha1.Sum(data)
	w.SetHash("MD5", m[:])
	w.SetHash("SHA1", s[:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return base + ".E01", w
}

var hashRE = regexp.MustCompile(`(MD5|SHA1) hash calculated over data:\s+([0-9a-f]+)`)

// ewfverify runs libewf's verifier and checks its computed hashes against the source's.
func ewfverify(t testing.TB, e01, wantMD5, wantSHA1 string) {
	t.Helper()
	testenv.Tool(t, "ewfverify")
	out, err := exec.Command("nice", "ewfverify", "-q", "-d", "sha1", e01).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ewfverify: SUCCESS") {
		t.Fatalf("ewfverify %s: %v\n%s", e01, err, out)
	}
	got := map[string]string{}
	for _, m := range hashRE.FindAllStringSubmatch(string(out), -1) {
		got[m[1]] = m[2]
	}
	if got["MD5"] != wantMD5 || got["SHA1"] != wantSHA1 {
		t.Fatalf("ewfverify hashes %v, want md5 %s sha1 %s", got, wantMD5, wantSHA1)
	}
}

func hashes(data []byte) (string, string) {
	m, s := md5.Sum(data), sha1.Sum(data)
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

func readAll(t testing.TB, e01 string) ([]byte, *Reader) {
	t.Helper()
	r, err := OpenFile(e01)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return got, r
}

func mixedData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b[:n/3])
	for i := n / 3; i < 2*n/3; i++ {
		b[i] = byte(i % 7) // compressible
	}
	return b // last third zero
}

func TestParseCompression(t *testing.T) {
	for _, c := range []Compression{CompressNone, CompressEmptyBlock, CompressFast, CompressBest} {
		got, err := ParseCompression(c.String())
		if err != nil || got != c {
			t.Fatalf("%v: %v %v", c, got, err)
		}
	}
	if _, err := ParseCompression("zstd"); err == nil {
		t.Fatal("accepted zstd")
	}
}

func TestSegmentName(t *testing.T) {
	for n, want := range map[int]string{1: "x.E01", 99: "x.E99", 100: "x.EAA", 101: "x.EAB", 126: "x.EBA", 775: "x.EZZ", 776: "x.FAA"} {
		if got := SegmentName("x", n); got != want {
			t.Errorf("SegmentName(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestSizesRoundTrip(t *testing.T) {
	for _, size := range []int{512, 65 * 512, 1<<20 + 512, 3 << 20} {
		for _, c := range []Compression{CompressNone, CompressEmptyBlock, CompressFast, CompressBest} {
			data := mixedData(size)
			e01, _ := writeImage(t, data, Options{Compression: c})
			got, r := readAll(t, e01)
			if !bytes.Equal(got, data) {
				t.Fatalf("size %d %v: reader data differs", size, c)
			}
			m5, s1 := hashes(data)
			if h := r.Hashes(); h["MD5"] != m5 || h["SHA1"] != s1 {
				t.Fatalf("stored hashes %v", h)
			}
			if r.Metadata().CaseNumber != "CASE-42" || r.Metadata().Serial != "SN123" {
				t.Fatalf("metadata %+v", r.Metadata())
			}
			ewfverify(t, e01, m5, s1)
		}
	}
}

func TestSmallSegments(t *testing.T) {
	data := make([]byte, 5<<20+512)
	rand.Read(data)
	e01, w := writeImage(t, data, Options{Compression: CompressFast, SegmentSize: 1 << 20})
	files := w.Files()
	if len(files) < 5 {
		t.Fatalf("only %d segments", len(files))
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1<<20 {
			t.Fatalf("%s is %d bytes, over the segment size", f, st.Size())
		}
	}
	got, _ := readAll(t, e01)
	if !bytes.Equal(got, data) {
		t.Fatal("reader data differs")
	}
	m5, s1 := hashes(data)
	ewfverify(t, e01, m5, s1)
}

func TestManyTables(t *testing.T) {
	// More chunks than one table can hold (16375) forces several sectors/table groups.
	data := make([]byte, 20000*4096)
	for i := 0; i < len(data); i += 4096 {
		data[i] = byte(i >> 12)
	}
	e01, w := writeImage(t, data, Options{Compression: CompressFast, SectorsPerChunk: 8})
	_ = w
	got, _ := readAll(t, e01)
	if !bytes.Equal(got, data) {
		t.Fatal("reader data differs")
	}
	m5, s1 := hashes(data)
	ewfverify(t, e01, m5, s1)
}

func TestEwfinfoMetadataAndErrors(t *testing.T) {
	testenv.Tool(t, "ewfinfo")
	data := mixedData(1 << 20)
	base := filepath.Join(t.TempDir(), "img")
	w, err := NewWriter(osCreate, base, Options{Metadata: testMeta(), Compression: CompressFast, MediaSize: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	w.AddReadError(100, 8)
	w.AddReadError(1000, 3)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ewfinfo", base+".E01").CombinedOutput()
	if err != nil {
		t.Fatalf("ewfinfo: %v\n%s", err, out)
	}
	for _, want := range []string{"CASE-42", "EV-7", "test disk", "J. Doe", "seized", "WDC WD10", "SN123", "evidenced 0.1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ewfinfo lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command("ewfinfo", "-e", base+".E01").CombinedOutput()
	if err != nil {
		t.Fatalf("ewfinfo -e: %v\n%s", err, out)
	}
	for _, want := range []string{"100 - 107", "1000 - 1002"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ewfinfo -e lacks %q:\n%s", want, out)
		}
	}
	r, err := OpenFile(base + ".E01")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if e := r.ReadErrors(); len(e) != 2 || e[0] != (SectorRange{100, 8}) || e[1] != (SectorRange{1000, 3}) {
		t.Fatalf("ReadErrors = %v", e)
	}
}

func TestEncodeChunkZeroAndIncompressible(t *testing.T) {
	w, err := NewWriter(osCreate, filepath.Join(t.TempDir(), "x"), Options{Compression: CompressFast, MediaSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	dst := make([]byte, 0, w.MaxEncodedSize())
	enc, comp, err := w.EncodeChunk(dst, make([]byte, w.ChunkSize()))
	if err != nil || !comp || len(enc) > 200 {
		t.Fatalf("zero chunk: comp=%v len=%d err=%v", comp, len(enc), err)
	}
	rnd := make([]byte, w.ChunkSize())
	rand.Read(rnd)
	enc, comp, err = w.EncodeChunk(dst, rnd)
	if err != nil || comp || len(enc) != w.ChunkSize()+4 || !bytes.Equal(enc[:len(rnd)], rnd) {
		t.Fatalf("random chunk: comp=%v len=%d err=%v", comp, len(enc), err)
	}
	if allocs := testing.AllocsPerRun(20, func() { w.EncodeChunk(dst, rnd) }); allocs > 0 {
		t.Errorf("EncodeChunk allocates %.1f times per chunk", allocs)
	}
}

func BenchmarkEncodeChunk(b *testing.B) {
	w, _ := NewWriter(func(string) (File, error) { return discard{}, nil }, "x", Options{Compression: CompressFast, MediaSize: 1 << 40})
	src := mixedData(w.ChunkSize())
	dst := make([]byte, 0, w.MaxEncodedSize())
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		w.EncodeChunk(dst, src)
	}
}

func BenchmarkWrite(b *testing.B) {
	data := mixedData(8 << 20)
	if p := os.Getenv("EVIDENCED_CORPUS"); p != "" {
		if f, err := os.Open(p); err == nil {
			io.ReadFull(io.NewSectionReader(f, 64<<20, 8<<20), data)
			f.Close()
		}
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, _ := NewWriter(func(string) (File, error) { return discard{}, nil }, "x", Options{Compression: CompressFast, MediaSize: int64(len(data))})
		w.Write(data)
		w.Close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error)            { return len(p), nil }
func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
func (discard) Close() error                           { return nil }

// TestSmallWritesSameImage: a stream fed in pieces mostly smaller than a chunk (as a logical
// image's small files are), whose full chunks Write holds and encodes together, reads back as the
// stream, across segments, and as the same chunks as the stream in one Write; ewfverify checks
// its hashes.
func TestSmallWritesSameImage(t *testing.T) {
	data := mixedData(6<<20 + 3*512) // a short last chunk
	opt := Options{Metadata: testMeta(), Compression: CompressFast, MediaSize: int64(len(data)), SegmentSize: 2 << 20}
	whole, _ := writePieces(t, data, opt, func() int { return len(data) })
	r := mrand.New(mrand.NewPCG(3, 4))
	small, _ := writePieces(t, data, opt, func() int {
		if r.IntN(10) == 0 {
			return 32768*(1+r.IntN(80)) + r.IntN(100) // now and then several chunks at once
		}
		return 1 + r.IntN(40000)
	})
	got, _ := readAll(t, small)
	if !bytes.Equal(got, data) {
		i := 0
		for i < len(got) && i < len(data) && got[i] == data[i] {
			i++
		}
		t.Fatalf("small writes: the image does not read back as the stream: %d bytes read, %d written, first difference at %d (chunk %d)", len(got), len(data), i, i/32768)
	}
	for i := 1; ; i++ { // the same chunks make the same segments
		a, errA := os.Stat(SegmentName(strings.TrimSuffix(whole, ".E01"), i))
		b, errB := os.Stat(SegmentName(strings.TrimSuffix(small, ".E01"), i))
		if errA != nil && errB != nil && i > 2 {
			break
		}
		if errA != nil || errB != nil || a.Size() != b.Size() {
			t.Fatalf("segment %d: %v %v", i, errA, errB)
		}
	}
	md, sh := hashes(data)
	ewfverify(t, small, md, sh)
}
