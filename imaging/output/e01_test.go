package output

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"hash/adler32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
)

// An E01 finished through Finish reads back as the source and stores the run's hashes and
// unreadable ranges; once its digest section is damaged (the data intact), reading it back for
// verification fails and names the section, where the reader used to skip it.
func TestE01FinishAndDamagedReadBack(t *testing.T) {
	dir, tgt := localTarget(t)
	data := testData(2<<20 + 4096)
	id := hal.Identity{Model: "M", Serial: "S", Size: int64(len(data)), SectorSize: 512}
	spec := Spec{Options: options.Default(options.E01), Base: "img", AcquiredAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Identity: id}
	img, err := OpenImage(spec, tgt, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, img, data, 0, len(data))
	m, s := md5.Sum(data), sha1.Sum(data)
	res := pipeline.Result{Bytes: int64(len(data)), BadRanges: []source.Range{{First: 8, Count: 2}},
		Hashes: map[string]string{"MD5": hex.EncodeToString(m[:]), "SHA1": hex.EncodeToString(s[:])}}
	if err := Finish(img, res, 512); err != nil {
		t.Fatal(err)
	}
	r, closeFn, err := img.ReadBack()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	closeFn()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want the %d source bytes", len(got), err, len(data))
	}
	seg := filepath.Join(dir, "img.E01")
	er, err := ewf.OpenFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	h, bad := er.Hashes(), er.ReadErrors()
	er.Close()
	if h["MD5"] != res.Hashes["MD5"] || h["SHA1"] != res.Hashes["SHA1"] || len(bad) != 1 || bad[0] != (ewf.SectorRange{First: 8, Count: 2}) {
		t.Fatalf("stored hashes %v, unreadable ranges %v; want the run's %v and sectors 8-9", h, bad, res.Hashes)
	}
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// The digest section, found by its descriptor's own checksum: a byte of its SHA1 flipped.
	name := make([]byte, 16)
	copy(name, "digest")
	found := false
	for off := 0; off+76 <= len(b) && !found; off++ {
		d := b[off : off+76]
		if bytes.Equal(d[:16], name) && binary.LittleEndian.Uint32(d[72:]) == adler32.Checksum(d[:72]) {
			b[off+76+20] ^= 0xff
			found = true
		}
	}
	if !found {
		t.Fatal("no digest section in the E01")
	}
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadBack(options.E01, "img", tgt); err == nil || !strings.Contains(err.Error(), "digest section") {
		t.Fatalf("read back of a damaged E01: %v, want the digest section named", err)
	}
}
