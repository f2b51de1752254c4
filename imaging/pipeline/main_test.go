package pipeline

import (
	"os"
	"runtime"
	"testing"
)

// TestMain keeps the main thread for the main goroutine, as a program using Background does:
// Background's threads are never the main thread, and a stage that lands there runs at the
// normal priority, which the tests would see.
func TestMain(m *testing.M) {
	runtime.LockOSThread()
	os.Exit(m.Run())
}
