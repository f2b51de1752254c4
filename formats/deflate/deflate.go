// Package deflate compresses image chunks into zlib streams, the encoding E01 stores its chunks in.
// The encoder is chosen at build time: Intel ISA-L (igzip level 1, through cgo, the system's
// libisal) by default, about half the CPU of the pure-Go engine at the same size; or pure Go
// (klauspost/compress, falling back per chunk to the standard library where klauspost's fast
// levels leave text uncompressed) without cgo or under the noisal build tag. ISA-L encodes Fast
// only; Best is zlib level 9 in both builds.
//
// igzip's output is reproducible here only because of where isal.go puts its state. Left alone, the
// same chunk sometimes came out a byte or two longer or shorter depending on the numeric address of
// the isal_zstream. The cause, found in libisal 2.30's source (Debian's 2.30.0-5, and upstream's as
// stored at commit 03bef68): the level-1 body, igzip_icf_body_h1_gr_bt.asm (its SSE, AVX and AVX2
// builds; AVX-512 machines run the AVX2 one), begins a stream on its .write_first_byte path, which
// hashes input position 2 with `shr tmp2, 16; compute_hash hash2, tmp2` — and tmp2 is rcx, which
// there still holds the stream pointer (`mov rcx, rdi` on entry), not the input. Position 2
// therefore goes into hash bucket crc32c(bits 16–47 of the address) & 8191 instead of its own, and
// a later four-byte string hashing to that bucket is offered position 2 rather than position 0 as a
// match: another valid parse. Traced with gdb (the two runs' registers part at that `shr`), and
// confirmed in C: every state address that changed a chunk (7 windows of 64 KiB in 4 GiB, for one
// chunk) has the bucket of the chunk's string whose match changed. The fix: every state is mapped
// at the start of a 64 KiB window whose stray bucket is the same constant, so the output is a
// function of the chunk alone. Proof: TestISALStateAddress encodes every non-zero chunk of the test
// corpus with thirteen states at different addresses and requires identical bytes (it fails when
// the states are placed without regard to the bucket); in C, 32 such placements over the 256 MiB
// corpus, 16 over the text-heavy disk and 8 over the 2 GiB corpus gave one encoding per chunk,
// where 8 or 16 placements anywhere gave 1 to 14 chunks with two encodings (the text disk, the 256
// MiB and the 2 GiB corpus). TestISALVariantsDecode shows the bug is still there (states put
// exactly where the bucket is a chunk's own first four bytes change ~30 % of chunks) and that every
// such variant decodes to the exact chunk. The output is reproducible for a given libisal build;
// another version of igzip may parse differently (every parse decodes to the same chunk, and the
// image's hashes are of the chunks). When no state can be placed so (no C memory, or no free
// window), a chunk is encoded by the pure-Go engine instead: valid, and the one case of variance.
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
