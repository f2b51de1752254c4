package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/internal/directio"
)

// faultyDisk is a drive image in memory whose listed sectors fail to read.
type faultyDisk struct {
	data       []byte
	sectorSize int
	bad        map[int64]bool // LBAs that always fail
	goneAt     int64          // byte offset from which every read fails with ENODEV; <0 = never
	reads      atomic.Int64
}

func newDisk(size, sectorSize int, seed uint64) *faultyDisk {
	d := &faultyDisk{data: make([]byte, size), sectorSize: sectorSize, bad: map[int64]bool{}, goneAt: -1}
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range d.data {
		d.data[i] = byte(r.Uint32())
	}
	return d
}

// ReadAt behaves like a block device: it reads up to the first bad sector, then fails with EIO.
func (d *faultyDisk) ReadAt(p []byte, off int64) (int, error) {
	d.reads.Add(1)
	if d.goneAt >= 0 && off+int64(len(p)) > d.goneAt {
		return 0, fmt.Errorf("read: %w", syscall.ENODEV)
	}
	if off >= int64(len(d.data)) {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), int64(len(d.data)))
	ss := int64(d.sectorSize)
	for s := off / ss; s*ss < end; s++ {
		if d.bad[s] {
			good := max(s*ss-off, 0)
			copy(p, d.data[off:off+good])
			return int(good), fmt.Errorf("read sector %d: %w", s, syscall.EIO)
		}
	}
	n := copy(p, d.data[off:end])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// image streams the whole disk and returns what came out, the bad ranges and the error.
func image(t *testing.T, d *faultyDisk, cfg Config) ([]byte, []Range, error) {
	t.Helper()
	r := New(d, int64(len(d.data)), cfg)
	out, err := collect(t, r, 0)
	return out, r.BadRanges(), err
}

// collect streams r from offset from, checks the blocks come in order and within the block size,
// and returns the bytes and the stream's error.
func collect(t *testing.T, r *Reader, from int64) ([]byte, error) {
	t.Helper()
	ch, errf := r.Stream(context.Background(), from)
	var out bytes.Buffer
	next := from
	for b := range ch {
		if b.Off != next {
			t.Fatalf("block at %d, want %d: out of order", b.Off, next)
		}
		if len(b.Data) > r.BlockSize() {
			t.Fatalf("block of %d bytes, block size %d", len(b.Data), r.BlockSize())
		}
		out.Write(b.Data)
		next += int64(len(b.Data))
		r.Release(b)
	}
	return out.Bytes(), errf()
}

// want is the disk's data with the bad sectors zero-filled.
func (d *faultyDisk) want() []byte {
	w := bytes.Clone(d.data)
	for s := range d.bad {
		off := s * int64(d.sectorSize)
		if off < int64(len(w)) {
			clear(w[off:min(off+int64(d.sectorSize), int64(len(w)))])
		}
	}
	return w
}

func TestStreamBadSectors(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name       string
		size       int
		sectorSize int
		blockSize  int
		bad        []int64
		wantRanges []Range
	}{
		{name: "clean 512", size: 3*mib + 512*7, sectorSize: 512},
		{name: "clean 4Kn", size: 2*mib + 4096*3, sectorSize: 4096},
		{name: "bad first sector", size: 2 * mib, sectorSize: 512, bad: []int64{0}, wantRanges: []Range{{0, 1}}},
		{name: "bad last sector", size: 2 * mib, sectorSize: 512, bad: []int64{2*mib/512 - 1}, wantRanges: []Range{{2*mib/512 - 1, 1}}},
		{name: "bad last sector of a partial last block", size: 2*mib + 512*5, sectorSize: 512,
			bad: []int64{(2*mib+512*5)/512 - 1}, wantRanges: []Range{{(2*mib+512*5)/512 - 1, 1}}},
		{name: "4Kn bad first and last", size: mib + 4096*2, sectorSize: 4096,
			bad: []int64{0, (mib+4096*2)/4096 - 1}, wantRanges: []Range{{0, 1}, {(mib+4096*2)/4096 - 1, 1}}},
		{name: "run across a block boundary", size: 4 * mib, sectorSize: 512, blockSize: 64 << 10,
			bad: []int64{126, 127, 128, 129, 130}, wantRanges: []Range{{126, 5}}},
		{name: "scattered runs", size: 2 * mib, sectorSize: 512,
			bad: []int64{10, 11, 500, 2047, 2048, 4000}, wantRanges: []Range{{10, 2}, {500, 1}, {2047, 2}, {4000, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDisk(tc.size, tc.sectorSize, uint64(tc.size))
			for _, s := range tc.bad {
				d.bad[s] = true
			}
			got, ranges, err := image(t, d, Config{SectorSize: tc.sectorSize, BlockSize: tc.blockSize, Retries: 1, Depth: 4})
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if len(got) != tc.size {
				t.Fatalf("streamed %d bytes, want %d", len(got), tc.size)
			}
			if !bytes.Equal(got, d.want()) {
				t.Fatal("streamed data differs from the disk with its bad sectors zero-filled")
			}
			if !reflect.DeepEqual(ranges, tc.wantRanges) {
				t.Fatalf("bad ranges %v, want %v", ranges, tc.wantRanges)
			}
		})
	}
}

// A sector that fails once and then reads is not recorded: the retry found its data.
func TestStreamRetryRecovers(t *testing.T) {
	d := newDisk(1<<20, 512, 7)
	flaky := &flakyOnce{faultyDisk: d, lba: 300}
	r := New(flaky, int64(len(d.data)), Config{Retries: 2})
	out, err := collect(t, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, d.data) {
		t.Fatal("data differs after a recovered sector")
	}
	if br := r.BadRanges(); len(br) != 0 {
		t.Fatalf("bad ranges %v after a sector that read on retry", br)
	}
}

// flakyOnce fails the first two reads that touch one sector.
type flakyOnce struct {
	*faultyDisk
	lba   int64
	fails atomic.Int32
}

func (f *flakyOnce) ReadAt(p []byte, off int64) (int, error) {
	ss := int64(f.sectorSize)
	if off <= f.lba*ss && f.lba*ss < off+int64(len(p)) && f.fails.Add(1) <= 2 {
		good := f.lba*ss - off
		copy(p, f.data[off:off+good])
		return int(good), syscall.EIO
	}
	return f.faultyDisk.ReadAt(p, off)
}

// A drive that disappears ends the stream with an error that says so, without retrying sector by
// sector (which would take hours on a real drive).
func TestStreamGoneDrive(t *testing.T) {
	d := newDisk(8<<20, 512, 3)
	d.goneAt = 5 << 20
	_, _, err := image(t, d, Config{BlockSize: 1 << 20})
	if !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("err = %v, want ENODEV", err)
	}
	if n := d.reads.Load(); n > 16 {
		t.Fatalf("%d reads after the drive went away: it retried sector by sector", n)
	}
	// A board-specific fatal error (hal.ErrGone) is honoured the same way.
	g := &goneDisk{faultyDisk: newDisk(4<<20, 512, 4), at: 2 << 20}
	r := New(g, 4<<20, Config{Fatal: func(err error) bool { return errors.Is(err, hal.ErrGone) }})
	if _, err := collect(t, r, 0); !errors.Is(err, hal.ErrGone) {
		t.Fatalf("err = %v, want hal.ErrGone", err)
	}
}

// A drive that shrinks under the reader (its reads end early with io.EOF, as a kernel disk being
// deleted does) ends the stream with an error: the rest is not zero-filled as bad sectors.
func TestStreamShrunkDrive(t *testing.T) {
	d := newDisk(8<<20, 512, 5)
	r := New(d, 16<<20, Config{BlockSize: 1 << 20})
	out, err := collect(t, r, 0)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want the short read's io.EOF", err)
	}
	if bad := r.BadRanges(); len(bad) != 0 {
		t.Fatalf("bad ranges %v: the lost part was taken for bad sectors", bad)
	}
	if len(out) > 8<<20 || !bytes.Equal(out, d.data[:len(out)]) {
		t.Fatalf("%d bytes out, not a prefix of the drive", len(out))
	}
	if n := d.reads.Load(); n > 16 {
		t.Fatalf("%d reads: it retried sector by sector", n)
	}
}

type goneDisk struct {
	*faultyDisk
	at int64
}

func (g *goneDisk) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > g.at {
		return 0, hal.ErrGone
	}
	return g.faultyDisk.ReadAt(p, off)
}

// Streaming from a block offset (resume) delivers exactly the tail; cancelling stops the reads and
// leaves no goroutine behind.
func TestStreamResumeAndCancel(t *testing.T) {
	d := newDisk(6<<20, 512, 5)
	r := New(d, int64(len(d.data)), Config{BlockSize: 1 << 20})
	out, err := collect(t, r, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, d.data[2<<20:]) {
		t.Fatal("resumed stream differs from the disk's tail")
	}

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	ch, _ := r.Stream(ctx, 0)
	b := <-ch
	r.Release(b)
	cancel()
	for b := range ch {
		r.Release(b)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after cancel, %d before", n, before)
	}
}

// The reader streams an image file opened by directio.Open whose size is not a multiple of the
// alignment (the last block comes through the buffered fallback), and the file takes no write.
func TestOpenFileUnalignedTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	d := newDisk(3<<20+1234, 512, 9)
	if err := os.WriteFile(path, d.data, 0o444); err != nil {
		t.Fatal(err)
	}
	f, err := directio.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != int64(len(d.data)) {
		t.Fatalf("size %d, want %d", f.Size(), len(d.data))
	}
	r := New(f, f.Size(), Config{})
	out, err := collect(t, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, d.data) {
		t.Fatal("file read through directio.Open differs")
	}
	if _, err := f.WriteAt([]byte{1}, 0); err == nil {
		t.Fatal("a source opened by directio.Open accepted a write")
	}
}
