package linux

import (
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/imaging/blockcache"
	"github.com/evidenced/evidenced/imaging/logical"
	"github.com/evidenced/evidenced/internal/testenv"
)

// countingReaderAt counts the reads that reach the drive.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.n.Add(1)
	return c.r.ReadAt(p, off)
}

// TestScanCacheOnLoopDevice: logical imaging's walks of the corpus's file systems, through the
// Reader on a block device (O_DIRECT, the appliance's path), list the same entries through the
// scan's block cache (imaging/blockcache) as without it, with a fraction of the reads of the drive.
// The times are logged: `make bench` runs it on the 2 GiB corpus. The device is attached read-only
// and the corpus file is unchanged afterwards.
func TestScanCacheOnLoopDevice(t *testing.T) {
	needLoop(t)
	img := testenv.Corpus(t)
	before := fileMD5(t, img)
	l := plugFile(t, "SATA1", "source", img, "-r")
	p, _ := l.b.Port("SATA1")
	r, err := p.Drive().Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	drive := &countingReaderAt{r: r}
	walk := func(src io.ReaderAt) (entries []string, took time.Duration) {
		t0 := time.Now()
		vols, err := logical.Volumes(src, r.Size())
		if err != nil {
			t.Fatalf("volumes: %v", err)
		}
		for _, v := range vols {
			fsys, err := logical.OpenFS(src, v)
			if err != nil {
				t.Fatalf("volume at %d: %v", v.Offset, err)
			}
			err = fsys.Walk(func(e logical.Entry) error {
				entries = append(entries, fmt.Sprintf("%d %s %d %d %v %v", v.Offset, e.Path, e.Size, e.ID, e.Deleted, e.Modified.UnixNano()))
				return nil
			}, func(p string, err error) {
				entries = append(entries, fmt.Sprintf("%d %s error %v", v.Offset, p, err))
			})
			if err != nil {
				t.Fatalf("walk of the volume at %d: %v", v.Offset, err)
			}
		}
		return entries, time.Since(t0)
	}
	plain, plainTook := walk(drive)
	plainReads := drive.n.Swap(0)
	cache, err := blockcache.New(drive, r.Size(), blockcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cached, cachedTook := walk(cache)
	cachedReads := drive.n.Load()
	if len(plain) < 1000 || !slices.Equal(plain, cached) {
		t.Fatalf("%d entries without the cache, %d with it: the lists differ", len(plain), len(cached))
	}
	if cachedReads*10 > plainReads {
		t.Fatalf("%d reads of the drive through the cache, %d without: want at most a tenth", cachedReads, plainReads)
	}
	t.Logf("%s (%d MiB) on a loop device, O_DIRECT: walking %d entries took %v and %d reads of the drive without the block cache, %v and %d reads with it (%.1f× faster)",
		img, r.Size()>>20, len(plain), plainTook.Round(time.Millisecond), plainReads, cachedTook.Round(time.Millisecond), cachedReads, plainTook.Seconds()/cachedTook.Seconds())
	r.Close()
	if fileMD5(t, img) != before {
		t.Fatal("the corpus changed")
	}
}
