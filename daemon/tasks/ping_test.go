package tasks

import (
	"context"
	"testing"
	"time"
)

func TestPingFailsWhileTheManagerIsWedged(t *testing.T) {
	m := &Manager{}
	if err := m.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Ping(ctx); err == nil {
		t.Fatal("Ping passed while the manager's lock was held")
	}
	m.mu.Unlock()
	if err := m.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
