package hal

import (
	"context"
	"errors"
	"sync"
)

// ErrNotDetected: a powered port finished identification and no drive answered.
var ErrNotDetected = errors.New("no drive detected")

// Signal is the Changed of a port: a channel that is closed when something changes and replaced
// by a fresh one for the next change. Closing wakes every waiter at once and never blocks the
// board, which a send to each waiter would. The zero value is ready to use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// Changed returns the channel the next Notify closes.
func (s *Signal) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify closes the channel of every waiter; a later Changed returns a new one. Boards call it
// under their own lock, right after the change, so a waiter never sees the signal before the state.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// WaitIdentified waits until port p has finished identifying: its drive once the port is ready,
// ErrNotDetected once it reports not-detected, ctx's error when ctx ends first (bound the wait
// with context.WithTimeout). It wakes on the port's Changed, never on a timer. The port is looked
// at before ctx, so a port already settled answers even under an ended ctx. A port that is off
// (or goes off) is waited for: whoever powered it may power it again. It does not power the port.
func WaitIdentified(ctx context.Context, p Port) (Drive, error) { return waitDrive(ctx, p, true) }

// WaitReady is WaitIdentified that waits past not-detected: a drive power-cycled to unfreeze it
// may answer only after its port gave up identifying, and is still the one expected.
func WaitReady(ctx context.Context, p Port) (Drive, error) { return waitDrive(ctx, p, false) }

// WaitSettled waits while p is identifying and returns the state it leaves identifying for (off,
// ready or not-detected; at once if it is not identifying), or ctx's error when ctx ends first.
// Like WaitIdentified it wakes on Changed and looks at the port before ctx.
func WaitSettled(ctx context.Context, p Port) (PortState, error) {
	return waitState(ctx, p, func(s PortState) bool { return s != StateIdentifying })
}

func waitDrive(ctx context.Context, p Port, notDetectedEnds bool) (Drive, error) {
	for {
		s, err := waitState(ctx, p, func(s PortState) bool { return s == StateReady || (notDetectedEnds && s == StateNotDetected) })
		switch {
		case err != nil:
			return nil, err
		case s == StateNotDetected:
			return nil, ErrNotDetected
		}
		if d := p.Drive(); d != nil {
			return d, nil
		}
		// The drive went between State and Drive: the port has changed since, look again.
	}
}

// waitState waits until p's state satisfies done and returns that state, woken by p.Changed.
func waitState(ctx context.Context, p Port, done func(PortState) bool) (PortState, error) {
	for {
		// Taken before the state is read: a change in between closes it, so none is missed.
		changed := p.Changed()
		s := p.State()
		if done(s) {
			return s, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
}
