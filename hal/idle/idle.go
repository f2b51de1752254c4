// Package idle powers off Source ports that stay powered with nothing to do: a drive left spinning
// on a port no task uses wears and warms for nothing. scan-port, source-drives and tasks power a
// port on again through hal.Port.PowerOn as they always do; this package only switches ports off.
package idle

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/evidenced/evidenced/hal"
)

// Config says when a port is idle.
type Config struct {
	// After is how long a powered Source port must be idle before it is powered off (> 0).
	After time.Duration
	// Busy says whether a task holds the port (the task manager's view); nil: never busy.
	Busy func(port string) bool
	// Hold takes the port from the task manager for the power-off, so that no task can start on
	// it between the last look and the power cut; ok false when a task holds it. nil: Busy is
	// asked once more instead (which leaves that gap open).
	Hold func(port string) (release func(), ok bool)
	Log  *slog.Logger
}

// Switched is a port that can say whether powering it off really cuts a drive's power. A port
// without a power switch (a real port with no power line) only forgets its drive when "powered
// off", so switching it off idle would hide hot-plugged drives and save nothing: it is left on.
// Ports that do not implement it are switched.
type Switched interface {
	PowerSwitched() bool
}

// Watcher watches a board's ports and powers off the idle ones. It is driven by Check, with the
// time passed in, so that tests step a clock instead of sleeping; Run calls it on a ticker.
type Watcher struct {
	board hal.Board
	cfg   Config

	mu    sync.Mutex           // Check and Touch come from different goroutines
	since map[string]time.Time // port -> when it was first seen idle and powered
}

// New watches b's ports. cfg.After must be positive.
func New(b hal.Board, cfg Config) *Watcher {
	if cfg.Busy == nil {
		cfg.Busy = func(string) bool { return false }
	}
	if cfg.Hold == nil {
		busy := cfg.Busy
		cfg.Hold = func(port string) (func(), bool) { return func() {}, !busy(port) }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{board: b, cfg: cfg, since: map[string]time.Time{}}
}

// Check looks at every port at time now: a powered Source port with no task starts (or goes on)
// counting; one that counted cfg.After is powered off. Anything else (off, Target, busy, still
// identifying its drive) stops the count, so a port powered on again counts from the first Check
// that sees it idle. It returns the ports it powered off.
func (w *Watcher) Check(now time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var off []string
	for _, p := range w.board.Ports() {
		name := p.Name()
		if !w.idle(p) {
			delete(w.since, name)
			continue
		}
		since, ok := w.since[name]
		if !ok {
			w.since[name] = now
			continue
		}
		if now.Sub(since) < w.cfg.After {
			continue
		}
		delete(w.since, name)
		// The task manager may have taken the port since idle() looked.
		release, ok := w.cfg.Hold(name)
		if !ok {
			continue
		}
		err := p.PowerOff()
		release()
		if err != nil {
			w.cfg.Log.Warn("idle port: power off failed", "port", name, "err", err)
			continue
		}
		w.cfg.Log.Info("idle port powered off", "port", name, "idle", now.Sub(since).Round(time.Second))
		off = append(off, name)
	}
	return off
}

// Touch restarts a port's idle count: a client just looked at it (scan-port, source-drives), so an
// examiner is about to use the drive even though no task holds the port yet. The count starts again
// at the next Check.
func (w *Watcher) Touch(port string) {
	w.mu.Lock()
	delete(w.since, port)
	w.mu.Unlock()
}

func (w *Watcher) idle(p hal.Port) bool {
	if s, ok := p.(Switched); ok && !s.PowerSwitched() {
		return false
	}
	return p.Mode() == hal.ModeSource && p.Powered() && p.State() != hal.StateIdentifying && !w.cfg.Busy(p.Name())
}

// Interval is how often Run checks: a tenth of After, between 1 s and 30 s, so a port goes off at
// most that late.
func (w *Watcher) Interval() time.Duration {
	return min(max(w.cfg.After/10, time.Second), 30*time.Second)
}

// Run checks the ports every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.Interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.Check(now)
		}
	}
}
