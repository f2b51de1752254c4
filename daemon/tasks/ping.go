package tasks

import (
	"context"
	"fmt"
)

// Ping returns nil when the manager's lock can be taken before ctx ends: a manager wedged while
// holding it (a deadlock, a store write that never returns) fails, so the watchdog stops pinging.
func (m *Manager) Ping(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		m.mu.Lock()
		m.mu.Unlock() // taking the lock is the check
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("task manager lock not available: %w", ctx.Err())
	}
}
