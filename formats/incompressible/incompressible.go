// Package incompressible tells, from a small sample, whether a chunk of an image is random or
// already compressed (encrypted volumes, phone images, media and archives), so an encoder can store
// it as it is instead of spending a full compression pass to find out.
package incompressible

import "encoding/binary"

// Likely reports whether p looks random. The sample is the first 64 bytes of every 512-byte sector:
// a cluster of text, tables or zeros anywhere in the chunk lands in it. Its byte histogram is
// compared with a uniform one by the collision count Σc² (uniform: n + n(n-1)/256, standard
// deviation about 360 for n = 4096; the threshold is 3 % above, about 5 σ); text, code, tables and
// zero runs sit far above. A sector ending in 16 zero bytes (file slack) keeps the chunk too.
// Chunks under 4 KiB are never called random. Cost: about a tenth of one fast deflate of the chunk.
func Likely(p []byte) bool {
	const sector, piece = 512, 64
	if len(p) < 8*sector {
		return false
	}
	var hist [256]int
	n := 0
	for off := 0; off+sector <= len(p); off += sector {
		for _, c := range p[off : off+piece] {
			hist[c]++
		}
		n += piece
		tail := p[off+sector-16 : off+sector]
		if binary.LittleEndian.Uint64(tail) == 0 && binary.LittleEndian.Uint64(tail[8:]) == 0 {
			return false
		}
	}
	var sq int
	for _, c := range hist {
		sq += c * c
	}
	return sq <= n+n*(n-1)/256*103/100
}
