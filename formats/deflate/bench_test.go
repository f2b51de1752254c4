package deflate

import (
	"bytes"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/evidenced/evidenced/internal/synthdisk"
)

// benchChunks returns the non-zero 32 KiB chunks of the first 64 MiB of the corpus
// (EVIDENCED_CORPUS) or of a generated text-heavy disk: zero chunks never reach the encoder.
func benchChunks(b *testing.B, kind string) [][]byte {
	var data []byte
	switch kind {
	case "corpus":
		path := os.Getenv("EVIDENCED_CORPUS")
		if path == "" {
			b.Skip("EVIDENCED_CORPUS not set")
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		data = make([]byte, 64<<20)
		n, _ := f.ReadAt(data, 0)
		data = data[:n]
	default:
		var buf bytes.Buffer
		if err := synthdisk.Write(&buf, synthdisk.Kind(kind), 32<<20, 1); err != nil {
			b.Fatal(err)
		}
		data = buf.Bytes()
	}
	return nonZeroChunks(data)
}

// kp1 is klauspost's level 1 alone, the reference the issue measures ISA-L against.
type kp1 struct{ goRaw }

func newKp1() *kp1 {
	r := &kp1{}
	r.level = 1
	r.kp.New = func() any {
		s := &kpState{}
		s.z, _ = flate.NewWriter(&s.out, 1)
		return s
	}
	return r
}

func (r *kp1) deflate(dst, src []byte, limit int) ([]byte, bool) {
	s := r.kp.Get().(*kpState)
	defer r.kp.Put(s)
	s.out = limitWriter{b: dst, limit: limit}
	s.z.Reset(&s.out)
	if _, err := s.z.Write(src); err != nil {
		return s.out.b, false
	}
	if err := s.z.Close(); err != nil {
		return s.out.b, false
	}
	return s.out.b, true
}

// threadCPU is the CPU time of the calling OS thread: on a loaded machine wall time measures the
// neighbours, this measures the encoder.
func threadCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkEngines encodes the same chunks with each engine: compare cpu-s/GiB (CPU time of the
// encoding thread per GiB of chunks) and out/in (the stored size, uncompressed chunks counted with
// their Adler-32).
//
//	go test -run X -bench Engines -cpu 1 -count 5 ./formats/deflate | benchstat -col /engine -
func BenchmarkEngines(b *testing.B) {
	engines := map[string]rawEncoder{"native": newRaw(Fast), "go": newGoRaw(Fast), "kp1": newKp1()}
	for _, kind := range []string{"corpus", "text", "compressed"} {
		b.Run("data="+kind, func(b *testing.B) {
			chunks := benchChunks(b, kind)
			for _, name := range []string{"native", "go", "kp1"} {
				e := &Encoder{level: Fast, raw: engines[name]}
				b.Run("engine="+name, func(b *testing.B) {
					dst := make([]byte, 0, 32768+4)
					var in, out int64
					b.SetBytes(32768)
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					c0 := threadCPU()
					for i := 0; b.Loop(); i++ {
						c := chunks[i%len(chunks)]
						r := e.Encode(dst, c)
						in += int64(len(c))
						if r.Zlib != nil {
							out += int64(len(r.Zlib))
						} else {
							out += int64(len(c)) + 4
						}
					}
					b.ReportMetric((threadCPU()-c0)/float64(in)*(1<<30), "cpu-s/GiB")
					b.ReportMetric(float64(out)/float64(in), "out/in")
				})
			}
		})
	}
}

// BenchmarkAdler32 compares the build's Adler-32 with the standard library's.
func BenchmarkAdler32(b *testing.B) {
	p := make([]byte, 32768)
	for i := range p {
		p[i] = byte(i * 7)
	}
	for name, r := range map[string]rawEncoder{"native": newRaw(Fast), "go": newGoRaw(Fast)} {
		b.Run("engine="+name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c0 := threadCPU()
			for b.Loop() {
				r.adler32(p)
			}
			b.ReportMetric((threadCPU()-c0)/float64(b.N*len(p))*(1<<30), "cpu-s/GiB")
		})
	}
}
