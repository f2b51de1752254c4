package ewf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// writeSegments writes a small two-segment image and returns its segment files' bytes.
func writeSegments(t testing.TB) (first, second []byte) {
	t.Helper()
	dir := t.TempDir()
	create := func(name string) (File, error) { return os.Create(filepath.Join(dir, name)) }
	w, err := NewWriter(create, "img", Options{MediaSize: 4 << 20, BytesPerSector: 512, SegmentSize: 2 << 20, Compression: CompressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte{7}, 4<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	first, err = os.ReadFile(filepath.Join(dir, SegmentName("img", 1)))
	if err != nil {
		t.Fatal(err)
	}
	second, err = os.ReadFile(filepath.Join(dir, SegmentName("img", 2)))
	if err != nil {
		t.Fatal(err)
	}
	return first, second
}

// The set identifier read from any segment, or from a segment cut short, is the one the writer
// gave the set; two images have different ones; garbage is an error.
func TestSegmentSetID(t *testing.T) {
	a1, a2 := writeSegments(t)
	b1, _ := writeSegments(t)
	id1, err := SegmentSetID(bytes.NewReader(a1))
	if err != nil {
		t.Fatal(err)
	}
	id2, err := SegmentSetID(bytes.NewReader(a2))
	if err != nil || !bytes.Equal(id1, id2) {
		t.Fatalf("segment 2: %x (%v), segment 1: %x", id2, err, id1)
	}
	if cut, err := SegmentSetID(bytes.NewReader(a1[:4096])); err != nil || !bytes.Equal(cut, id1) {
		t.Fatalf("segment cut at 4 KiB: %x (%v)", cut, err)
	}
	if other, err := SegmentSetID(bytes.NewReader(b1)); err != nil || bytes.Equal(other, id1) {
		t.Fatalf("another image's set id %x equals %x (%v)", other, id1, err)
	}
	for _, bad := range [][]byte{nil, []byte("EVF"), bytes.Repeat([]byte{0xff}, 512), a1[:fileHdrSize+10]} {
		if _, err := SegmentSetID(bytes.NewReader(bad)); err == nil {
			t.Fatalf("%d bytes of garbage gave a set id", len(bad))
		}
	}
}

func FuzzSegmentSetID(f *testing.F) {
	a1, a2 := writeSegments(f)
	f.Add(a1[:8192])
	f.Add(a2[:8192])
	f.Add([]byte("EVF\x09\x0d\x0a\xff\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := SegmentSetID(bytes.NewReader(b))
		if err == nil && len(id) != 16 {
			t.Fatalf("set id of %d bytes", len(id))
		}
	})
}
