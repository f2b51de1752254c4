package directio

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

func TestBuffer(t *testing.T) {
	for _, n := range []int{512, 4096, 1 << 20, 12345} {
		b := Buffer(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("Buffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		if p := uintptr(unsafe.Pointer(&b[0])); p%Align != 0 || !Aligned(b) {
			t.Fatalf("Buffer(%d) at %#x is not %d-aligned", n, p, Align)
		}
		if Aligned(b[1:]) {
			t.Fatalf("Aligned(b[1:]) of Buffer(%d) is true", n)
		}
	}
}

// Open reads a file whose size is not a multiple of Align, aligned and unaligned, byte for byte,
// and the file it returns refuses writes.
func TestOpenReadsUnalignedTail(t *testing.T) {
	data := make([]byte, 3<<20+1234)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, data, 0o444); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", f.Size(), len(data))
	}
	t.Logf("O_DIRECT: %v", f.Direct)
	for _, c := range []struct {
		off int64
		buf []byte
	}{
		{0, Buffer(1 << 20)},                 // aligned, direct
		{3 << 20, Buffer(1 << 20)},           // runs past the unaligned end
		{4097, make([]byte, 777)},            // unaligned everything
		{int64(len(data)) - 10, Buffer(512)}, // the tail alone
	} {
		n, err := f.ReadAt(c.buf, c.off)
		want := data[c.off:min(c.off+int64(len(c.buf)), int64(len(data)))]
		if n != len(want) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d", len(c.buf), c.off, n, err, len(want))
		}
		if !bytes.Equal(c.buf[:n], want) {
			t.Fatalf("ReadAt(%d bytes at %d): data differs", len(c.buf), c.off)
		}
	}
	if _, err := f.WriteAt([]byte{1}, 0); err == nil {
		t.Fatal("a file opened by Open accepted a write")
	}
}
