// Package source reads a source drive for imaging: several aligned reads in flight (O_DIRECT where
// the device allows it), delivered in order, with the bad-sector policy of a forensic imager: retry
// in smaller reads down to one sector, zero-fill what stays unreadable, and record the ranges.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"syscall"

	"github.com/evidenced/evidenced/internal/directio"
)

// Config tunes the reader.
type Config struct {
	BlockSize  int // bytes per read, a multiple of SectorSize; default 1 MiB
	Depth      int // reads in flight; default 4
	SectorSize int // default 512
	Retries    int // extra tries of a failing sector; default 2
	// Fatal reports whether a read error means the source is gone (no point retrying).
	Fatal func(error) bool
}

func (c *Config) defaults() {
	if c.SectorSize <= 0 {
		c.SectorSize = 512
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 1 << 20
	}
	c.BlockSize -= c.BlockSize % c.SectorSize
	if c.BlockSize < c.SectorSize {
		c.BlockSize = c.SectorSize
	}
	if c.Depth <= 0 {
		c.Depth = 4
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
}

// Range is a run of unreadable sectors, zero-filled in the stream.
type Range struct {
	First int64 `json:"first"` // LBA
	Count int64 `json:"count"`
}

// Block is one read, in stream order. Data is owned by the reader's pool: call Release when done.
type Block struct {
	Off  int64
	Data []byte
	buf  *[]byte
}

// Reader streams a source in order.
type Reader struct {
	src  io.ReaderAt
	size int64
	cfg  Config
	pool sync.Pool

	mu  sync.Mutex
	bad []Range
}

// New returns a reader of size bytes of src.
func New(src io.ReaderAt, size int64, cfg Config) *Reader {
	cfg.defaults()
	r := &Reader{src: src, size: size, cfg: cfg}
	r.pool.New = func() any {
		b := directio.Buffer(cfg.BlockSize)
		return &b
	}
	return r
}

// BlockSize is the size of every block but the last.
func (r *Reader) BlockSize() int { return r.cfg.BlockSize }

// Release returns a block's buffer to the pool.
func (r *Reader) Release(b Block) {
	if b.buf != nil {
		r.pool.Put(b.buf)
	}
}

// BadRanges returns the unreadable ranges found so far, merged and in order.
func (r *Reader) BadRanges() []Range {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Range(nil), r.bad...)
}

// SetBadRanges seeds the list when resuming a paused acquisition.
func (r *Reader) SetBadRanges(rs []Range) {
	r.mu.Lock()
	r.bad = append([]Range(nil), rs...)
	r.mu.Unlock()
}

func (r *Reader) addBad(lba int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Blocks are read concurrently, so sectors arrive out of order: insert, then coalesce.
	r.bad = append(r.bad, Range{First: lba, Count: 1})
	sort.Slice(r.bad, func(i, j int) bool { return r.bad[i].First < r.bad[j].First })
	out := r.bad[:1]
	for _, x := range r.bad[1:] {
		last := &out[len(out)-1]
		if x.First <= last.First+last.Count {
			last.Count = max(last.Count, x.First+x.Count-last.First)
			continue
		}
		out = append(out, x)
	}
	r.bad = out
}

type result struct {
	b   Block
	err error
}

// Stream reads from offset from (a multiple of BlockSize) to the end and sends blocks in order.
// The channel closes at the end, on ctx's end, or after an error, which errp then holds.
func (r *Reader) Stream(ctx context.Context, from int64) (<-chan Block, func() error) {
	out := make(chan Block, 1)
	futures := make(chan chan result, r.cfg.Depth)
	var firstErr error
	var errMu sync.Mutex
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	ctx, cancel := context.WithCancel(ctx)
	sem := make(chan struct{}, r.cfg.Depth)
	// Issue reads in order, at most Depth in flight.
	go func() {
		defer close(futures)
		for off := from; off < r.size; off += int64(r.cfg.BlockSize) {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			f := make(chan result, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				<-sem
				return
			}
			go func(off int64) {
				b, err := r.readBlock(ctx, off)
				<-sem
				f <- result{b, err}
			}(off)
		}
	}()
	// Deliver in order.
	go func() {
		defer close(out)
		defer cancel()
		for f := range futures {
			res := <-f
			if res.err != nil {
				r.Release(res.b)
				setErr(res.err)
				cancel()
				for f := range futures { // drain so the readers' buffers come back
					r.Release((<-f).b)
				}
				return
			}
			select {
			case out <- res.b:
			case <-ctx.Done():
				r.Release(res.b)
				for f := range futures {
					r.Release((<-f).b)
				}
				return
			}
		}
	}()
	return out, func() error {
		errMu.Lock()
		defer errMu.Unlock()
		return firstErr
	}
}

func (r *Reader) readBlock(ctx context.Context, off int64) (Block, error) {
	buf := r.pool.Get().(*[]byte)
	n := r.cfg.BlockSize
	if rem := r.size - off; rem < int64(n) {
		n = int(rem)
	}
	b := Block{Off: off, Data: (*buf)[:n], buf: buf}
	if err := ctx.Err(); err != nil {
		return b, err
	}
	got, err := r.src.ReadAt(b.Data, off)
	if err == nil || (errors.Is(err, io.EOF) && got == n) {
		return b, nil
	}
	if r.fatal(err) {
		return b, r.fatalErr(off, err)
	}
	// Bad area: keep what was read, then go over the rest in smaller pieces.
	got -= got % r.cfg.SectorSize
	if err := r.salvage(ctx, b.Data[got:], off+int64(got)); err != nil {
		return b, err
	}
	return b, nil
}

// salvage reads p at off in sector-sized steps (after one try at 64 sectors per step), retrying
// each bad sector, and zero-fills and records what stays unreadable.
func (r *Reader) salvage(ctx context.Context, p []byte, off int64) error {
	ss := r.cfg.SectorSize
	step := 64 * ss
	for len(p) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(step, len(p))
		got, err := r.src.ReadAt(p[:n], off)
		if err == nil || (errors.Is(err, io.EOF) && got == n) {
			p, off = p[n:], off+int64(n)
			continue
		}
		if r.fatal(err) {
			return r.fatalErr(off, err)
		}
		got -= got % ss
		p, off = p[got:], off+int64(got)
		// Now one sector at a time, with retries.
		m := min(ss, len(p))
		ok := false
		for try := 0; try <= r.cfg.Retries && !ok; try++ {
			g, err := r.src.ReadAt(p[:m], off)
			if err == nil || (errors.Is(err, io.EOF) && g == m) {
				ok = true
			} else if r.fatal(err) {
				return r.fatalErr(off, err)
			}
		}
		if !ok {
			clear(p[:m])
			r.addBad(off / int64(ss))
		}
		p, off = p[m:], off+int64(m)
	}
	return nil
}

// fatalErr says where the stream stopped, and that a source ending early ended before its size.
func (r *Reader) fatalErr(off int64, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("read at byte %d: the source ended before its size of %d bytes: %w", off, r.size, err)
	}
	return fmt.Errorf("read at byte %d: %w", off, err)
}

func (r *Reader) fatal(err error) bool {
	if r.cfg.Fatal != nil && r.cfg.Fatal(err) {
		return true
	}
	// A device that went away answers ENODEV/ENXIO; an EOF before the end means it shrank (callers
	// get here with io.EOF only when fewer bytes came than asked, and never ask past the size). Both
	// end the stream: zero-filling the rest as bad sectors would make a whole image of a lost drive.
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, context.Canceled)
}
