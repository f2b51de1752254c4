package ewf

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestWriteReproducible: the same data written twice through Write (held chunks, batches encoded
// in flight) gives the same chunks, each the same size and kind. The deflate engine's states
// were once dropped and remade until some chunks fell back to another encoder, and an E01 written
// to a share came out a few kilobytes off the same E01 written locally.
func TestWriteReproducible(t *testing.T) {
	data, err := os.ReadFile(testenv.CorpusPrefix(t))
	if err != nil {
		t.Fatal(err)
	}
	data = data[:min(len(data), 32<<20)]
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func() []chunkLoc {
		dir := t.TempDir()
		w, err := NewWriter(func(name string) (File, error) { return os.Create(filepath.Join(dir, name)) }, "img",
			Options{Compression: CompressFast, MediaSize: int64(len(data)), Metadata: Metadata{CaseNumber: "T-1", AcquisitionTime: at, SystemTime: at}})
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 4 << 20 {
			if _, err := w.Write(data[off:min(off+4<<20, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := OpenFile(filepath.Join(dir, "img.E01"))
		if err != nil {
			t.Fatal(err)
		}
		return r.chunks
	}
	a, b := write(), write()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d and %d chunks", len(a), len(b))
	}
	diff := 0
	for i := range a {
		if a[i] != b[i] {
			if diff == 0 {
				t.Errorf("chunk %d: %+v, then %+v", i, a[i], b[i])
			}
			diff++
		}
	}
	if diff > 0 {
		t.Fatalf("%d of %d chunks differ between two writes of the same data", diff, len(a))
	}
}
