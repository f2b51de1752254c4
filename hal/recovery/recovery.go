// Package recovery keeps imaging going on a drive that freezes: a read that does not return in
// time gets a device reset, then a power cycle of the port, the drive is identified again (same
// serial, or the imaging stops: it is another drive) and the read is tried again; after a number of
// cycles the range is given up as unreadable and imaging goes on. Every step is logged.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evidenced/evidenced/hal"
)

// Config tunes the recovery. Zero values are the defaults.
type Config struct {
	// Timeout: a read outstanding this long while no other read of the drive completed for as
	// long is a frozen drive (default 10 s). Reads merely queued behind others on a slow drive
	// are not: the drive still answers.
	Timeout   time.Duration
	ResetWait time.Duration // how long a read gets to return after the device reset (default Timeout)
	OffTime   time.Duration // power off time of a cycle (default 5 s)
	ReadyWait time.Duration // how long the drive gets to come back after power on (default 60 s)
	Cycles    int           // power cycles for one read before its range is given up (default 3)
	// Log receives every step, for the task's log and report.
	Log func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ResetWait <= 0 {
		c.ResetWait = c.Timeout
	}
	if c.OffTime <= 0 {
		c.OffTime = 5 * time.Second
	}
	if c.ReadyWait <= 0 {
		c.ReadyWait = 60 * time.Second
	}
	if c.Cycles <= 0 {
		c.Cycles = 3
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
}

// releaseWait bounds how long a frozen read may hold the caller's buffer after the power is cut.
const releaseWait = 30 * time.Second

// Reader is a hal.Reader that recovers from freezes. It reads through the drive's current Reader;
// a power cycle replaces it.
type Reader struct {
	port   hal.Port
	serial string
	size   int64
	ss     int
	cfg    Config

	mu    sync.Mutex
	cur   hal.Reader
	drive hal.Drive
	gen   int        // power cycles done
	dead  [][2]int64 // byte ranges given up [start, end)

	recMu sync.Mutex // one recovery at a time

	lastDone atomic.Int64 // unix nanoseconds of the last read the drive answered
}

var _ hal.Reader = (*Reader)(nil)

// New wraps r, opened from drive d on port p.
func New(p hal.Port, d hal.Drive, r hal.Reader, cfg Config) *Reader {
	cfg.defaults()
	return &Reader{port: p, serial: d.Identity().Serial, size: r.Size(), ss: r.SectorSize(), cfg: cfg, cur: r, drive: d}
}

func (r *Reader) Size() int64     { return r.size }
func (r *Reader) SectorSize() int { return r.ss }

// Close closes the current Reader.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur.Close()
}

type result struct {
	n   int
	err error
}

// ReadAt reads like the drive's Reader; a read of a range given up returns a *hal.MediaError at
// once, and an error wrapping hal.ErrGone means the drive did not come back, or another drive did.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	cycles := 0
	for {
		if err := r.deadErr(off, len(p)); err != nil {
			return 0, err
		}
		r.mu.Lock()
		rd, gen := r.cur, r.gen
		r.mu.Unlock()
		done := make(chan result, 1)
		go func() {
			n, err := rd.ReadAt(p, off)
			done <- result{n, err}
		}()
		if res, ok := r.wait(done); ok {
			if errors.Is(res.err, hal.ErrGone) && r.cycledSince(gen) {
				continue // another read's recovery cut the power under this one: read again
			}
			return res.n, res.err
		}
		res, finished, err := r.recover(off, len(p), gen, done, &cycles)
		if err != nil {
			return 0, err
		}
		if finished {
			return res.n, res.err
		}
	}
}

// wait waits for a read; false when the drive froze: the read is outstanding for Timeout and no
// read completed in the last Timeout either.
func (r *Reader) wait(done chan result) (result, bool) {
	start := time.Now()
	tick := time.NewTicker(r.cfg.Timeout / 8)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			r.lastDone.Store(time.Now().UnixNano())
			return res, true
		case now := <-tick.C:
			last := time.Unix(0, r.lastDone.Load())
			if now.Sub(start) >= r.cfg.Timeout && now.Sub(last) >= r.cfg.Timeout {
				return result{}, false
			}
		}
	}
}

func (r *Reader) cycledSince(gen int) bool {
	r.recMu.Lock() // wait for a recovery in progress to end
	defer r.recMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen != gen
}

func (r *Reader) deadErr(off int64, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.dead {
		if off < d[1] && off+int64(n) > d[0] {
			first := max(off, d[0]) / int64(r.ss)
			return &hal.MediaError{LBA: first, Count: max(1, (min(off+int64(n), d[1])-max(off, d[0]))/int64(r.ss))}
		}
	}
	return nil
}

// recover handles one frozen read. finished: the read returned after the reset (res is its
// result). err: give up (a *hal.MediaError for the range after the last cycle, or a fatal error).
// Otherwise the drive was power-cycled and the read is to be tried again.
func (r *Reader) recover(off int64, n int, gen int, done chan result, cycles *int) (result, bool, error) {
	r.recMu.Lock()
	defer r.recMu.Unlock()
	lba := off / int64(r.ss)
	r.mu.Lock()
	cycled, drive := r.gen != gen, r.drive
	r.mu.Unlock()
	if cycled {
		// Another read's recovery power-cycled the drive while this one hung: it lets go now.
		return result{}, false, r.waitRelease(done)
	}
	name := r.port.Name()
	r.cfg.Log("%s: a read of %d bytes at LBA %d did not return within %v: the drive is frozen", name, n, lba, r.cfg.Timeout)
	if rs, ok := drive.(hal.Resetter); ok {
		r.cfg.Log("%s: SCSI device reset", name)
		if err := rs.Reset(); err != nil {
			r.cfg.Log("%s: device reset failed: %v", name, err)
		}
		select {
		case res := <-done:
			r.lastDone.Store(time.Now().UnixNano())
			r.cfg.Log("%s: the read returned after the reset", name)
			return res, true, nil
		case <-time.After(r.cfg.ResetWait):
			r.cfg.Log("%s: still frozen %v after the reset", name, r.cfg.ResetWait)
		}
	}
	*cycles++
	start := time.Now()
	r.cfg.Log("%s: power cycle %d of %d (%v off)", name, *cycles, r.cfg.Cycles, r.cfg.OffTime)
	if err := r.port.PowerOff(); err != nil {
		return result{}, false, fmt.Errorf("%s: power off to unfreeze the drive: %w", name, err)
	}
	if err := r.waitRelease(done); err != nil {
		return result{}, false, err
	}
	time.Sleep(r.cfg.OffTime)
	if err := r.port.PowerOn(context.Background()); err != nil {
		return result{}, false, fmt.Errorf("%s: power on after unfreezing: %w", name, err)
	}
	ready, cancel := context.WithTimeout(context.Background(), r.cfg.ReadyWait)
	d, err := hal.WaitReady(ready, r.port)
	cancel()
	if err != nil {
		return result{}, false, fmt.Errorf("%s: the drive did not come back within %v of the power cycle: %w", name, r.cfg.ReadyWait, hal.ErrGone)
	}
	if got := d.Identity().Serial; got != r.serial {
		return result{}, false, fmt.Errorf("%s: after the power cycle the drive answers with serial %s, not %s: it is another drive: %w", name, got, r.serial, hal.ErrGone)
	}
	nr, err := d.Open()
	if err != nil {
		return result{}, false, fmt.Errorf("%s: reopen after the power cycle: %w", name, err)
	}
	r.mu.Lock()
	old := r.cur
	r.cur, r.drive = nr, d
	r.gen++
	r.mu.Unlock()
	old.Close()
	r.lastDone.Store(time.Now().UnixNano())
	r.cfg.Log("%s: drive back after %v with the same serial %s; reading again at LBA %d", name, time.Since(start).Round(time.Millisecond), r.serial, lba)
	if *cycles >= r.cfg.Cycles {
		count := int64(n+r.ss-1) / int64(r.ss)
		r.mu.Lock()
		r.dead = append(r.dead, [2]int64{off, off + int64(n)})
		r.mu.Unlock()
		r.cfg.Log("%s: LBA %d-%d still froze after %d power cycles: recorded unreadable, imaging goes on", name, lba, lba+count-1, *cycles)
		return result{}, false, &hal.MediaError{LBA: lba, Count: count}
	}
	return result{}, false, nil
}

// waitRelease waits for a frozen read to give the caller's buffer back (a power-off fails it).
func (r *Reader) waitRelease(done chan result) error {
	select {
	case <-done:
		return nil
	case <-time.After(releaseWait):
		return fmt.Errorf("%s: the drive still holds a read %v after its power was cut: %w", r.port.Name(), releaseWait, hal.ErrGone)
	}
}
