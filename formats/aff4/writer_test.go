package aff4

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/internal/testenv"
)

func fileSHA256(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeImage streams src into a new .aff4 at dst and records MD5/SHA1/SHA256
// of the source computed on the fly. It writes to the file itself (an
// io.WriterAt, as the daemon does: final local headers); writeImageTo with
// streamed writes through a bufio.Writer instead (sequential: data descriptors).
func writeImage(t testing.TB, src io.Reader, dst string, opt Options) (map[string]string, *Writer) {
	t.Helper()
	return writeImageTo(t, src, dst, opt, false)
}

func writeImageTo(t testing.TB, src io.Reader, dst string, opt Options, streamed bool) (map[string]string, *Writer) {
	t.Helper()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var bw io.Writer = out
	if streamed {
		bw = bufio.NewWriterSize(out, 1<<20)
	}
	w, err := NewWriter(bw, opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := map[string]hash.Hash{"MD5": md5.New(), "SHA1": sha1.New(), "SHA256": sha256.New()}
	mw := io.MultiWriter(w, hs["MD5"], hs["SHA1"], hs["SHA256"])
	if _, err := io.CopyBuffer(mw, src, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for n, h := range hs {
		w.SetHash(digest.Name(n), h.Sum(nil))
		sums[n] = hex.EncodeToString(h.Sum(nil))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, ok := bw.(*bufio.Writer); ok {
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return sums, w
}

func TestCorpusRoundTrip(t *testing.T) {
	src := testenv.CorpusPrefix(t)
	before := fileSHA256(t, src)
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"lz4", "snappy", "deflate", "none"} {
		t.Run(comp, func(t *testing.T) {
			f, err := os.Open(src) // read-only: the evidence is never written
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dst := filepath.Join(t.TempDir(), "img.aff4")
			start := time.Now()
			sums, w := writeImage(t, f, dst, Options{Compression: comp, CaseNumber: "C-1", Tool: "evidenced test"})
			el := time.Since(start)
			ost, _ := os.Stat(dst)
			t.Logf("%s: %d -> %d bytes (%.1f%%) in %v (%.0f MB/s incl. 3 hashes)", comp, st.Size(), ost.Size(),
				100*float64(ost.Size())/float64(st.Size()), el.Round(time.Millisecond), float64(st.Size())/el.Seconds()/1e6)

			v, err := OpenFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			im := v.Images()[0]
			if im.URN != w.ImageURN() || v.URNs[0] != w.VolumeURN() {
				t.Errorf("URNs: image %s/%s volume %v/%s", im.URN, w.ImageURN(), v.URNs, w.VolumeURN())
			}
			if im.Size != st.Size() {
				t.Fatalf("size %d, want %d", im.Size, st.Size())
			}
			stored := im.Hashes()
			for n, s := range sums {
				if stored[n] != s {
					t.Errorf("stored %s = %q, want %s", n, stored[n], s)
				}
			}
			ra, err := im.Open()
			if err != nil {
				t.Fatal(err)
			}
			// Byte-identical: compare block by block against the source.
			a, b := make([]byte, 1<<20), make([]byte, 1<<20)
			for off := int64(0); off < st.Size(); off += int64(len(a)) {
				n := min(int64(len(a)), st.Size()-off)
				if _, err := ra.ReadAt(a[:n], off); err != nil && err != io.EOF {
					t.Fatalf("ReadAt %d: %v", off, err)
				}
				if _, err := f.ReadAt(b[:n], off); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(a[:n], b[:n]) {
					t.Fatalf("data differs in block at %d", off)
				}
			}
			got := hashReader(t, ra, im.Size, "MD5", "SHA1", "SHA256")
			for n, s := range sums {
				if got[n] != s {
					t.Errorf("read-back %s = %s, want %s", n, got[n], s)
				}
			}
		})
	}
	if after := fileSHA256(t, src); after != before {
		t.Fatalf("source changed: sha256 %s -> %s", before, after)
	}
}

// smallSource is corpus-like data: text, random, zero runs, a partial last chunk.
func smallSource(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; {
		switch (i / 100000) % 3 {
		case 0:
			i += copy(b[i:], "The quick brown fox jumps over the lazy dog 0123456789\n")
		case 1:
			k := min(4096, n-i)
			rand.Read(b[i : i+k])
			i += k
		default:
			i += 4096
		}
	}
	return b
}

func TestSmallRoundTripAndLayout(t *testing.T) {
	data := smallSource(3*32768*5 + 1234) // several bevies with ChunksPerSegment 4, short last chunk
	for _, comp := range []string{"lz4", "snappy", "deflate", "none"} {
		t.Run(comp, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, Options{Compression: comp, ChunksPerSegment: 4, CaseNumber: "Case \"7\"", EvidenceNumber: "E-2",
				Examiner: "Ann Ex", Description: "desc\nline2", Model: "WDC WD10", Serial: "SN123", Size: int64(len(data)), SectorSize: 512,
				Tool: "evidenced 0.1", AcquiredAt: time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data[:1000]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data[1000:]); err != nil {
				t.Fatal(err)
			}
			sum := md5.Sum(data)
			w.SetHash("MD5", sum[:])
			sha := sha256.Sum256(data)
			w.SetHash(digest.SHA256, sha[:])
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if zr.File[0].Name != "container.description" || zr.Comment != w.VolumeURN() {
				t.Errorf("first member %q, comment %q", zr.File[0].Name, zr.Comment)
			}
			members := map[string]*zip.File{}
			for _, f := range zr.File {
				members[f.Name] = f
				if f.Method != zip.Store {
					t.Errorf("%s not stored", f.Name)
				}
			}
			read := func(name string) []byte {
				f := members[name]
				if f == nil {
					t.Fatalf("no member %s; have %v", name, members)
				}
				rc, _ := f.Open()
				defer rc.Close()
				b, err := io.ReadAll(rc)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			if got := string(read("container.description")); got != w.VolumeURN() {
				t.Errorf("container.description %q", got)
			}
			if got := string(read("version.txt")); got != "major=1\nminor=0\ntool=evidenced 0.1\n" {
				t.Errorf("version.txt %q", got)
			}
			v, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			streams := v.ImageStreams()
			if len(streams) != 1 {
				t.Fatalf("streams %v", streams)
			}
			enc := "aff4%3A%2F%2F" + strings.TrimPrefix(streams[0], "aff4://")
			nChunks := (len(data) + 32767) / 32768
			for bevy := 0; bevy*4 < nChunks; bevy++ {
				idx := read(enc + "/" + []string{"00000000", "00000001", "00000002", "00000003"}[bevy] + ".index")
				seg := read(enc + "/" + []string{"00000000", "00000001", "00000002", "00000003"}[bevy])
				want := min(4, nChunks-bevy*4)
				if len(idx) != 12*want {
					t.Fatalf("bevy %d index %d bytes, want %d", bevy, len(idx), 12*want)
				}
				end := uint64(0)
				for i := 0; i < want; i++ {
					off := binary.LittleEndian.Uint64(idx[12*i:])
					ln := binary.LittleEndian.Uint32(idx[12*i+8:])
					if off != end || ln > 32768 {
						t.Errorf("bevy %d chunk %d: off %d len %d", bevy, i, off, ln)
					}
					end = off + uint64(ln)
					if comp == "none" && ln != 32768 {
						t.Errorf("uncompressed chunk of %d bytes", ln)
					}
				}
				if end != uint64(len(seg)) {
					t.Errorf("bevy %d: index covers %d of %d bytes", bevy, end, len(seg))
				}
			}
			// Our own turtle through our reader: metadata round-trips.
			im := v.Images()[0]
			want := map[string]string{"caseNumber": "Case \"7\"", "evidenceNumber": "E-2", "examiner": "Ann Ex", "caseDescription": "desc\nline2",
				"diskModel": "WDC WD10", "diskSerial": "SN123", "sectorSize": "512"}
			for k, wv := range want {
				if im.Metadata[k] != wv {
					t.Errorf("Metadata[%s] = %q, want %q", k, im.Metadata[k], wv)
				}
			}
			if h := im.Hashes(); h["MD5"] != hex.EncodeToString(sum[:]) || h["SHA256"] != hex.EncodeToString(sha[:]) {
				t.Errorf("hashes %v", h)
			}
			s := v.props[streams[0]]
			if s[aff4NS+"chunkSize"][0].val != "32768" || s[aff4NS+"chunksInSegment"][0].val != "4" || s[aff4NS+"compressionMethod"][0].val != w.method {
				t.Errorf("stream props %v", s)
			}
			if !strings.Contains(string(read("information.turtle")), `"`+hex.EncodeToString(sum[:])+`"^^aff4:MD5`) {
				t.Error("turtle lacks typed MD5 literal")
			}
			ra, err := im.Open()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(data))
			if _, err := ra.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("round trip differs")
			}
			// Random access across chunk and bevy boundaries.
			for _, off := range []int64{0, 32767, 32768 * 4, int64(len(data)) - 10} {
				p := make([]byte, 40000)
				n, _ := ra.ReadAt(p, off)
				if !bytes.Equal(p[:n], data[off:min(int64(len(data)), off+40000)]) {
					t.Errorf("ReadAt %d differs", off)
				}
			}
		})
	}
}

func TestChunkAPIAndReadErrors(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := w.ChunkSize()
	if cs != 32768 {
		t.Fatalf("ChunkSize %d", cs)
	}
	zero := make([]byte, cs)
	rnd := make([]byte, cs)
	rand.Read(rnd)
	text := bytes.Repeat([]byte("abcdefgh"), cs/8)
	dst := make([]byte, 0, 2*cs)
	var want []byte
	for i, c := range [][]byte{text, zero, rnd, text[:100]} {
		enc, comp, err := w.EncodeChunk(dst, c)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0, 1:
			if !comp || len(enc) >= cs/4 {
				t.Errorf("chunk %d: compressed=%v len %d", i, comp, len(enc))
			}
		case 2:
			if comp || len(enc) != cs || !bytes.Equal(enc, rnd) {
				t.Errorf("random chunk: compressed=%v len %d", comp, len(enc))
			}
		}
		if err := w.WriteChunk(enc, comp, len(c)); err != nil {
			t.Fatal(err)
		}
		want = append(want, c...)
	}
	if err := w.WriteChunk(text, false, cs); err == nil {
		t.Error("chunk after the short last chunk accepted")
	}
	w.AddReadError(int64(cs)+100, 200)
	if err := w.Close(); err == nil {
		// the failed WriteChunk poisons the writer: Close reports it
		t.Error("Close after a failed WriteChunk returned nil")
	}

	// Same again, cleanly, with a read error.
	buf.Reset()
	w, _ = NewWriter(&buf, Options{})
	for _, c := range [][]byte{text, zero, rnd, text[:100]} {
		enc, comp, _ := w.EncodeChunk(dst, c)
		if err := w.WriteChunk(enc, comp, len(c)); err != nil {
			t.Fatal(err)
		}
	}
	w.AddReadError(int64(cs)+100, 200)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := v.Images()[0].Open()
	got := make([]byte, len(want))
	if _, err := ra.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	exp := append([]byte(nil), want...)
	pat := tile([]byte("UNREADABLEDATA"))
	copy(exp[cs+100:cs+300], pat[cs+100:cs+300])
	if !bytes.Equal(got, exp) {
		t.Error("read-error region not mapped to aff4:UnreadableData")
	}
	if v.Images()[0].Metadata["acquisitionCompletionState"] != "Completed With Read Errors" {
		t.Errorf("state %q", v.Images()[0].Metadata["acquisitionCompletionState"])
	}
}

// sparseSource yields size bytes of zeros with a few random 64 KiB blocks.
type sparseSource struct {
	size, off int64
	blocks    map[int64][]byte
}

func (s *sparseSource) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-s.off))
	clear(p[:n])
	for at, b := range s.blocks {
		if at < s.off+int64(n) && at+int64(len(b)) > s.off {
			lo, hi := max(at, s.off), min(at+int64(len(b)), s.off+int64(n))
			copy(p[lo-s.off:hi-s.off], b[lo-at:hi-at])
		}
	}
	s.off += int64(n)
	return n, nil
}

func (s *sparseSource) reset() { s.off = 0 }

func TestZip64Sparse(t *testing.T) {
	unzip := testenv.Tool(t, "unzip")
	zipinfo := testenv.Tool(t, "zipinfo")
	if testing.Short() {
		t.Skip("short")
	}
	size := int64(4)<<30 + 12345 // over 4 GiB, odd tail
	src := &sparseSource{size: size, blocks: map[int64][]byte{}}
	for _, at := range []int64{0, 1 << 30, 3<<30 + 777, size - 70000} {
		b := make([]byte, 65536)
		rand.Read(b)
		src.blocks[at] = b
	}
	dst := filepath.Join(t.TempDir(), "sparse.aff4")
	start := time.Now()
	sums, _ := writeImage(t, src, dst, Options{Compression: "lz4"})
	st, _ := os.Stat(dst)
	t.Logf("4 GiB sparse: %d bytes in %v", st.Size(), time.Since(start).Round(time.Millisecond))
	for _, cmd := range [][]string{{unzip, "-tqq", dst}, {zipinfo, "-t", dst}} {
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%v: %v\n%s", cmd, err, out)
		}
	}
	// The zip comment must carry the volume URN.
	out, _ := exec.Command(unzip, "-z", dst).CombinedOutput()
	if !strings.Contains(string(out), "aff4://") {
		t.Errorf("unzip -z: %s", out)
	}
	v, err := OpenFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	im := v.Images()[0]
	if im.Size != size {
		t.Fatalf("size %d", im.Size)
	}
	ra, _ := im.Open()
	for at, b := range src.blocks {
		got := make([]byte, len(b))
		if _, err := ra.ReadAt(got, at); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b[:len(got)]) {
			t.Errorf("block at %d differs", at)
		}
	}
	if im.Hashes()["MD5"] != sums["MD5"] {
		t.Errorf("MD5 %v vs %v", im.Hashes(), sums)
	}
}

func TestUnzipSmall(t *testing.T) {
	unzip := testenv.Tool(t, "unzip")
	dst := filepath.Join(t.TempDir(), "small.aff4")
	writeImage(t, bytes.NewReader(smallSource(1<<20+5)), dst, Options{Compression: "snappy"})
	out, err := exec.Command(unzip, "-t", dst).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Errorf("unzip -t: %v\n%s", err, out)
	}
	// The same through a sequential writer: bevies end with data descriptors.
	streamed := filepath.Join(t.TempDir(), "streamed.aff4")
	writeImageTo(t, bytes.NewReader(smallSource(1<<20+5)), streamed, Options{Compression: "snappy", ChunksPerSegment: 8}, true)
	out, err = exec.Command(unzip, "-t", streamed).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Errorf("unzip -t of the streamed container: %v\n%s", err, out)
	}
	out, _ = exec.Command(unzip, "-l", dst).CombinedOutput()
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if strings.Contains(l, "----") {
			if !strings.Contains(lines[i+1], "container.description") {
				t.Errorf("first member is not container.description:\n%s", out)
			}
			break
		}
	}
}

func BenchmarkWriteLZ4(b *testing.B) {
	var data []byte
	if p := os.Getenv("EVIDENCED_CORPUS"); p != "" {
		f, err := os.Open(p)
		if err == nil {
			data = make([]byte, 64<<20)
			n, _ := io.ReadFull(f, data)
			data = data[:n]
			f.Close()
		}
	}
	if len(data) == 0 {
		data = smallSource(64 << 20)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := NewWriter(io.Discard, Options{Compression: "lz4"})
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := w.Write(data[off:min(len(data), off+1<<20)]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
