package linux

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"
)

// TestUnalignedReadsSideBySide: unaligned reads (a file system parser's small reads into its own
// buffers, through the Reader's bounce buffers) from several goroutines at once return the drive's
// bytes, and run side by side: with one bounce buffer under a lock, 4 goroutines took as long as
// one (40,000 reads of 4 KiB on a 2-core VM: 0.69 s alone, 0.74-0.78 s as 4; with a buffer per
// read in flight, 0.39-0.42 s as 4). The times are logged, not judged: they depend on the machine.
func TestUnalignedReadsSideBySide(t *testing.T) {
	needLoop(t)
	l := plugLoop(t, "SATA1", "source", 64<<20, "")
	p, _ := l.b.Port("SATA1")
	r, err := p.Drive().Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := os.ReadFile(l.img)
	if err != nil {
		t.Fatal(err)
	}
	const reads = 8000
	for _, g := range []int{1, 4} {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, g)
		for i := range g {
			wg.Go(func() {
				rn := rand.New(rand.NewPCG(uint64(i), uint64(g)))
				buf := make([]byte, 8193)[1:] // never aligned
				for range reads / g {
					n := 1 + rn.IntN(len(buf))
					off := rn.Int64N(r.Size() - int64(n))
					if got, err := r.ReadAt(buf[:n], off); err != nil || got != n || !bytes.Equal(buf[:n], raw[off:off+int64(n)]) {
						errs <- fmt.Errorf("%d bytes at %d: n=%d err=%v equal=%v", n, off, got, err, bytes.Equal(buf[:got], raw[off:off+int64(got)]))
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
		t.Logf("%d goroutines: %d unaligned reads in %v", g, reads, time.Since(t0))
	}
	if fileMD5(t, l.img) != l.sum {
		t.Fatal("the evidence image changed")
	}
}
