package testenv

import (
	"sync/atomic"

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
