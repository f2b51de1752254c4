package blockbuf

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// file is an io.WriterAt in memory that sorts what it is given into whole aligned blocks (offset,
// length and memory on Block boundaries) and the rest.
type file struct {
	b            []byte
	whole, other int
	partials     int
	failAfter    int // fail the write after this many bytes have been written; 0 never
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if f.failAfter > 0 && f.whole+f.other+len(p) > f.failAfter {
		return 0, errors.New("disk full")
	}
	if end := int(off) + len(p); end > len(f.b) {
		f.b = append(f.b, make([]byte, end-len(f.b))...)
	}
	copy(f.b[off:], p)
	if off%Block == 0 && len(p)%Block == 0 && uintptr(unsafe.Pointer(&p[0]))%Block == 0 {
		f.whole += len(p)
	} else {
		f.other += len(p)
		f.partials++
	}
	return len(p), nil
}

// TestWholeBlocks writes random-sized pieces with flushes at random points, from aligned and
// unaligned starting offsets and across a Reset, and checks the file holds exactly the bytes
// written, at their offsets, and that no more than the two ends of each flushed span and of the
// start went out in partial blocks.
func TestWholeBlocks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		start     int64
		bufSize   int
		maxPiece  int
		flushEach int // a Flush after about this many writes; 0 never
	}{
		{"aligned start, no flush", 0, 64 << 10, 9000, 0},
		{"odd start, small pieces", 77, 64 << 10, 300, 0},
		{"odd start, pieces larger than the buffer", 4095, 16 << 10, 100000, 0},
		{"flushes (headers patched between)", 12345, 64 << 10, 40000, 7},
		{"tiny buffer rounds up", 1, 1, 5000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.start), 9))
			f := &file{b: make([]byte, tc.start)}
			w := New(f, tc.start, tc.bufSize)
			var want []byte
			flushes := 0
			for range 400 {
				p := make([]byte, r.IntN(tc.maxPiece)+1)
				for i := range p {
					p[i] = byte(r.Uint32())
				}
				if n, err := w.Write(p); err != nil || n != len(p) {
					t.Fatalf("Write: %d, %v", n, err)
				}
				want = append(want, p...)
				if tc.flushEach > 0 && r.IntN(tc.flushEach) == 0 {
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
					flushes++
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			flushes++
			if w.Offset() != tc.start+int64(len(want)) {
				t.Errorf("Offset %d, want %d", w.Offset(), tc.start+int64(len(want)))
			}
			if !bytes.Equal(f.b[tc.start:], want) {
				t.Fatal("the file differs from what was written")
			}
			// Each flush may leave a partial block at each end of its span.
			if f.partials > 2*flushes || f.other > 2*flushes*Block {
				t.Errorf("%d partial writes (%d bytes) for %d flushes; %d bytes in whole blocks", f.partials, f.other, flushes, f.whole)
			}
		})
	}
}

// TestResetAndErrors: after a failed write every call returns the error; Reset starts afresh at
// another offset of another file.
func TestResetAndErrors(t *testing.T) {
	f := &file{failAfter: 3 * Block}
	w := New(f, 0, 2*Block)
	big := make([]byte, 10*Block)
	if _, err := w.Write(big); err == nil {
		t.Fatal("no error from a full disk")
	}
	if _, err := w.Write([]byte{1}); err == nil || w.Flush() == nil {
		t.Fatal("the error did not stick")
	}
	g := &file{b: make([]byte, 100)}
	w.Reset(g, 100)
	if _, err := w.Write([]byte("after reset")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil || string(g.b[100:]) != "after reset" {
		t.Fatalf("after Reset: %v %q", err, g.b[100:])
	}
}
