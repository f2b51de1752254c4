package testenv

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
)

// StateReads is a port that counts the calls of its State. A waiter woken by the port's Changed
// reads State once per change; one that polls reads it once per tick. Tests of waiting code tell
// the two apart by the count.
type StateReads struct {
	hal.Port
	n atomic.Int64
}

// State is the wrapped port's, counted.
func (s *StateReads) State() hal.PortState {
	s.n.Add(1)
	return s.Port.State()
}

// Count is how many times State was called.
func (s *StateReads) Count() int64 { return s.n.Load() }

// Answered fails t unless a wait on the port that took el answered when the transition due at
// `at` came (not before it, nor more than 2 s after) and read State at most max times.
func (s *StateReads) Answered(t testing.TB, el, at time.Duration, max int64) {
	t.Helper()
	if el < at-20*time.Millisecond || el > at+2*time.Second {
		t.Errorf("answered after %v; the transition came at %v", el, at)
	}
	if n := s.Count(); n > max {
		t.Errorf("State read %d times in %v: the wait polls", n, el)
	}
}

// Step is one change of a port for ChangeSteps: Do makes it (nil: it comes by itself), Want is the
// state after it.
type Step struct {
	Name string
	Do   func() error
	Want hal.PortState
}

// ChangeSteps makes each step's change and fails t unless the port's Changed, taken before it,
// closes within 2 s and the port is then in the step's state.
func ChangeSteps(t testing.TB, p hal.Port, steps []Step) {
	t.Helper()
	for _, s := range steps {
		changed := p.Changed()
		if s.Do != nil {
			if err := s.Do(); err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
		}
		select {
		case <-changed:
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: Changed not closed; state %s", s.Name, p.State())
		}
		if got := p.State(); got != s.Want {
			t.Fatalf("%s: state %s, want %s", s.Name, got, s.Want)
		}
	}
}
