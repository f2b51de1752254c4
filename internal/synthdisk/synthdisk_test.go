package synthdisk

import (
	"bytes"
	"compress/flate"
	"testing"
)

// TestWrite: exact size, same bytes for the same seed, and each kind is what it claims: the text
// disk deflates well, the compressed one barely.
func TestWrite(t *testing.T) {
	for kind, maxRatio := range map[Kind][2]float64{Text: {0.2, 0.75}, Compressed: {0.95, 1.01}} {
		var a, b bytes.Buffer
		if err := Write(&a, kind, 4<<20+123, 7); err != nil {
			t.Fatal(err)
		}
		if err := Write(&b, kind, 4<<20+123, 7); err != nil {
			t.Fatal(err)
		}
		if a.Len() != 4<<20+123 || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("%s: %d bytes, deterministic %v", kind, a.Len(), bytes.Equal(a.Bytes(), b.Bytes()))
		}
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, 1)
		w.Write(a.Bytes())
		w.Close()
		r := float64(z.Len()) / float64(a.Len())
		if r < maxRatio[0] || r > maxRatio[1] {
			t.Errorf("%s: deflate ratio %.3f outside %v", kind, r, maxRatio)
		}
	}
	if err := Write(&bytes.Buffer{}, "video", 100, 1); err == nil {
		t.Error("unknown kind accepted")
	}
}
