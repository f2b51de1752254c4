// Package diagnose tests a drive's surface: it reads every sector, times each read, and counts the
// reads by latency class and the sectors that stay unreadable, the way a drive technician's surface
// scan does. It reads through imaging/source, so the bad-sector policy is the imaging one.
package diagnose

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/evidenced/evidenced/imaging/source"
)

// Latency classes of one block read, upper bounds.
var Classes = []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond, 500 * time.Millisecond}

// Surface is the result of a surface scan.
type Surface struct {
	Bytes      int64          `json:"bytes"`
	Seconds    float64        `json:"seconds"`
	MBps       float64        `json:"mbps"`
	BlockSize  int            `json:"blockSize"`
	Histogram  []int          `json:"histogram"` // len(Classes)+1: the last counts slower reads
	Slowest    time.Duration  `json:"slowest"`
	Unreadable []source.Range `json:"unreadable"`
	// Map is the surface map: the drive cut into equal regions in LBA order (MapRegions of them,
	// fewer on a small drive), each with its read times and unreadable sectors.
	Map []Region `json:"map"`
}

// Retries is how often the scan reads a failing sector again before counting it unreadable.
const Retries = 1

// MapRegions is how many regions the surface map has at most: a 32 × 16 grid on a page.
const MapRegions = 512

// Region is one cell of the surface map.
type Region struct {
	Offset int64 `json:"offset"` // first byte
	Bytes  int64 `json:"bytes"`
	Reads  int   `json:"reads"` // timed device reads in the region (retries included)
	// Mean and Max are the region's read times per block read.
	Mean       time.Duration `json:"mean"`
	Max        time.Duration `json:"max"`
	Unreadable int64         `json:"unreadable"` // sectors
	total      time.Duration
}

// ClassNames label the histogram.
func ClassNames() []string {
	out := make([]string, 0, len(Classes)+1)
	for _, c := range Classes {
		out = append(out, "< "+c.String())
	}
	return append(out, "≥ "+Classes[len(Classes)-1].String())
}

// timedReader times every read of the underlying device.
type timedReader struct {
	r    io.ReaderAt
	hist []int
	slow time.Duration
	mu   chan struct{}
	// regions of the map, regionSize bytes each
	regions    []Region
	regionSize int64
}

// newMap cuts size bytes into at most MapRegions regions of whole blocks.
func newMap(size int64, block int) ([]Region, int64) {
	if size <= 0 {
		return nil, 1
	}
	blocks := (size + int64(block) - 1) / int64(block)
	per := (blocks + MapRegions - 1) / MapRegions
	rs := per * int64(block)
	n := (size + rs - 1) / rs
	out := make([]Region, n)
	for i := range out {
		out[i].Offset = int64(i) * rs
		out[i].Bytes = min(rs, size-out[i].Offset)
	}
	return out, rs
}

func (t *timedReader) ReadAt(p []byte, off int64) (int, error) {
	start := time.Now()
	n, err := t.r.ReadAt(p, off)
	d := time.Since(start)
	t.mu <- struct{}{}
	i := 0
	for i < len(Classes) && d >= Classes[i] {
		i++
	}
	t.hist[i]++
	t.slow = max(t.slow, d)
	if r := off / t.regionSize; off >= 0 && r < int64(len(t.regions)) {
		g := &t.regions[r]
		g.Reads++
		g.total += d
		g.Max = max(g.Max, d)
	}
	<-t.mu
	return n, err
}

// Scan reads size bytes of r. progress gets the bytes scanned so far.
func Scan(ctx context.Context, r io.ReaderAt, size int64, sectorSize int, fatal func(error) bool, progress func(int64)) (Surface, error) {
	const block = 1 << 20
	tr := &timedReader{r: r, hist: make([]int, len(Classes)+1), mu: make(chan struct{}, 1)}
	tr.regions, tr.regionSize = newMap(size, block)
	src := source.New(tr, size, source.Config{BlockSize: block, Depth: 1, SectorSize: sectorSize, Retries: Retries, Fatal: fatal})
	start := time.Now()
	blocks, errf := src.Stream(ctx, 0)
	var done int64
	for b := range blocks {
		done += int64(len(b.Data))
		src.Release(b)
		if progress != nil {
			progress(done)
		}
	}
	s := Surface{Bytes: done, Seconds: time.Since(start).Seconds(), BlockSize: block, Unreadable: src.BadRanges()}
	tr.mu <- struct{}{}
	s.Histogram, s.Slowest = append([]int(nil), tr.hist...), tr.slow
	s.Map = append([]Region(nil), tr.regions...)
	<-tr.mu
	for i := range s.Map {
		if g := &s.Map[i]; g.Reads > 0 {
			g.Mean = g.total / time.Duration(g.Reads)
		}
	}
	if sectorSize <= 0 {
		sectorSize = 512
	}
	for _, u := range s.Unreadable {
		// A range may span regions: each gets its own sectors.
		for lba := u.First; lba < u.First+u.Count; {
			r := lba * int64(sectorSize) / tr.regionSize
			if r >= int64(len(s.Map)) {
				break
			}
			end := min(u.First+u.Count, (s.Map[r].Offset+s.Map[r].Bytes+int64(sectorSize)-1)/int64(sectorSize))
			s.Map[r].Unreadable += end - lba
			lba = end
		}
	}
	if s.Seconds > 0 {
		s.MBps = float64(done) / 1e6 / s.Seconds
	}
	if err := errf(); err != nil {
		return s, fmt.Errorf("surface scan at byte %d: %w", done, err)
	}
	if err := ctx.Err(); err != nil {
		return s, err
	}
	return s, nil
}
