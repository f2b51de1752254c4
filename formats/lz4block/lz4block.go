// Package lz4block compresses LZ4 blocks, the compression of AFF4's "lz4" chunks: with the
// reference library liblz4 through cgo where the build has it (about 1.7 times the speed of the
// pure-Go github.com/pierrec/lz4 on file system data, measured on this project's corpus), with
// pierrec/lz4 otherwise (builds without cgo, or with -tags noliblz4). Both write the standard
// block format, which any LZ4 decoder reads; decoding stays pierrec/lz4's.
package lz4block

import "fmt"

// Engine names the compressor this build uses: "liblz4" or "go".
const Engine = engine

// Bound is the most bytes Compress may write for n bytes of input.
func Bound(n int) int { return bound(n) }

// Compress writes the LZ4 block of src to dst, which must hold Bound(len(src)) bytes, and returns
// its length; 0 when the block would not be smaller than src (store src as it is). It is safe for
// concurrent use and allocates nothing once warm (its states are pooled).
func Compress(dst, src []byte) (int, error) {
	if len(src) == 0 {
		return 0, nil
	}
	if len(dst) < Bound(len(src)) {
		return 0, errShortDst(len(dst), len(src))
	}
	n, err := compress(dst, src)
	if err != nil || n >= len(src) {
		return 0, err
	}
	return n, nil
}

func errShortDst(dst, src int) error {
	return fmt.Errorf("lz4block: %d bytes of room for the block of %d bytes, need %d", dst, src, Bound(src))
}
