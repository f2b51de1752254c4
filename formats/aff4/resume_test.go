package aff4

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// resumeSource is 10 bevies of 4 chunks of 4 KiB and a short last chunk: text, zeros and noise.
func resumeSource() []byte {
	src := smallSource(40*4096 + 1000)
	clear(src[5*4096 : 7*4096]) // zero chunks take the zero fast path
	return src
}

func resumeOpts() Options {
	return Options{Compression: "lz4", ChunkSize: 4096, ChunksPerSegment: 4, CaseNumber: "C-1",
		AcquiredAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

// writeChunks writes src[from:to] (chunk aligned, or to the end) through EncodeChunk/WriteChunk, as
// the pipeline does.
func writeChunks(t *testing.T, w *Writer, src []byte, from, to int) {
	t.Helper()
	cs := w.ChunkSize()
	dst := make([]byte, 0, 2*cs)
	for off := from; off < to; off += cs {
		c := src[off:min(off+cs, to)]
		enc, comp, err := w.EncodeChunk(dst, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteChunk(enc, comp, len(c)); err != nil {
			t.Fatal(err)
		}
	}
}

// readImage reads the one image of a container and its stored hashes.
func readImage(t *testing.T, path string) ([]byte, map[string]string) {
	t.Helper()
	v, err := OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer v.Close()
	imgs := v.Images()
	if len(imgs) != 1 {
		t.Fatalf("%d images", len(imgs))
	}
	ra, err := imgs[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, imgs[0].Size))
	if err != nil {
		t.Fatal(err)
	}
	return b, imgs[0].Hashes()
}

func setSums(w *Writer, src []byte) map[string]string {
	m, s := md5.Sum(src), sha1.Sum(src)
	w.SetHash("MD5", m[:])
	w.SetHash("SHA1", s[:])
	return map[string]string{"MD5": hex.EncodeToString(m[:]), "SHA1": hex.EncodeToString(s[:])}
}

// TestCrashResumeAcrossBevies interrupts an acquisition twice (once inside a bevy, once right at
// a bevy's end), each time after more chunks and garbage were written past the checkpoint, as a
// crash leaves them; the resumed container must read back as the source, carry the source's
// hashes, pass unzip -t, and hold the same members as an uninterrupted one.
func TestCrashResumeAcrossBevies(t *testing.T) {
	unzip := testenv.Tool(t, "unzip")
	src := resumeSource()
	dir := t.TempDir()
	cs := 4096

	// Uninterrupted reference.
	refPath := filepath.Join(dir, "ref.aff4")
	rf, err := os.Create(refPath)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(rf, resumeOpts())
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, w, src, 0, len(src))
	sums := setSums(w, src)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rf.Close()

	path := filepath.Join(dir, "r.aff4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err = NewWriter(f, resumeOpts())
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoints at 6 chunks (inside bevy 1) and at 16 chunks (bevy 3 just ended).
	at := 0
	for i, cp := range []int{6, 16} {
		writeChunks(t, w, src, at*cs, cp*cs)
		st, err := w.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		if (i == 0) != (st.BevyHeader >= 0) {
			t.Fatalf("checkpoint %d: bevy header %d", cp, st.BevyHeader)
		}
		if i == 0 {
			if urn, err := ReadVolumeURN(f); err != nil || urn != w.VolumeURN() {
				t.Fatalf("ReadVolumeURN of the partial container: %q, %v; want %s", urn, err, w.VolumeURN())
			}
		}
		// The crash: the run goes on past the checkpoint, then dies without Close.
		writeChunks(t, w, src, cp*cs, (cp+5)*cs)
		w.zw.flush()
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xEE}, 777), w.zw.off); err != nil {
			t.Fatal(err)
		}
		f.Close()

		data, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, back.Offset); err != nil {
			t.Fatal(err)
		}
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			t.Fatal(err)
		}
		opt := resumeOpts()
		opt.AcquiredAt = time.Time{} // the checkpoint's acquisition time is used
		if w, err = Resume(f, f, opt, back); err != nil {
			t.Fatalf("resume at chunk %d: %v", cp, err)
		}
		if back.Written != int64(cp*cs) {
			t.Fatalf("checkpoint at chunk %d says %d bytes written", cp, back.Written)
		}
		at = cp
	}
	writeChunks(t, w, src, at*cs, len(src))
	setSums(w, src)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	got, hashes := readImage(t, path)
	if !bytes.Equal(got, src) {
		t.Fatalf("resumed image stream differs from the source (%d vs %d bytes)", len(got), len(src))
	}
	for n, s := range sums {
		if hashes[n] != s {
			t.Errorf("stored %s %s, want %s", n, hashes[n], s)
		}
	}
	m, s := md5.Sum(got), sha1.Sum(got)
	if hex.EncodeToString(m[:]) != sums["MD5"] || hex.EncodeToString(s[:]) != sums["SHA1"] {
		t.Error("hashes of the read-back stream differ from the source's")
	}
	ref, _ := readImage(t, refPath)
	if !bytes.Equal(ref, got) {
		t.Error("resumed and uninterrupted streams differ")
	}
	out, err := exec.Command(unzip, "-t", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Errorf("unzip -t: %v\n%s", err, out)
	}
	// Same members, same sizes: the resumed container is laid out as an uninterrupted one.
	list := func(p string) string {
		out, err := exec.Command(unzip, "-Z", "-1", p).CombinedOutput()
		if err != nil {
			t.Fatalf("zipinfo %s: %v\n%s", p, err, out)
		}
		return string(out)
	}
	if a, b := list(refPath), list(path); strings.Count(a, "\n") != strings.Count(b, "\n") {
		t.Errorf("member lists differ:\n%s\nvs\n%s", a, b)
	}
	if fi, _ := os.Stat(path); fi.Size() != fileSize(t, refPath) {
		t.Errorf("resumed container %d bytes, uninterrupted %d", fi.Size(), fileSize(t, refPath))
	}
}

func fileSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestResumeRefusesOtherContainer: a checkpoint never continues a container of another volume, and
// the refused file is left as it was.
func TestResumeRefusesOtherContainer(t *testing.T) {
	src := resumeSource()
	dir := t.TempDir()
	var states []State
	var paths []string
	for i := 0; i < 2; i++ {
		p := filepath.Join(dir, "c"+string(rune('a'+i))+".aff4")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWriter(f, resumeOpts())
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, w, src, 0, 10*4096)
		st, err := w.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		states, paths = append(states, st), append(paths, p)
	}
	before, _ := os.ReadFile(paths[1])
	f, err := os.OpenFile(paths[1], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Resume(f, f, resumeOpts(), states[0]); err == nil || !strings.Contains(err.Error(), "volume") {
		t.Fatalf("resume onto another volume's container: %v", err)
	}
	// Its own checkpoint, altered, is refused too.
	for name, alter := range map[string]func(*State){
		"written":     func(st *State) { st.Written += 4096 },
		"bevy":        func(st *State) { st.Bevy++ },
		"bevy header": func(st *State) { st.BevyHeader -= 2 },
		"offset":      func(st *State) { st.Offset = 10 },
	} {
		st := states[1]
		alter(&st)
		if _, err := Resume(f, f, resumeOpts(), st); err == nil {
			t.Errorf("resume with an altered %s accepted", name)
		}
	}
	if urn, err := ReadVolumeURN(f); err != nil || urn != states[1].Volume || urn == states[0].Volume {
		t.Errorf("ReadVolumeURN = %q, %v; want %s", urn, err, states[1].Volume)
	}
	after, _ := os.ReadFile(paths[1])
	if !bytes.Equal(before, after) {
		t.Error("the refused container was changed")
	}
	if _, err := ReadVolumeURN(bytes.NewReader([]byte("PK\x03\x04 not a container"))); err == nil {
		t.Error("ReadVolumeURN accepted garbage")
	}
	// A checkpoint of a writer that cannot write at offsets is refused, not silently useless.
	w, _ := NewWriter(&bytes.Buffer{}, resumeOpts())
	writeChunks(t, w, src, 0, 4096)
	if _, err := w.Checkpoint(); err == nil {
		t.Error("Checkpoint on a bytes.Buffer succeeded")
	}
}

// TestCompressionIRIs: each method is written with the AFF4 standard's IRI and reads back; the
// deflate IRI older versions wrote still reads; an unknown method is refused.
func TestCompressionIRIs(t *testing.T) {
	src := resumeSource()
	want := map[string]string{
		"lz4": "https://code.google.com/p/lz4/", "snappy": "http://code.google.com/p/snappy/",
		"deflate": "https://tools.ietf.org/html/rfc1951", "none": "http://aff4.org/Schema#NullCompressor",
		"stored": "http://aff4.org/Schema#NullCompressor",
	}
	for comp, iri := range want {
		p := filepath.Join(t.TempDir(), comp+".aff4")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		opt := resumeOpts()
		opt.Compression = comp
		w, err := NewWriter(f, opt)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, w, src, 0, len(src))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, _ := readImage(t, p); !bytes.Equal(got, src) {
			t.Errorf("%s: stream differs", comp)
		}
		turtle := memberText(t, p, "information.turtle")
		if !strings.Contains(turtle, "aff4:compressionMethod <"+iri+">") {
			t.Errorf("%s: turtle does not name %s:\n%s", comp, iri, turtle)
		}
		if comp == "deflate" {
			// An image of an older version: the same bytes with the old IRI (same length
			// is not needed: the turtle member is rewritten through a fresh container).
			old := strings.Replace(turtle, iri, "https://www.ietf.org/rfc/rfc1951.txt", 1)
			op := rewriteMember(t, p, "information.turtle", old)
			if got, _ := readImage(t, op); !bytes.Equal(got, src) {
				t.Error("deflate image with the older IRI does not read back")
			}
		}
	}
	if _, err := NewWriter(io.Discard, Options{Compression: "zstd"}); err == nil {
		t.Error("unknown compression accepted")
	}
	if _, err := CompressionIRI("ultra"); err == nil {
		t.Error("CompressionIRI accepted ultra")
	}
}

func memberText(t *testing.T, path, name string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("%s has no member %s", path, name)
	return ""
}

// rewriteMember copies the container at path with member name's content replaced.
func rewriteMember(t *testing.T, path, name, content string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := path + ".old.aff4"
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, m := range zr.File {
		if m.Name == name {
			mw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
			if err == nil {
				_, err = mw.Write([]byte(content))
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := zw.Copy(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
