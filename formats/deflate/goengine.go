package deflate

import (
	stdflate "compress/flate"
	"errors"
	"hash/adler32"
	"math"
	"sync"

	"github.com/klauspost/compress/flate"
)

// kpFastLevel: klauspost's level 1 came out 1.3% larger than zlib level 1 on the test corpus,
// level 2 0.4% larger for ~10% less throughput.
const kpFastLevel = 2

// poorRatio and textEntropy decide the fallback: klauspost's fast levels hunt for matches and leave
// match-poor text such as base64 nearly as it was, where zlib level 1's Huffman coding takes a
// quarter off. A chunk klauspost shrinks by less than 1/8 whose bytes carry under 7 bits of entropy
// each is encoded again by the standard library, and the smaller output kept. Random and
// already-compressed chunks (about 8 bits) skip the second try.
const (
	poorRatio   = 0.875
	textEntropy = 7.0
)

type goRaw struct {
	level int
	kp    sync.Pool // *kpState
	std   sync.Pool // *stdState
}

type limitWriter struct {
	b     []byte
	limit int
}

var errFull = errors.New("deflate: output reached the limit")

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(w.b)+len(p) >= w.limit {
		return 0, errFull
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

type kpState struct {
	z   *flate.Writer
	out limitWriter
}

type stdState struct {
	z   *stdflate.Writer
	out limitWriter
}

// newGoRaw is the pure-Go engine: klauspost's deflate, with the standard library's as a second
// try on text it leaves nearly uncompressed.
func newGoRaw(level Level) *goRaw {
	r := &goRaw{level: kpFastLevel}
	if level == Best {
		r.level = flate.BestCompression
	}
	r.kp.New = func() any {
		s := &kpState{}
		s.z, _ = flate.NewWriter(&s.out, r.level)
		return s
	}
	r.std.New = func() any {
		s := &stdState{}
		s.z, _ = stdflate.NewWriter(&s.out, stdflate.BestSpeed)
		return s
	}
	return r
}

func (r *goRaw) deflate(dst, src []byte, limit int) ([]byte, bool) {
	s := r.kp.Get().(*kpState)
	s.out = limitWriter{b: dst, limit: limit}
	s.z.Reset(&s.out)
	_, err := s.z.Write(src)
	if err == nil {
		err = s.z.Close()
	}
	out := s.out.b
	s.out = limitWriter{}
	r.kp.Put(s)
	ok := err == nil
	if r.level != kpFastLevel || (ok && float64(len(out)-len(dst)) < poorRatio*float64(len(src))) ||
		entropyBits(src) >= textEntropy {
		return out, ok
	}
	// Second try in the spare capacity after the first result (or from dst when that failed).
	lim := limit
	if ok {
		lim = len(out)
	}
	t := r.std.Get().(*stdState)
	t.out = limitWriter{b: dst[:len(dst):len(dst)], limit: lim}
	t.z.Reset(&t.out)
	_, err = t.z.Write(src)
	if err == nil {
		err = t.z.Close()
	}
	alt := t.out.b
	t.out = limitWriter{}
	r.std.Put(t)
	if err != nil {
		return out, ok
	}
	return append(out[:len(dst)], alt[len(dst):]...), true
}

// entropyBits is the Shannon entropy per byte of a 4 KiB sample from the middle of p.
func entropyBits(p []byte) float64 {
	if len(p) > 4096 {
		p = p[len(p)/2-2048 : len(p)/2+2048]
	}
	var hist [256]int
	for _, c := range p {
		hist[c]++
	}
	n := float64(len(p))
	var h float64
	for _, c := range hist {
		if c > 0 {
			f := float64(c) / n
			h -= f * math.Log2(f)
		}
	}
	return h
}

func (r *goRaw) adler32(p []byte) uint32 { return adler32.Checksum(p) }
