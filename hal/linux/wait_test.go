package linux

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// waitBoard is the fake tree's board with one port, SATA3, on a power line: attach names where
// its drive is (ata-3: the tree's sda; ata-4: nothing), mode its Source switch.
func waitBoard(t *testing.T, attach, mode string, opt Options) *Board {
	t.Helper()
	f := newFakeSys(t)
	f.build()
	f.exportedLines("port-power", 504, 8, 3)
	f.file("class/block/sda/device/delete", "")
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "E1", Ports: []board.PortDesc{
		{Name: "SATA3", Attach: attach, Mode: mode, Power: &board.GPIOLine{Chip: "port-power", Line: 3}},
	}}
	opt.SysRoot, opt.DevRoot, opt.Source = f.root, t.TempDir(), "kernel"
	b, err := New(desc, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestWaitIdentified: hal.WaitIdentified on a real board over the fake sysfs tree answers at the
// transition that ends it: ready when the settled port's rescan finds the drive (target mode, so
// it is identified without a write-block ioctl the fake tree cannot take), not-detected when it
// finds none; the context's end while the port still identifies (a source drive whose write-block
// fails is never identified, for IdentifyTimeout); at once for a ready port under an ended
// context. State is read at most once per change plus once: polling every 25 ms would read it
// 6 times or more in the 150 ms each case takes.
func TestWaitIdentified(t *testing.T) {
	const long = 10 * time.Second
	const step = 150 * time.Millisecond
	cases := []struct {
		name, attach, mode string
		opt                Options
		ready              bool
		cancel             bool // cancel at step instead of a timeout
		timeout            time.Duration
		want               error // nil: the drive sda
		min                time.Duration
	}{
		{name: "ready", attach: "pci-0000:00:1f.2-ata-3", mode: "target", opt: Options{Settle: step, IdentifyTimeout: long}, timeout: long, min: step},
		{name: "not detected", attach: "pci-0000:00:1f.2-ata-4", mode: "target", opt: Options{Settle: step, IdentifyTimeout: 1}, timeout: long, want: hal.ErrNotDetected, min: step},
		{name: "timeout", attach: "pci-0000:00:1f.2-ata-3", mode: "source", opt: Options{Settle: 1, IdentifyTimeout: long}, timeout: step, want: context.DeadlineExceeded, min: step},
		{name: "cancelled", attach: "pci-0000:00:1f.2-ata-3", mode: "source", opt: Options{Settle: 1, IdentifyTimeout: long}, cancel: true, timeout: long, want: context.Canceled, min: step},
		{name: "ready under an ended context", attach: "pci-0000:00:1f.2-ata-3", mode: "target", opt: Options{Settle: 1, IdentifyTimeout: long}, ready: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := waitBoard(t, c.attach, c.mode, c.opt)
			port, _ := b.Port("SATA3")
			defer port.PowerOff() // ends the identification of the cases that time out
			if err := port.PowerOn(t.Context()); err != nil {
				t.Fatal(err)
			}
			if c.ready {
				waitFor(t, func() bool { return port.State() == hal.StateReady })
			}
			p := &testenv.StateReads{Port: port}
			ctx, cancel := context.WithTimeout(t.Context(), c.timeout)
			defer cancel()
			if c.cancel {
				time.AfterFunc(c.min, cancel)
			}
			start := time.Now()
			d, err := hal.WaitIdentified(ctx, p)
			el := time.Since(start)
			switch {
			case c.want == nil && (err != nil || d == nil || d.Identity().Serial != "WD-WCC6Y0ABCDEF"):
				t.Fatalf("drive %v, err %v; want sda", d, err)
			case c.want != nil && (!errors.Is(err, c.want) || d != nil):
				t.Fatalf("drive %v, err %v; want %v", d, err, c.want)
			}
			p.Answered(t, el, c.min, 3)
		})
	}
}

// TestChangedClosesOnEveryTransition: Changed closes at each change of a real port's state on the
// fake tree: power on, identification, the drive's remove uevent, its add uevent, power off. The
// uevents are handed to the board as its event loop does.
func TestChangedClosesOnEveryTransition(t *testing.T) {
	b := waitBoard(t, "pci-0000:00:1f.2-ata-3", "target", Options{Settle: 300 * time.Millisecond, IdentifyTimeout: 10 * time.Second})
	p, _ := b.Port("SATA3")
	testenv.ChangeSteps(t, p, []testenv.Step{
		{Name: "power on", Do: func() error { return p.PowerOn(t.Context()) }, Want: hal.StateIdentifying},
		{Name: "identified", Want: hal.StateReady},
		{Name: "remove uevent", Do: func() error { b.removed("sda"); return nil }, Want: hal.StateNotDetected},
		{Name: "add uevent", Do: func() error { b.disk("sda"); return nil }, Want: hal.StateReady},
		{Name: "power off", Do: p.PowerOff, Want: hal.StateOff},
	})
}
