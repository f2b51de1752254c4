package tasks

import (
	"testing"
	"time"
)

// TestHoldIdle: the idle watcher's hold takes only a free port; a task started during it waits for
// the power-off to end and then gets the port; a held port is not given to a second hold.
func TestHoldIdle(t *testing.T) {
	m := &Manager{busy: map[string]string{"SATA2": "image_1"}}
	if _, ok := m.HoldIdle("SATA2"); ok {
		t.Fatal("held a port a task holds")
	}
	release, ok := m.HoldIdle("SATA1")
	if !ok || m.BusyTask("SATA1") != idleHoldKey || !Starting(m.BusyTask("SATA1")) {
		t.Fatalf("hold: ok %v, busy %q", ok, m.BusyTask("SATA1"))
	}
	if _, ok := m.HoldIdle("SATA1"); ok {
		t.Fatal("held a port twice")
	}
	claimed := make(chan error, 1)
	go func() { claimed <- m.claim("SATA1", "image_2") }()
	select {
	case err := <-claimed:
		t.Fatalf("a task took the port during the power-off: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	select {
	case err := <-claimed:
		if err != nil || m.BusyTask("SATA1") != "image_2" {
			t.Fatalf("claim after the power-off: %v, busy %q", err, m.BusyTask("SATA1"))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the waiting task did not get the port after the release")
	}
	release() // a late second release frees nothing of the task's
	if m.BusyTask("SATA1") != "image_2" {
		t.Fatal("a stale release freed the task's port")
	}
}
