package tasks

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/sim"
	"github.com/evidenced/evidenced/internal/testenv"
)

// TestWaitDrive: WaitDrive powers an off port and answers at the transition that ends the wait,
// woken by the port rather than a timer: the drive when the port is ready, nil when it reports
// not-detected, when max passes or when ctx is cancelled while the port still identifies, and nil
// at once when the port cannot be powered (ctx already ended). The port's State is read at most
// once per change plus once; a 25 ms poll would read it 6 times or more in the 150 ms.
func TestWaitDrive(t *testing.T) {
	const step = 150 * time.Millisecond
	const long = 10 * time.Second
	img := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(img, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	drive := func(spinUp time.Duration) *board.DriveDesc {
		return &board.DriveDesc{Path: img, Model: "EVD WAIT", Serial: "W1", SpinUpMs: int(spinUp / time.Millisecond)}
	}
	cases := []struct {
		name   string
		drive  *board.DriveDesc
		max    time.Duration
		cancel time.Duration // > 0: ctx is cancelled then; < 0: before the call
		ready  bool          // want the drive
		took   time.Duration // when the answer is due
	}{
		{name: "ready", drive: drive(step), max: long, ready: true, took: step},
		{name: "not detected", max: long, took: step},
		{name: "max passes", drive: drive(long), max: step, took: step},
		{name: "cancelled", drive: drive(long), max: long, cancel: step, took: step},
		{name: "cannot power on", drive: drive(step), max: long, cancel: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := sim.New(board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{{Name: "SATA1", Drive: c.drive}}},
				sim.Options{SpinUp: step})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			port, _ := b.Port("SATA1")
			p := &testenv.StateReads{Port: port}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			switch {
			case c.cancel < 0:
				cancel()
			case c.cancel > 0:
				time.AfterFunc(c.cancel, cancel)
			}
			start := time.Now()
			d := WaitDrive(ctx, p, c.max)
			el := time.Since(start)
			if c.ready != (d != nil) || (d != nil && d.Identity().Serial != "W1") {
				t.Fatalf("drive %v, want ready=%v", d, c.ready)
			}
			p.Answered(t, el, c.took, 3)
			if c.cancel < 0 && port.Powered() {
				t.Error("the port was powered under an ended context")
			}
		})
	}
}
