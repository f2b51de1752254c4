package lz4block

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/evidenced/evidenced/internal/testenv"
)

// samples are the kinds of chunk an image holds: text, zeros, random, and a mix.
func samples() map[string][]byte {
	rnd := make([]byte, 32768)
	rand.Read(rnd)
	text := []byte(strings.Repeat("Subject: quarterly report\r\nFrom: a@example.com\r\n\r\nThe figures attached. ", 500))[:32768]
	mixed := append(append([]byte(nil), text[:16384]...), rnd[:16384]...)
	r := mrand.New(mrand.NewPCG(1, 2))
	vocabulary := strings.Fields("the of evidence drive sector image report file system partition examiner case " +
		"hash chunk volume folder deleted recovered timestamp owner access modified created journal 2026 0x1f")
	words := make([]byte, 0, 1<<20)
	for len(words) < 1<<20 {
		words = fmt.Appendf(words, "%s %d ", vocabulary[r.IntN(len(vocabulary))], r.IntN(100))
	}
	return map[string][]byte{
		"one byte": {'x'}, "text": text, "zeros": make([]byte, 32768), "random": rnd, "mixed": mixed,
		"1 MiB of words": words[:1<<20], "odd size": text[:12345],
	}
}

// Every block decodes, with pierrec's decoder, to its input; a block is never as large as its input
// (0 says: store it as it is), and random data gives 0.
func TestCompressRoundTrip(t *testing.T) {
	for name, src := range samples() {
		dst := make([]byte, Bound(len(src)))
		n, err := Compress(dst, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch {
		case n == 0:
			if name != "random" && name != "one byte" {
				t.Errorf("%s: not compressed", name)
			}
			continue
		case n >= len(src):
			t.Fatalf("%s: block of %d bytes for %d", name, n, len(src))
		case name == "random":
			t.Errorf("random data compressed to %d of %d bytes", n, len(src))
		}
		out := make([]byte, len(src))
		m, err := lz4.UncompressBlock(dst[:n], out)
		if err != nil || !bytes.Equal(out[:m], src) {
			t.Fatalf("%s (%s engine): block of %d bytes decodes to %d bytes (%v), not the input", name, Engine, n, m, err)
		}
	}
}

// The lz4 tool (the reference implementation's command) decodes our blocks too: a block in a
// legacy frame is exactly what `lz4 -d` reads.
func TestReferenceDecoder(t *testing.T) {
	tool := testenv.Tool(t, "lz4")
	src := samples()["1 MiB of words"][:65536]
	dst := make([]byte, Bound(len(src)))
	n, err := Compress(dst, src)
	if err != nil || n == 0 {
		t.Fatalf("Compress: %d, %v", n, err)
	}
	// Legacy frame: magic 0x184C2102, then each block's compressed size (little endian) and bytes.
	frame := []byte{0x02, 0x21, 0x4c, 0x18, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
	frame = append(frame, dst[:n]...)
	cmd := exec.Command(tool, "-d", "-c")
	cmd.Stdin = bytes.NewReader(frame)
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("lz4 -d: %v, %d bytes, want the %d input bytes", err, len(out), len(src))
	}
}

func TestCompressShortDst(t *testing.T) {
	src := samples()["text"]
	if _, err := Compress(make([]byte, len(src)), src); err == nil {
		t.Fatal("a destination smaller than Bound was accepted")
	}
	if n, err := Compress(nil, nil); n != 0 || err != nil {
		t.Fatalf("empty input: %d, %v", n, err)
	}
}

// Compress is safe for concurrent use (pooled states): every goroutine's blocks decode right.
func TestCompressConcurrent(t *testing.T) {
	src := samples()["1 MiB of words"]
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			dst := make([]byte, Bound(32768))
			out := make([]byte, 32768)
			for off := g * 4096; off+32768 <= len(src); off += 32768 {
				n, err := Compress(dst, src[off:off+32768])
				if err != nil || n == 0 {
					errs <- fmt.Errorf("at %d: %d, %v", off, n, err)
					return
				}
				if m, err := lz4.UncompressBlock(dst[:n], out); err != nil || !bytes.Equal(out[:m], src[off:off+32768]) {
					errs <- fmt.Errorf("at %d: decodes wrong (%v)", off, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// make test builds with cgo and liblz4: the engine must be the library, not the fallback,
// unless the run asked for the fallback (-tags noliblz4, which make test also runs).
func TestEngine(t *testing.T) {
	want := "liblz4"
	if noLibTag {
		want = "go"
	}
	if testenv.Required() && Engine != want {
		t.Fatalf("engine %q under make test, want %s (scripts/build-deps.sh installs liblz4-dev)", Engine, want)
	}
	t.Logf("engine %s", Engine)
}

func BenchmarkCompress(b *testing.B) {
	src := samples()["1 MiB of words"]
	dst := make([]byte, Bound(32768))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		for off := 0; off+32768 <= len(src); off += 32768 {
			if _, err := Compress(dst, src[off:off+32768]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
