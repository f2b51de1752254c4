package output

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/target"
)

// localTarget is a local folder target in a temporary directory.
func localTarget(t *testing.T) (string, target.Target) {
	t.Helper()
	dir := t.TempDir()
	tgt, err := target.OpenLocal(dir, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	return dir, tgt
}

// testData is n bytes of a pattern that compresses somewhat, as a drive's content does.
func testData(n int) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i/3 + i/4096)
	}
	return data
}

// writeChunks writes data[from:to] through an opened image as the pipeline does.
func writeChunks(t *testing.T, img Image, data []byte, from, to int) {
	t.Helper()
	cs := img.Writer().ChunkSize()
	dst := make([]byte, 0, 2*cs)
	for off := from; off < to; off += cs {
		c := data[off:min(off+cs, to)]
		enc, comp, err := img.Writer().EncodeChunk(dst, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := img.Writer().WriteChunk(enc, comp, len(c)); err != nil {
			t.Fatal(err)
		}
	}
}

// An AFF4 image on a local target is checkpointed, proven its own (proveAFF4), refused for another
// image's checkpoint without a byte changed, and resumed to a container whose stream is the source.
func TestAFF4ProveAndResume(t *testing.T) {
	dir, tgt := localTarget(t)
	data := testData(3<<20 + 12345)
	id := hal.Identity{Model: "M", Serial: "S", Size: int64(len(data)), SectorSize: 512}
	spec := func(base string) Spec {
		o := options.Default(options.AFF4)
		o.AFF4.Compression = "snappy"
		return Spec{Options: o, Base: base, AcquiredAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Identity: id}
	}
	checkpoint := func(img Image) *pipeline.Checkpoint {
		fs, err := img.Writer().(pipeline.Checkpointer).Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		return &pipeline.Checkpoint{Offset: 1 << 20, Format: fs}
	}
	cps := map[string]*pipeline.Checkpoint{}
	for _, base := range []string{"a", "b"} {
		img, err := OpenImage(spec(base), tgt, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, img, data, 0, 1<<20)
		cps[base] = checkpoint(img)
		writeChunks(t, img, data, 1<<20, 2<<20) // written after the checkpoint, then the crash
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
	}
	prove := func(base string, cp *pipeline.Checkpoint) error {
		st, err := aff4State(cp)
		if err != nil {
			return err
		}
		return proveAFF4(tgt, base+".aff4", st)
	}
	if err := prove("a", cps["a"]); err != nil {
		t.Fatalf("proveAFF4 of the task's own image: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "b.aff4"))
	if err := prove("b", cps["a"]); err == nil {
		t.Fatal("proveAFF4 accepted another image")
	}
	if _, err := OpenImage(spec("b"), tgt, cps["a"]); err == nil {
		t.Fatal("resume onto another image's container")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "b.aff4")); !bytes.Equal(before, after) {
		t.Fatal("the refused image was changed")
	}

	// The checkpoint goes through the store as JSON.
	raw, _ := json.Marshal(cps["a"])
	var cp pipeline.Checkpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	img, err := OpenImage(spec("a"), tgt, &cp)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	writeChunks(t, img, data, 1<<20, len(data))
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	r, closeFn, err := img.ReadBack()
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed stream: %d bytes (%v), want the %d source bytes", len(got), err, len(data))
	}
}
