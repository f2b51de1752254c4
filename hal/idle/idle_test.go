package idle_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/idle"
	"github.com/evidenced/evidenced/hal/sim"
)

// TestIdleSimBoard: on the simulated board a Source port scanned and left alone goes off after
// the idle time of a fake clock, its drive forgotten (State off, no Drive); a Target port and a
// busy port stay on; PowerOn brings the drive back identified.
func TestIdleSimBoard(t *testing.T) {
	b, desc := simBoard(t, `"idlePowerOff":"5m","ports":[
		{"name":"SATA1","drive":{"path":"IMG","model":"EVD IDLE","serial":"IDLE1"}},
		{"name":"SATA2","drive":{"path":"IMG","model":"EVD BUSY","serial":"BUSY1"}},
		{"name":"USB1","mode":"target"}]`)
	ready := func(name string) hal.Port {
		t.Helper()
		p, _ := b.Port(name)
		if err := p.PowerOn(t.Context()); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); p.State() == hal.StateIdentifying; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still identifying", name)
			}
		}
		return p
	}
	sata1, sata2, usb1 := ready("SATA1"), ready("SATA2"), ready("USB1")
	w := idle.New(b, idle.Config{After: time.Duration(desc.IdlePowerOff), Busy: func(p string) bool { return p == "SATA2" }})
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if got := w.Check(t0); len(got) != 0 {
		t.Fatalf("first check powered off %v", got)
	}
	if got := w.Check(t0.Add(4 * time.Minute)); len(got) != 0 {
		t.Fatalf("+4m: powered off %v", got)
	}
	if got := w.Check(t0.Add(5 * time.Minute)); !slices.Equal(got, []string{"SATA1"}) {
		t.Fatalf("+5m: powered off %v, want SATA1", got)
	}
	if sata1.Powered() || sata1.State() != hal.StateOff || sata1.Drive() != nil {
		t.Fatalf("SATA1 after idle: powered %v state %s", sata1.Powered(), sata1.State())
	}
	if !sata2.Powered() || sata2.Drive() == nil || !usb1.Powered() {
		t.Fatal("the busy port or the Target port went off")
	}
	if p := ready("SATA1"); p.Drive() == nil || p.Drive().Identity().Serial != "IDLE1" {
		t.Fatalf("SATA1 after power on: state %s", p.State())
	}
	if got := w.Check(t0.Add(9 * time.Minute)); len(got) != 0 {
		t.Fatalf("right after the power on: powered off %v", got)
	}
	// A scan at +13m restarts SATA1's count (counting since +9m): the next check starts it again,
	// so +14m+5m is the earliest power off, not +9m+5m.
	w.Touch("SATA1")
	for _, m := range []time.Duration{14, 18} {
		if got := w.Check(t0.Add(m * time.Minute)); len(got) != 0 {
			t.Fatalf("+%dm after a scan at +13m: powered off %v", m, got)
		}
	}
	if got := w.Check(t0.Add(19 * time.Minute)); !slices.Equal(got, []string{"SATA1"}) {
		t.Fatalf("+19m: powered off %v, want SATA1 (5 min after the count restarted)", got)
	}
}

// TestHoldAroundPowerOff: the power-off happens only under the task manager's hold, and the hold
// is released after it; a refused hold (a task took the port after the last look) leaves it on.
func TestHoldAroundPowerOff(t *testing.T) {
	b, _ := simBoard(t, `"ports":[{"name":"SATA1","drive":{"path":"IMG","model":"M","serial":"S"}}]`)
	p, _ := b.Port("SATA1")
	if err := p.PowerOn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := hal.WaitIdentified(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	allow, held, poweredAtRelease := false, 0, true
	w := idle.New(b, idle.Config{After: time.Minute, Hold: func(string) (func(), bool) {
		if !allow {
			return nil, false
		}
		held++
		return func() { poweredAtRelease = p.Powered() }, true
	}})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	w.Check(t0)
	if got := w.Check(t0.Add(2 * time.Minute)); len(got) != 0 || !p.Powered() {
		t.Fatalf("refused hold: powered off %v, powered %v", got, p.Powered())
	}
	allow = true
	w.Check(t0.Add(3 * time.Minute))
	if got := w.Check(t0.Add(5 * time.Minute)); !slices.Equal(got, []string{"SATA1"}) || held != 1 || poweredAtRelease || p.Powered() {
		t.Fatalf("granted hold: powered off %v, holds %d, powered at release %v", got, held, poweredAtRelease)
	}
}

// TestInterval: the check period follows the idle time within its bounds.
func TestInterval(t *testing.T) {
	for _, c := range []struct{ after, want time.Duration }{
		{time.Second, time.Second}, {time.Minute, 6 * time.Second}, {10 * time.Minute, 30 * time.Second}, {time.Hour, 30 * time.Second},
	} {
		if got := idle.New(nil, idle.Config{After: c.after}).Interval(); got != c.want {
			t.Errorf("After %v: interval %v, want %v", c.after, got, c.want)
		}
	}
}

// simBoard starts a simulated board from the fields after applianceId of a board file, every
// drive path IMG standing for one 1 MiB image; the board is closed at the test's end.
func simBoard(t *testing.T, fields string) (*sim.Board, board.Description) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	desc, err := board.Parse([]byte(`{"kind":"sim","applianceId":"E1",` + strings.ReplaceAll(fields, "IMG", img) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(desc, sim.Options{SpinUp: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, desc
}
