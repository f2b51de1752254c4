package pipeline

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// lowerThreadPriority sets the calling thread's nice value (Linux keeps one per thread; raising it
// needs no privilege).
func lowerThreadPriority(nice int) error {
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice); err != nil {
		return fmt.Errorf("set thread priority: %w", err)
	}
	return nil
}

// onMainThread reports whether the calling thread is the process's main thread.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }
