package aff4

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/evidenced/evidenced/formats/blockbuf"
)

// blockFile is a container file that counts the bytes written in whole 4 KiB blocks (offset,
// length and memory all aligned: what a local target sends straight to disk) and the rest.
type blockFile struct {
	*os.File
	whole, other int64
}

func (f *blockFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > 0 && off%blockbuf.Block == 0 && len(p)%blockbuf.Block == 0 && uintptr(unsafe.Pointer(&p[0]))%blockbuf.Block == 0 {
		f.whole += int64(len(p))
	} else {
		f.other += int64(len(p))
	}
	return f.File.WriteAt(p, off)
}

// TestWritesWholeBlocks: a container of many bevies, whose members all start at odd offsets, is
// written in whole blocks except for a few KiB around each member boundary, and reads back exactly.
// Before the buffer kept blocks in place, everything after the first bevy went through the page
// cache (about 3 % of this container in whole blocks).
func TestWritesWholeBlocks(t *testing.T) {
	data := make([]byte, 24<<20)
	rand.Read(data[:12<<20]) // random chunks are stored as they are: bevies of odd sizes follow
	copy(data[12<<20:], bytes.Repeat([]byte("evidence text line\n"), 12<<20/19))
	p := filepath.Join(t.TempDir(), "img.aff4")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	bf := &blockFile{File: out}
	w, err := NewWriter(bf, Options{Compression: "lz4", ChunksPerSegment: 40, Size: int64(len(data)), SectorSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += 100000 { // writes that end anywhere
		if _, err := w.Write(data[i:min(i+100000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := out.Stat()
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	out.Close()
	bevies := (len(data)/32768 + 39) / 40
	// Per bevy, its data member and its index member each leave at most two partial blocks.
	if limit := int64(bevies) * 4 * blockbuf.Block * 2; bf.other > limit || bf.whole+bf.other < size {
		t.Errorf("%d bytes in whole blocks, %d not (limit %d) of a %d-byte container with %d bevies", bf.whole, bf.other, limit, size, bevies)
	}
	t.Logf("%d of %d bytes written in whole blocks", bf.whole, size)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := Open(f, size)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := v.Images()[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(ra, 0, int64(len(data)))); err != nil {
		t.Fatal(err)
	}
	if want := md5.Sum(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the container does not read back as its data")
	}
}
