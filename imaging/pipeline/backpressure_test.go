package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/imaging/source"
)

// countingZeros is a source of zeros that records how far it has been read.
type countingZeros struct{ end atomic.Int64 }

func (z *countingZeros) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	for e := off + int64(len(p)); ; {
		cur := z.end.Load()
		if e <= cur || z.end.CompareAndSwap(cur, e) {
			break
		}
	}
	return len(p), nil
}

// gatedSink stores nothing; its writes wait until open is closed, like a target that hangs.
type gatedSink struct {
	open   chan struct{}
	once   sync.Once
	n      atomic.Int64
	chunks atomic.Int64
}

func newGatedSink() *gatedSink { return &gatedSink{open: make(chan struct{})} }

func (s *gatedSink) release()       { s.once.Do(func() { close(s.open) }) }
func (s *gatedSink) ChunkSize() int { return 64 << 10 }
func (s *gatedSink) EncodeChunk(_, src []byte) ([]byte, bool, error) {
	s.chunks.Add(1)
	return src, false, nil
}
func (s *gatedSink) WriteChunk(enc []byte, _ bool, _ int) error {
	<-s.open
	s.n.Add(int64(len(enc)))
	return nil
}

// settle waits until v stops changing for a while, and returns it.
func settle(t *testing.T, v func() int64) int64 {
	t.Helper()
	last, since := v(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cur := v(); cur != last {
			last, since = cur, time.Now()
		} else if time.Since(since) > 300*time.Millisecond {
			return last
		}
	}
	t.Fatal("the run did not settle")
	return 0
}

// A target that stops taking data must stop the reader once the writer's queue is full, not let it
// fill memory with the source.
func TestBackpressureBoundsReadAhead(t *testing.T) {
	const size, block, workers = 128 << 20, 1 << 20, 2
	src := &countingZeros{}
	sink := newGatedSink()
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), source.New(src, size, source.Config{BlockSize: block, Depth: 4}), sink,
			Config{Hashes: []digest.Name{digest.MD5}, Workers: workers})
		done <- err
	}()
	read := settle(t, src.end.Load)
	queue := int64(workers*encBatch*2) * int64(sink.ChunkSize())
	// Beyond the writer's queue: the hash stage's queue, the block in the feeder's hands, and the
	// reader's blocks in flight and waiting for delivery.
	slack := int64(8+1+4+2) * block
	if read > queue+slack {
		t.Errorf("read %d MiB ahead of a target that took nothing; the writer's queue holds %d MiB (+%d MiB of other queues)", read>>20, queue>>20, slack>>20)
	}
	if got := sink.chunks.Load() * int64(sink.ChunkSize()); got > queue {
		t.Errorf("%d MiB of chunks encoded for a stalled writer, whose queue holds %d MiB", got>>20, queue>>20)
	}
	sink.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sink.n.Load() != size {
		t.Fatalf("wrote %d bytes, want %d", sink.n.Load(), size)
	}
}

// Runs sharing a Background share its encoders: a run whose target hangs must not stop another.
func TestStalledRunDoesNotStopOthers(t *testing.T) {
	bg := NewBackground()
	defer bg.Close()
	const size = 128 << 20
	stalled := newGatedSink()
	defer stalled.release()
	stalledDone := make(chan error, 1)
	stalledSrc := &countingZeros{}
	go func() {
		_, err := Run(context.Background(), source.New(stalledSrc, size, source.Config{}), stalled,
			Config{Hashes: []digest.Name{digest.MD5}, Background: bg})
		stalledDone <- err
	}()
	settle(t, stalledSrc.end.Load) // its queues are full

	other := newGatedSink()
	other.release()
	otherDone := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), source.New(&countingZeros{}, size, source.Config{}), other,
			Config{Hashes: []digest.Name{digest.MD5, digest.SHA1}, Background: bg})
		otherDone <- err
	}()
	select {
	case err := <-otherDone:
		if err != nil {
			t.Fatalf("a run beside a stalled one: %v", err)
		}
	case <-time.After(20 * time.Second):
		// Not t.Fatal: the deferred release would let the run finish and hide the failure's cause.
		panic("a run beside a stalled one has not finished in 20 s: it waits on the stalled run's target")
	}
	if other.n.Load() != size {
		t.Fatalf("a run beside a stalled one wrote %d of %d bytes", other.n.Load(), size)
	}

	stalled.release()
	if err := <-stalledDone; err != nil {
		t.Fatal(err)
	}
	if stalled.n.Load() != size {
		t.Fatalf("the stalled run wrote %d bytes once its target came back, want %d", stalled.n.Load(), size)
	}
}
