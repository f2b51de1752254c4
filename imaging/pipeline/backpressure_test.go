//go:build !race

// The race detector makes sync.Pool drop items on purpose, which would measure garbage, not the
// pipeline's bound; this test runs in the normal build only.

package pipeline

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/imaging/source"
)

// A slow target must slow the reader down, not fill memory.
func TestBackpressureBoundsMemory(t *testing.T) {
	const size = 256 << 20
	runtime.GC() // what earlier tests left is not this run's
	src := source.New(zeroReader{}, size, source.Config{BlockSize: 1 << 20, Depth: 4})
	w := &slowSink{delay: 200 * time.Microsecond}
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	if _, err := Run(context.Background(), src, w, Config{Hashes: []digest.Name{digest.MD5}}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	if w.n != size {
		t.Fatalf("wrote %d bytes, want %d", w.n, size)
	}
	if peak > 64<<20 {
		t.Fatalf("heap in use peaked at %d MiB for a 256 MiB source behind a slow target", peak>>20)
	}
	t.Logf("peak heap in use %d MiB", peak>>20)
}

type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, _ int64) (int, error) { clear(p); return len(p), nil }

type slowSink struct {
	n     int64
	delay time.Duration
}

func (s *slowSink) ChunkSize() int                                    { return 64 << 10 }
func (s *slowSink) EncodeChunk(dst, src []byte) ([]byte, bool, error) { return src, false, nil }
func (s *slowSink) WriteChunk(enc []byte, _ bool, _ int) error {
	time.Sleep(s.delay)
	s.n += int64(len(enc))
	return nil
}
