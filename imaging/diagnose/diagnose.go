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
	<-t.mu
	return n, err
}

// Scan reads size bytes of r. progress gets the bytes scanned so far.
func Scan(ctx context.Context, r io.ReaderAt, size int64, sectorSize int, fatal func(error) bool, progress func(int64)) (Surface, error) {
	tr := &timedReader{r: r, hist: make([]int, len(Classes)+1), mu: make(chan struct{}, 1)}
	src := source.New(tr, size, source.Config{BlockSize: 1 << 20, Depth: 1, SectorSize: sectorSize, Retries: 1, Fatal: fatal})
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
	s := Surface{Bytes: done, Seconds: time.Since(start).Seconds(), BlockSize: 1 << 20, Unreadable: src.BadRanges()}
	tr.mu <- struct{}{}
	s.Histogram, s.Slowest = append([]int(nil), tr.hist...), tr.slow
	<-tr.mu
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
