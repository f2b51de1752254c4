package linux

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/idle"
)

// TestIdlePowerOffGPIO: on the fake GPIO tree, a Source port powered on and left without a task is
// powered off (disk deleted, power line inactive) once it has been idle for the board's
// idlePowerOff, stepped on a fake clock; a busy port, a Target port and a port without a power line
// stay on; PowerOn (what scan-port and tasks call) powers it again and the count starts over.
func TestIdlePowerOffGPIO(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.exportedLines("port-power", 504, 8, 3, 4)
	f.file("class/block/sda/device/delete", "")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(f.root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	desc, err := board.Parse([]byte(`{"kind":"linux","applianceId":"E1","idlePowerOff":"10m","ports":[
		{"name":"SATA3","attach":"pci-0000:00:1f.2-ata-3","power":{"chip":"port-power","line":3}},
		{"name":"SATA4","attach":"pci-0000:00:1f.2-ata-4","mode":"target","power":{"chip":"port-power","line":4}},
		{"name":"SAS1","attach":"pci-0000:02:00.0-sas-phy5-lun-0"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(desc, Options{SysRoot: f.root, DevRoot: t.TempDir(), Source: "kernel", Settle: 1, IdentifyTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	busy := map[string]bool{}
	w := idle.New(b, idle.Config{After: time.Duration(desc.IdlePowerOff), Busy: func(p string) bool { return busy[p] }})
	sata3, _ := b.Port("SATA3")
	sata4, _ := b.Port("SATA4")
	sas1, _ := b.Port("SAS1")
	powerOn := func(p hal.Port) {
		t.Helper()
		if err := p.PowerOn(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return p.State() != hal.StateIdentifying })
	}
	powerOn(sata3)
	powerOn(sata4)
	if got := read("class/gpio/gpio507/direction"); got != "high" {
		t.Fatalf("SATA3 power on: direction %q", got)
	}
	os.WriteFile(filepath.Join(f.root, "class/block/sda/device/delete"), nil, 0o644)

	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	check := func(at time.Duration, want ...string) {
		t.Helper()
		if got := w.Check(t0.Add(at)); !slices.Equal(got, want) {
			t.Fatalf("at +%v: powered off %v, want %v", at, got, want)
		}
	}
	check(0)
	check(9*time.Minute + 59*time.Second)
	if !sata3.Powered() || read("class/gpio/gpio507/direction") != "high" {
		t.Fatal("SATA3 went off before 10 minutes")
	}
	check(10*time.Minute, "SATA3")
	if sata3.Powered() || sata3.State() != hal.StateOff {
		t.Fatalf("SATA3 after idle: powered %v state %s", sata3.Powered(), sata3.State())
	}
	if got := read("class/gpio/gpio507/direction"); got != "low" {
		t.Fatalf("SATA3 idle off: power line %q, want low", got)
	}
	if got := read("class/block/sda/device/delete"); got != "1" {
		t.Fatalf("SATA3 idle off: the disk was not deleted first (delete=%q)", got)
	}
	if !sata4.Powered() || !sas1.Powered() || read("class/gpio/gpio508/direction") != "high" {
		t.Fatal("a Target port or a port without a power line was powered off")
	}

	// scan-port powers it on again: the count starts over from then.
	powerOn(sata3)
	if got := read("class/gpio/gpio507/direction"); got != "high" {
		t.Fatalf("SATA3 power on again: direction %q", got)
	}
	check(11 * time.Minute)
	check(20 * time.Minute)
	// A task takes it: never off while busy, and counted from the end of the task.
	busy["SATA3"] = true
	check(31 * time.Minute)
	check(60 * time.Minute)
	busy["SATA3"] = false
	check(61 * time.Minute)
	check(70*time.Minute + 59*time.Second)
	check(71*time.Minute, "SATA3")
	// Off stays off: nothing more to do.
	check(200 * time.Minute)
}
