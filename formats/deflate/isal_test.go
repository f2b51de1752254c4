//go:build cgo && isal

package deflate

import (
	"runtime"
	"testing"
)

// TestISALVariantsDecode: igzip may encode a chunk differently when its state sits at another
// address (see the package doc). Encoders are made anew, with collections between, so states come
// and go at new addresses; every variant of every chunk must decode, through the standard library's
// zlib reader with its Adler-32 check, to exactly the chunk.
func TestISALVariantsDecode(t *testing.T) {
	data := deterministicData(t)
	const cs = 32 << 10
	variants := make([]map[string]bool, len(data)/cs)
	for i := range variants {
		variants[i] = map[string]bool{}
	}
	for round := range 6 {
		e, err := New(Fast)
		if err != nil {
			t.Fatal(err)
		}
		for i := range variants {
			src := data[i*cs : (i+1)*cs]
			r := e.Encode(nil, src)
			if variants[i][string(r.Zlib)] {
				continue
			}
			variants[i][string(r.Zlib)] = true
			check(t, src, r)
			if i%64 == 0 {
				runtime.GC()
			}
		}
		if round%2 == 1 {
			runtime.GC()
		}
	}
	differ := 0
	for _, v := range variants {
		if len(v) > 1 {
			differ++
		}
	}
	t.Logf("%d of %d chunks had more than one encoding over 6 rounds; all decode exactly", differ, len(variants))
}
