package store

import (
	"testing"
	"time"
)

// TestPaused: the paused part of a span, over closed and open pauses, inside, across and outside it.
func TestPaused(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	task := &Task{Pauses: []Pause{{From: at(10), To: at(20)}, {From: at(50), To: at(70)}, {From: at(100)}}}
	for _, c := range []struct {
		from, to int
		want     int
	}{
		{0, 200, 10 + 20 + 100}, // the open pause runs to the span's end
		{0, 40, 10},
		{15, 60, 5 + 10},
		{20, 50, 0},
		{60, 65, 5},
		{0, 5, 0},
		{120, 130, 10},
	} {
		if got := task.Paused(at(c.from), at(c.to)); got != time.Duration(c.want)*time.Second {
			t.Errorf("Paused(%d, %d) = %v, want %ds", c.from, c.to, got, c.want)
		}
	}
	if (&Task{}).Paused(t0, at(10)) != 0 {
		t.Error("a task never paused has paused time")
	}
}
