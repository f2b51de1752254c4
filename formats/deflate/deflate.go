// Package deflate compresses image chunks into zlib streams, the encoding E01 stores its chunks in.
// The encoder is chosen at build time: pure Go by default (klauspost/compress, falling back per
// chunk to the standard library where klauspost's fast levels leave text uncompressed), or Intel
// ISA-L (igzip, through cgo, the system's libisal) under the isal build tag. ISA-L is not the
// default because its output is not reproducible: the same chunk sometimes comes out a byte or two
// longer or shorter. What is known, measured in plain C against Debian's libisal 2.30 without Go:
// with every field of the stream and the whole level buffer zeroed before each call, and valgrind
// finding no uninitialised or out-of-bounds read, the output is a function of the chunk and of the
// numeric address of the isal_zstream, and of nothing else found: moving the input, the output or
// the level buffer across 64 MiB changes nothing, and neither does zeroing or filling the memory
// around the state; moving the state by 64 KiB can (about 1 address in 64 changes a given sensitive
// chunk, and 0 to 3 of the test corpus's 8,192 chunks are sensitive). Every variant decodes to the
// exact chunk (TestISALVariantsDecode). Where igzip uses the address was not found, and an image
// written twice from one drive should not differ in its chunk data, so the pure-Go engine stays
// the default.
//
// A chunk's Adler-32 is computed once, by this package, and serves both as the zlib trailer and as
// the checksum E01 stores after a chunk kept uncompressed.
package deflate

import (
	"encoding/binary"
	"errors"

	"github.com/evidenced/evidenced/formats/incompressible"
)

// Level is how hard an Encoder tries.
type Level int

const (
	// Fast is the speed of `ewfacquire -c fast` (zlib level 1) at a size no larger than its.
	Fast Level = 1
	// Best is zlib's best compression (level 9).
	Best Level = 9
)

// zlibHeader is CMF/FLG for deflate with a 32 KiB window; FLG's level bits only inform readers.
var zlibHeader = map[Level][2]byte{Fast: {0x78, 0x01}, Best: {0x78, 0xda}}

// Result of encoding one chunk.
type Result struct {
	// Zlib is the zlib stream (appended to dst[:0]) when it is smaller than the chunk, else nil.
	Zlib []byte
	// Adler32 of the chunk: the zlib trailer, and what E01 stores after an uncompressed chunk.
	Adler32 uint32
}

// Encoder encodes chunks; it is safe for concurrent use.
type Encoder struct {
	level Level
	raw   rawEncoder
}

// rawEncoder is the build's deflate engine: raw deflate of src appended to dst, ok false when the
// output would reach limit bytes; and the Adler-32 of a buffer.
type rawEncoder interface {
	deflate(dst, src []byte, limit int) (out []byte, ok bool)
	adler32(p []byte) uint32
}

// New returns an Encoder for the level.
func New(level Level) (*Encoder, error) {
	if _, ok := zlibHeader[level]; !ok {
		return nil, errors.New("deflate: level must be Fast or Best")
	}
	return &Encoder{level: level, raw: newRaw(level)}, nil
}

// Engine names the deflate implementation in use ("isa-l" or "go"), for logs and benchmarks.
func Engine() string { return engine }

// Encode compresses src into a zlib stream in dst's storage when that makes it smaller than src.
func (e *Encoder) Encode(dst, src []byte) Result {
	sum := e.raw.adler32(src)
	// At Fast, a chunk a sample shows random is stored without a deflate pass that could not pay.
	if e.level == Fast && incompressible.Likely(src) {
		return Result{Adler32: sum}
	}
	h := zlibHeader[e.level]
	dst = append(dst[:0], h[0], h[1])
	// The stream must end smaller than src: header 2 + deflate + trailer 4.
	out, ok := e.raw.deflate(dst, src, len(src)-4)
	if !ok || len(out)+4 >= len(src) {
		return Result{Adler32: sum}
	}
	return Result{Zlib: binary.BigEndian.AppendUint32(out, sum), Adler32: sum}
}

// growTo makes cap(b) at least n without changing len(b).
func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}
