package sim

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// waitDrive is the drive W1 of the wait tests, identified spinUp after power on.
func waitDrive(img string, spinUp time.Duration) *board.DriveDesc {
	return &board.DriveDesc{Path: img, Model: "EVD WAIT", Serial: "W1", SpinUpMs: int(spinUp / time.Millisecond)}
}

// TestWaitIdentified: hal.WaitIdentified on a simulated port answers at the transition that ends
// it (ready: the drive; not-detected, also by an unplug while identifying: ErrNotDetected), at the
// context's end (timeout, cancel) while the port still identifies, and at once for a port already
// ready under an ended context; hal.WaitReady waits past not-detected for a drive plugged later.
// Every case reads the port's State at most once per change plus once: a waiter polling every
// 25 ms would read it 6 times or more in the 150 ms the port takes.
func TestWaitIdentified(t *testing.T) {
	const long = 10 * time.Second // spin-up that outlives the test: only the context ends the wait
	img := image(t, 64<<10)
	drive := func(spinUp time.Duration) *board.DriveDesc { return waitDrive(img, spinUp) }
	cases := []struct {
		name      string
		drive     *board.DriveDesc
		ready     bool // the port is ready before the wait starts
		readyOnly bool // hal.WaitReady instead of hal.WaitIdentified
		act       func(b *Board, cancel context.CancelFunc)
		timeout   time.Duration
		want      error         // nil: the drive W1
		min       time.Duration // the transition's time: an answer before it is wrong
	}{
		{name: "ready", drive: drive(150 * time.Millisecond), timeout: long, min: 150 * time.Millisecond},
		{name: "not detected", timeout: long, want: hal.ErrNotDetected, min: 150 * time.Millisecond},
		{name: "unplugged while identifying", drive: drive(long), timeout: long, want: hal.ErrNotDetected, min: 150 * time.Millisecond,
			act: func(b *Board, _ context.CancelFunc) {
				if err := b.Unplug("SATA1"); err != nil {
					t.Error(err)
				}
			}},
		{name: "timeout", drive: drive(long), timeout: 150 * time.Millisecond, want: context.DeadlineExceeded, min: 150 * time.Millisecond},
		{name: "cancelled", drive: drive(long), timeout: long, want: context.Canceled, min: 150 * time.Millisecond,
			act: func(_ *Board, cancel context.CancelFunc) { cancel() }},
		{name: "ready under an ended context", drive: drive(time.Millisecond), ready: true, timeout: 0},
		// Not-detected at 150 ms, plugged at 200 ms, ready at 350 ms; State read at 0, 150, 200, 350.
		{name: "WaitReady past not-detected", readyOnly: true, timeout: long, min: 350 * time.Millisecond,
			act: func(b *Board, _ context.CancelFunc) {
				if err := b.Plug("SATA1", img, "EVD WAIT", "W1"); err != nil {
					t.Error(err)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := New(board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{{Name: "SATA1", Drive: c.drive}}},
				Options{SpinUp: 150 * time.Millisecond, PlugRoots: []string{filepath.Dir(img)}})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			port, _ := b.Port("SATA1")
			if c.ready {
				readyDrive(t, port)
			} else if err := port.PowerOn(t.Context()); err != nil {
				t.Fatal(err)
			}
			p := &testenv.StateReads{Port: port}
			ctx, cancel := context.WithTimeout(t.Context(), c.timeout)
			defer cancel()
			wait, reads, at := hal.WaitIdentified, int64(3), c.min
			if c.readyOnly {
				wait, reads, at = hal.WaitReady, 5, 200*time.Millisecond
			}
			if c.act != nil {
				time.AfterFunc(at, func() { c.act(b, cancel) })
			}
			start := time.Now()
			d, err := wait(ctx, p)
			el := time.Since(start)
			switch {
			case c.want == nil && (err != nil || d == nil || d.Identity().Serial != "W1"):
				t.Fatalf("drive %v, err %v; want the drive W1", d, err)
			case c.want != nil && (!errors.Is(err, c.want) || d != nil):
				t.Fatalf("drive %v, err %v; want %v", d, err, c.want)
			}
			p.Answered(t, el, c.min, reads)
		})
	}
}

// TestChangedClosesOnEveryTransition: Changed closes at each change of a simulated port's state:
// power on, identification, unplug, plug, power off, and the board's close.
func TestChangedClosesOnEveryTransition(t *testing.T) {
	img := image(t, 64<<10)
	// Identification takes 300 ms: each step takes Changed long before the next transition.
	b, err := New(board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{
		{Name: "SATA1", Drive: &board.DriveDesc{Path: img, Model: "EVD WAIT", Serial: "W1"}}}},
		Options{SpinUp: 300 * time.Millisecond, PlugRoots: []string{filepath.Dir(img)}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, _ := b.Port("SATA1")
	testenv.ChangeSteps(t, p, []testenv.Step{
		{Name: "power on", Do: func() error { return p.PowerOn(t.Context()) }, Want: hal.StateIdentifying},
		{Name: "identified", Want: hal.StateReady},
		{Name: "unplug", Do: func() error { return b.Unplug("SATA1") }, Want: hal.StateNotDetected},
		{Name: "plug", Do: func() error { return b.Plug("SATA1", img, "EVD WAIT", "W2") }, Want: hal.StateIdentifying},
		{Name: "identified again", Want: hal.StateReady},
		{Name: "power off", Do: p.PowerOff, Want: hal.StateOff},
		{Name: "power on again", Do: func() error { return p.PowerOn(t.Context()) }, Want: hal.StateIdentifying},
		{Name: "board closed", Do: b.Close, Want: hal.StateOff},
	})
}

// TestWaitSettled: hal.WaitSettled returns the state a simulated port leaves identifying for, when
// it does (ready, not-detected), at once for a port that is off, and ctx's error while the port
// still identifies; it reads State at most once per change plus once.
func TestWaitSettled(t *testing.T) {
	const step = 150 * time.Millisecond
	img := image(t, 64<<10)
	drive := func(spinUp time.Duration) *board.DriveDesc { return waitDrive(img, spinUp) }
	cases := []struct {
		name    string
		drive   *board.DriveDesc
		off     bool // not powered on
		timeout time.Duration
		want    hal.PortState
		err     error
		took    time.Duration
	}{
		{name: "ready", drive: drive(step), timeout: 10 * time.Second, want: hal.StateReady, took: step},
		{name: "not detected", timeout: 10 * time.Second, want: hal.StateNotDetected, took: step},
		{name: "off", drive: drive(step), off: true, timeout: 10 * time.Second, want: hal.StateOff},
		{name: "timeout", drive: drive(10 * time.Second), timeout: step, want: hal.StateIdentifying, err: context.DeadlineExceeded, took: step},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := New(board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{{Name: "SATA1", Drive: c.drive}}},
				Options{SpinUp: step})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			port, _ := b.Port("SATA1")
			if !c.off {
				if err := port.PowerOn(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			p := &testenv.StateReads{Port: port}
			ctx, cancel := context.WithTimeout(t.Context(), c.timeout)
			defer cancel()
			start := time.Now()
			s, err := hal.WaitSettled(ctx, p)
			el := time.Since(start)
			if s != c.want || !errors.Is(err, c.err) {
				t.Fatalf("state %s, err %v; want %s, %v", s, err, c.want, c.err)
			}
			p.Answered(t, el, c.took, 3)
		})
	}
}
