package diagnose

import (
	"context"
	"errors"
	"testing"
)

// badDisk is size bytes of zeros whose listed sectors fail to read.
type badDisk struct {
	size int64
	bad  map[int64]bool
}

var errMedia = errors.New("unreadable sector")

func (d badDisk) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	for lba := range d.bad { // the first bad sector in the range ends the read there
		if at := lba*512 - off; at >= 0 && at < n {
			n = at
		}
	}
	clear(p[:n])
	if n < int64(len(p)) {
		return int(n), errMedia
	}
	return len(p), nil
}

// The surface map covers the drive exactly, in order, and puts each unreadable sector in the
// region that holds it, also for a range that spans two regions.
func TestSurfaceMap(t *testing.T) {
	const size = 520 << 20                                                                              // more blocks than MapRegions: regions of 2 blocks
	bad := map[int64]bool{5: true, 6: true, 2*2048*2 - 1: true, 2 * 2048 * 2: true, size/512 - 1: true} // two at a region boundary
	s, err := Scan(context.Background(), badDisk{size, bad}, size, 512, func(error) bool { return false }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Map) != 260 || s.Map[0].Bytes != 2<<20 {
		t.Fatalf("%d regions of %d bytes", len(s.Map), s.Map[0].Bytes)
	}
	var next, unreadable int64
	for i, g := range s.Map {
		if g.Offset != next || g.Reads == 0 {
			t.Fatalf("region %d at %d (want %d), %d reads", i, g.Offset, next, g.Reads)
		}
		next += g.Bytes
		unreadable += g.Unreadable
		var want int64
		for lba := range bad {
			if lba*512 >= g.Offset && lba*512 < g.Offset+g.Bytes {
				want++
			}
		}
		if g.Unreadable != want {
			t.Errorf("region %d: %d unreadable sectors, want %d", i, g.Unreadable, want)
		}
	}
	if next != size || unreadable != int64(len(bad)) {
		t.Errorf("map covers %d bytes, %d unreadable sectors", next, unreadable)
	}
}
