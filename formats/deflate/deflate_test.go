package deflate

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/base64"
	"hash/adler32"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"testing"
)

// check decodes r with the standard library's zlib reader (which verifies the trailer) and
// compares it and the Adler-32 with src.
func check(t *testing.T, src []byte, r Result) {
	t.Helper()
	if want := adler32.Checksum(src); r.Adler32 != want {
		t.Fatalf("Adler-32 %08x, want %08x", r.Adler32, want)
	}
	if r.Zlib == nil {
		return
	}
	if len(r.Zlib) >= len(src) {
		t.Fatalf("zlib stream of %d bytes for %d bytes of input", len(r.Zlib), len(src))
	}
	zr, err := zlib.NewReader(bytes.NewReader(r.Zlib))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("stdlib zlib reader: %v", err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("round trip differs")
	}
}

func chunks(t *testing.T) map[string][]byte {
	rnd := make([]byte, 32768)
	rand.Read(rnd)
	b64 := []byte(base64.StdEncoding.EncodeToString(rnd))[:32768]
	text := bytes.Repeat([]byte("From: someone@example.org\r\nSubject: the evidence report\r\n\r\n"), 600)[:32768]
	return map[string][]byte{
		"zeros": make([]byte, 32768), "random": rnd, "base64": b64, "text": text,
		"one byte": {7}, "odd tail": text[:1000],
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, level := range []Level{Fast, Best} {
		e, err := New(level)
		if err != nil {
			t.Fatal(err)
		}
		for name, src := range chunks(t) {
			t.Run(name, func(t *testing.T) {
				r := e.Encode(make([]byte, 0, len(src)+4), src)
				check(t, src, r)
				switch name {
				case "random":
					if r.Zlib != nil {
						t.Errorf("random data compressed to %d bytes", len(r.Zlib))
					}
				case "zeros", "text":
					if r.Zlib == nil || len(r.Zlib) > len(src)/10 {
						t.Errorf("%s not compressed: %d bytes", name, len(r.Zlib))
					}
				case "base64":
					// 6 bits of every 8 carry information: Huffman coding alone takes ~1/4 off.
					if r.Zlib == nil || len(r.Zlib) > len(src)*80/100 {
						t.Errorf("base64 came out %d bytes of %d (engine %s)", len(r.Zlib), len(src), Engine())
					}
				}
			})
		}
	}
}

func TestEncodeSmallDst(t *testing.T) {
	e, _ := New(Fast)
	src := chunks(t)["text"]
	check(t, src, e.Encode(nil, src))
}

func TestBadLevel(t *testing.T) {
	if _, err := New(Level(4)); err == nil {
		t.Fatal("level 4 accepted")
	}
}

func FuzzEncode(f *testing.F) {
	f.Add([]byte("hello hello hello hello"))
	f.Add(make([]byte, 4096))
	e, _ := New(Fast)
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) == 0 {
			return
		}
		check(t, src, e.Encode(nil, src))
	})
}

// TestDeterministic: the same chunks, encoded by fresh encoders many times over with garbage
// collections between (so pooled states come and go), always give the same bytes. A forensic
// image written twice from the same drive must not differ in its chunk data.
func TestDeterministic(t *testing.T) {
	data := deterministicData(t)
	const cs = 32 << 10
	encodeAll := func() [][]byte {
		e, err := New(Fast)
		if err != nil {
			t.Fatal(err)
		}
		out := make([][]byte, 0, len(data)/cs)
		for i := 0; i < len(data); i += cs {
			out = append(out, bytes.Clone(e.Encode(nil, data[i:i+cs]).Zlib))
			if i%(64*cs) == 0 {
				runtime.GC()
			}
		}
		return out
	}
	want := encodeAll()
	for round := range 6 {
		for i, got := range encodeAll() {
			if !bytes.Equal(got, want[i]) {
				t.Fatalf("round %d: chunk %d encodes to %d bytes, first time %d (engine %s)", round, i, len(got), len(want[i]), Engine())
			}
		}
	}
}

// nonZeroChunks splits data into 32 KiB chunks and drops the all-zero ones: an image's zero
// chunks never reach the encoder.
func nonZeroChunks(data []byte) [][]byte {
	var out [][]byte
	zero := make([]byte, 32<<10)
	for off := 0; off+len(zero) <= len(data); off += len(zero) {
		if c := data[off : off+len(zero)]; !bytes.Equal(c, zero) {
			out = append(out, c)
		}
	}
	return out
}

// deterministicData is 256 chunks of text, words, random and sparse data, or the first 64 MiB of
// the test corpus where there is one: its mix of file systems showed igzip's varying output.
func deterministicData(t *testing.T) []byte {
	t.Helper()
	const cs = 32 << 10
	data := make([]byte, 256*cs)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < len(data); i += cs {
		switch (i / cs) % 4 {
		case 0: // text-like: base64 of random bytes
			raw := make([]byte, cs*3/4)
			for k := range raw {
				raw[k] = byte(r.Uint32())
			}
			base64.StdEncoding.Encode(data[i:i+cs], raw)
		case 1: // words
			for k := i; k < i+cs; k++ {
				data[k] = "the quick brown fox jumps over a lazy dog "[r.IntN(42)]
			}
		case 2: // random
			for k := i; k < i+cs; k++ {
				data[k] = byte(r.Uint32())
			}
		case 3: // sparse: zeros with runs of bytes
			for k := i; k < i+cs; k += 64 + r.IntN(512) {
				data[k] = byte(r.Uint32())
			}
		}
	}
	// The test corpus, where there is one, has the mix of file systems that showed igzip's varying output.
	if p := os.Getenv("EVIDENCED_CORPUS"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data = b[:min(len(b), 64<<20)]
	}
	return data
}
