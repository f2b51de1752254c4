// Package blockbuf buffers a format writer's sequential output to an io.WriterAt in whole,
// aligned blocks: every byte sits in memory at the same offset within its 4 KiB block as in the
// file, and while output streams only whole blocks are written. A local target sends such writes
// (offset, length and memory page-aligned) straight to disk with O_DIRECT and copies everything
// else through the page cache; with an ordinary buffer, the E01 and AFF4 writers' section and
// member headers put every later write off the boundary, and the page-cache copy cost more CPU
// than the hashing. Only the ends of what a Flush writes may be partial blocks.
package blockbuf

import (
	"io"
	"unsafe"
)

// Block is the alignment: the page size, which direct I/O wants of offsets, lengths and memory.
const Block = 4096

// Writer writes sequentially to an io.WriterAt from an offset, through an aligned buffer.
type Writer struct {
	at   io.WriterAt
	mem  []byte // the buffer, its first byte on a Block boundary, a whole number of blocks long
	lead int    // index in mem of the first buffered byte: the file offset modulo Block
	n    int    // buffered bytes: mem[lead : lead+n]
	off  int64  // file offset of the next byte, buffered bytes included
	err  error  // the first write error; every later call returns it
}

// New returns a Writer to at starting at offset off, with a buffer of at least size bytes
// (rounded up to whole blocks, two at least).
func New(at io.WriterAt, off int64, size int) *Writer {
	size = max(2*Block, (size+Block-1)/Block*Block)
	m := make([]byte, size+Block)
	skip := int(-uintptr(unsafe.Pointer(&m[0])) & (Block - 1))
	return &Writer{at: at, mem: m[skip : skip+size : skip+size], off: off}
}

// Reset points the Writer at another destination and offset, dropping what is buffered (Flush
// first to keep it) and any error.
func (w *Writer) Reset(at io.WriterAt, off int64) {
	w.at, w.off, w.n, w.err = at, off, 0, nil
}

// Offset is the file offset of the next byte written.
func (w *Writer) Offset() int64 { return w.off }

// Write buffers p, writing whole blocks out as the buffer fills.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	done := 0
	for len(p) > 0 {
		if w.n == 0 {
			w.lead = int(w.off % Block)
		}
		if w.lead+w.n == len(w.mem) {
			// The buffer ends on a block boundary: everything in it goes out, and the next byte
			// starts a block at the start of mem.
			if err := w.writeOut(); err != nil {
				return done, err
			}
			w.lead = 0
		}
		k := copy(w.mem[w.lead+w.n:], p)
		w.n += k
		w.off += int64(k)
		done += k
		p = p[k:]
	}
	return done, nil
}

// Flush writes everything buffered.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	return w.writeOut()
}

// writeOut writes the buffer in up to three pieces: the rest of a first partial block, the whole
// blocks, a last partial block. It empties the buffer.
func (w *Writer) writeOut() error {
	from, to := w.lead, w.lead+w.n
	base := w.off - int64(w.n) - int64(w.lead) // file offset of mem[0], a block boundary
	up := min(to, (from+Block-1)/Block*Block)
	down := max(up, to/Block*Block)
	for _, r := range [3][2]int{{from, up}, {up, down}, {down, to}} {
		if r[0] == r[1] {
			continue
		}
		n, err := w.at.WriteAt(w.mem[r[0]:r[1]], base+int64(r[0]))
		if err == nil && n < r[1]-r[0] {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = err
			return w.err
		}
	}
	w.n = 0
	return nil
}
