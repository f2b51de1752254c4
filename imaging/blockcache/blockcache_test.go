package blockcache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// disk is a drive image in memory that fails reads touching its bad range and counts its reads.
type disk struct {
	data     []byte
	bad      [2]int64 // [start, end) unreadable; empty when equal
	mu       sync.Mutex
	reads    int
	byOffset map[[2]int64]int // reads by offset and length
}

var errMedia = errors.New("media error")

func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.reads++
	if d.byOffset != nil {
		d.byOffset[[2]int64{off, int64(len(p))}]++
	}
	d.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= int64(len(d.data)) {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), int64(len(d.data)))
	if d.bad[0] < d.bad[1] && off < d.bad[1] && end > d.bad[0] {
		// Like a drive: the bytes before the bad range, then the error.
		n := copy(p, d.data[off:max(off, d.bad[0])])
		return n, errMedia
	}
	n := copy(p, d.data[off:end])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func testData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// check compares one read through the cache with the same read of the disk itself: the same
// count, the same bytes, the same error.
func check(t *testing.T, c *Reader, d *disk, length int, off int64) {
	t.Helper()
	got := make([]byte, length)
	want := make([]byte, length)
	gn, gerr := c.ReadAt(got, off)
	wn, werr := d.ReadAt(want, off)
	if gn != wn || !bytes.Equal(got[:gn], want[:wn]) {
		t.Fatalf("ReadAt(%d bytes at %d): %d bytes %x..., want %d bytes %x...", length, off, gn, head(got[:gn]), wn, head(want[:wn]))
	}
	if (gerr == nil) != (werr == nil) || (gerr != nil && !errors.Is(gerr, werr) && gerr.Error() != werr.Error()) {
		t.Fatalf("ReadAt(%d bytes at %d): error %v, want %v", length, off, gerr, werr)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// Every read through the cache gives what the drive gives, at every offset and length: inside one
// block, across blocks, at the end of the drive (its last block is short), past it, and long reads
// that bypass the cache; with a cache so small that blocks are evicted all the time.
func TestReadsMatchTheDrive(t *testing.T) {
	const bs = 4096
	d := &disk{data: testData(10*bs + 1000)}
	c, err := New(d, int64(len(d.data)), Config{BlockSize: bs, Blocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(d.data))
	for _, tc := range []struct {
		n   int
		off int64
	}{
		{1, 0}, {512, 0}, {4095, 1}, {100, bs - 50}, {bs - 1, 3*bs + 7}, {bs, 0}, {3 * bs, 100},
		{10, size - 10}, {20, size - 10}, {1000, size - 1000}, {1, size}, {10, size + 5}, {0, 7}, {0, size},
		{100, -1}, {bs - 1, size - 200},
	} {
		check(t, c, d, tc.n, tc.off)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		check(t, c, d, r.IntN(bs+bs/2), r.Int64N(size+bs)-bs/4)
	}
	if s := c.Stats(); s.Hits == 0 || s.Loads == 0 || s.Direct == 0 {
		t.Fatalf("stats %+v: every path should have been taken", s)
	}
}

// Small reads read each block once while it stays cached: a walk's many small reads become one
// read of the drive per block.
func TestSmallReadsLoadEachBlockOnce(t *testing.T) {
	const bs = 8192
	d := &disk{data: testData(16 * bs), byOffset: map[[2]int64]int{}}
	c, err := New(d, int64(len(d.data)), Config{BlockSize: bs, Blocks: 16})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	for pass := range 3 {
		for off := int64(0); off < int64(len(d.data)); off += 256 {
			if _, err := c.ReadAt(buf, off); err != nil {
				t.Fatalf("pass %d at %d: %v", pass, off, err)
			}
			if !bytes.Equal(buf, d.data[off:off+256]) {
				t.Fatalf("pass %d at %d: wrong bytes", pass, off)
			}
		}
	}
	if d.reads != 16 {
		t.Fatalf("%d reads of the drive for 3 passes over 16 blocks, want 16", d.reads)
	}
	for r, n := range d.byOffset {
		if r[0]%bs != 0 || r[1] != bs || n != 1 {
			t.Fatalf("drive read %d times at %d for %d bytes: want once per block, whole blocks", n, r[0], r[1])
		}
	}
	if s := c.Stats(); s.Loads != 16 || s.Hits != 3*16*(bs/256)-16 || s.Direct != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A block with a bad sector is never cached: a read in it gets the drive's own answer (the bytes
// before the bad range and its error, or all the bytes when the read misses the bad range), and the
// block is read whole only once.
func TestBadBlockGoesToTheDrive(t *testing.T) {
	const bs = 4096
	d := &disk{data: testData(8 * bs), bad: [2]int64{2*bs + 1024, 2*bs + 1536}, byOffset: map[[2]int64]int{}}
	c, err := New(d, int64(len(d.data)), Config{BlockSize: bs, Blocks: 8})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		check(t, c, d, 512, 2*bs)        // before the bad range, in its block
		check(t, c, d, 512, 2*bs+2048)   // after it
		check(t, c, d, 1024, 2*bs+512)   // across it: bytes up to it, then the error
		check(t, c, d, 600, 2*bs+1000)   // starts before, ends inside
		check(t, c, d, 2000, 2*bs-1000)  // starts in a good block, ends in the bad one
		check(t, c, d, 100, 2*bs+bs-100) // the bad block's tail
		check(t, c, d, 100, bs)          // a good block
	}
	if n := d.byOffset[[2]int64{2 * bs, bs}]; n != 1 {
		t.Fatalf("bad block read whole %d times, want once (then only the requests go to the drive)", n)
	}
	if n := d.byOffset[[2]int64{bs, bs}]; n != 1 {
		t.Fatalf("good block read %d times, want 1", n)
	}
	if s := c.Stats(); s.Direct != 3*6 || s.Loads != 2 { // the bad block and the good one before it
		t.Fatalf("stats %+v: want the 6 requests in the bad block direct each time, 2 blocks loaded", s)
	}
}

// Several readers at once (the walks of several volumes, the read-ahead of small files) see the
// drive's bytes; run with -race.
func TestConcurrentReads(t *testing.T) {
	const bs = 4096
	d := &disk{data: testData(64 * bs)}
	c, err := New(d, int64(len(d.data)), Config{BlockSize: bs, Blocks: 8})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, bs)
			for range 2000 {
				n := r.IntN(bs-1) + 1
				off := r.Int64N(int64(len(d.data) - n))
				if _, err := c.ReadAt(buf[:n], off); err != nil {
					errs <- fmt.Errorf("%d bytes at %d: %w", n, off, err)
					return
				}
				if !bytes.Equal(buf[:n], d.data[off:off+int64(n)]) {
					errs <- fmt.Errorf("%d bytes at %d: wrong bytes", n, off)
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

func TestConfig(t *testing.T) {
	d := &disk{data: testData(100)}
	for _, cfg := range []Config{{BlockSize: 1000}, {BlockSize: -4096}, {Blocks: -1}} {
		if _, err := New(d, 100, cfg); err == nil {
			t.Errorf("New with %+v: no error", cfg)
		}
	}
	if _, err := New(d, -1, Config{}); err == nil {
		t.Error("New with a negative size: no error")
	}
	c, err := New(d, 100, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.bs != defaultBlockSize || c.blocks.Len() != 0 {
		t.Fatalf("defaults: block size %d", c.bs)
	}
}

// FuzzReadAt drives the cache with reads chosen by the fuzzer, over a drive with a bad range.
func FuzzReadAt(f *testing.F) {
	f.Add(uint16(100), int64(0), uint16(300), int64(5000), uint16(9000))
	f.Add(uint16(4095), int64(4097), uint16(1), int64(-3), uint16(0))
	f.Fuzz(func(t *testing.T, n1 uint16, off1 int64, n2 uint16, off2 int64, bad uint16) {
		const bs = 4096
		d := &disk{data: testData(5*bs + 123)}
		if bad%3 == 0 {
			d.bad = [2]int64{int64(bad), int64(bad) + 512}
		}
		c, err := New(d, int64(len(d.data)), Config{BlockSize: bs, Blocks: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			n   int
			off int64
		}{{int(n1) % (2 * bs), off1 % (8 * bs)}, {int(n2) % (2 * bs), off2 % (8 * bs)}, {int(n1) % (2 * bs), off1 % (8 * bs)}} {
			check(t, c, d, r.n, r.off)
		}
	})
}

// After Drop every read goes to the drive, and the cache holds nothing.
func TestDrop(t *testing.T) {
	const bs = 4096
	d := &disk{data: testData(4 * bs)}
	c, err := New(d, int64(len(d.data)), Config{BlockSize: bs, Blocks: 4})
	if err != nil {
		t.Fatal(err)
	}
	check(t, c, d, 100, 0)
	check(t, c, d, 100, 200)
	if s := c.Stats(); s.Loads != 1 || s.Hits != 1 {
		t.Fatalf("before Drop: %+v", s)
	}
	c.Drop()
	check(t, c, d, 100, 0)
	check(t, c, d, 100, 3*bs)
	if s := c.Stats(); s.Loads != 1 || s.Hits != 1 || s.Direct != 2 || c.blocks.Len() != 0 {
		t.Fatalf("after Drop: %+v, %d blocks kept", s, c.blocks.Len())
	}
}
