package linux

// The GPIO part of TestBoardInQEMU: the guest loads gpio-sim (built out of tree by
// scripts/gpio-sim.sh), makes a chip of port power lines, and runs a board whose SAS3 port has its
// power on line 0 of that chip. The kernel traces every write to a line on the serial console
// (trace_event=gpio:gpio_value tp_printk); powerHarness, on the host, follows the line and plugs
// the port's disk in and out through QMP, as a power switch would. A freezing drive is made by
// throttling that disk to one byte per second through QMP; the recovery power-cycles the port
// through the line, and the re-plugged disk (a fresh QEMU block backend) answers again.

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/recovery"
	"golang.org/x/sys/unix"
)

// gpioPort is the port whose power goes through gpio-sim, and its disk's QEMU device.
var gpioPort = qemuDisk{Port: "SAS3", Attach: "pci-0000:00:06.0-scsi-0:0:2:0", Model: "EVD GPIODISK", Serial: "EVDGPIO0001"}

const (
	gpioDevice  = "gpdisk"    // QEMU device id of gpioPort's disk
	gpioNode    = "gpnode"    // its block node, kept across device_del/device_add
	gpioChip    = "evd-power" // label of the guest's gpio-sim chip
	gpioDiskArg = `"driver":"scsi-hd","id":"gpdisk","drive":"gpnode","bus":"vs.0","channel":0,"scsi-id":2,"lun":0,"vendor":"EVD","product":"GPIODISK","serial":"EVDGPIO0001"`
)

// gpioDeviceArgs are the QEMU arguments of the disk on the GPIO-powered port, plugged at boot.
func gpioDeviceArgs(img string) []string {
	return []string{"-blockdev", "driver=raw,node-name=" + gpioNode + ",file.driver=file,file.filename=" + img,
		"-device", "scsi-hd,id=" + gpioDevice + ",drive=" + gpioNode + ",bus=vs.0,channel=0,scsi-id=2,lun=0,vendor=EVD,product=GPIODISK,serial=EVDGPIO0001"}
}

// powerHarness is the host side of the GPIO power lines: it reads the guest's console, learns
// which global GPIO number is the disk's power line (the guest prints "GPIO-LINE <n> <device>"),
// and on every "gpio_value: <n> set <v>" trace plugs the disk out (0) or in (1) through QMP. It
// also throttles the disk to a crawl when the guest prints "FREEZE <device>".
type powerHarness struct {
	t    *testing.T
	sock string
	line int // global GPIO number of the power line; -1 until the guest says
	in   bool
	mu   sync.Mutex
	log  []string // what the harness did, in order: "del", "add", "freeze"
}

var reGPIOValue = regexp.MustCompile(`gpio_value: (\d+) set (\d)`)

func newPowerHarness(t *testing.T, sock string) *powerHarness {
	return &powerHarness{t: t, sock: sock, line: -1, in: true}
}

// console handles one console line.
func (h *powerHarness) console(line string) {
	if _, rest, ok := strings.Cut(line, "GPIO-LINE "); ok {
		f := strings.Fields(rest)
		if len(f) == 2 && f[1] == gpioDevice {
			h.line, _ = strconv.Atoi(f[0])
		}
	}
	if _, rest, ok := strings.Cut(line, "FREEZE "); ok && strings.HasPrefix(rest, gpioDevice) {
		// One byte per second of reads: the request after the next never completes.
		h.do("freeze", `{"execute":"block_set_io_throttle","arguments":{"id":"`+gpioDevice+`","bps":0,"bps_rd":1,"bps_wr":0,"iops":0,"iops_rd":0,"iops_wr":0}}`)
	}
	m := reGPIOValue.FindStringSubmatch(line)
	if m == nil || h.line < 0 {
		return
	}
	if n, _ := strconv.Atoi(m[1]); n != h.line {
		return
	}
	switch on := m[2] == "1"; {
	case on && !h.in:
		h.do("add", `{"execute":"device_add","arguments":{`+gpioDiskArg+`}}`)
		h.in = true
	case !on && h.in:
		// device_del drains the disk's requests, throttled ones too: a frozen read ends here.
		h.do("del", `{"execute":"device_del","arguments":{"id":"`+gpioDevice+`"}}`)
		h.in = false
	}
}

func (h *powerHarness) do(what, cmd string) {
	start := time.Now()
	var err error
	for try := 0; try < 20; try++ {
		// A device_add right after a device_del may find the id not yet released.
		if err = qmpCall(h.sock, cmd); err == nil || !strings.Contains(err.Error(), "Duplicate") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.t.Errorf("power harness %s: %v", what, err)
		h.log = append(h.log, what+"-failed")
		return
	}
	h.log = append(h.log, what)
	h.t.Logf("power harness: %s (%v)", what, time.Since(start).Round(time.Millisecond))
}

func (h *powerHarness) done() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

// qmpCall sends one command to QEMU's monitor socket; an error answer is an error.
func qmpCall(sock, command string) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // the greeting
		return fmt.Errorf("greeting: %w", err)
	}
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, command} {
		if _, err := c.Write([]byte(cmd + "\n")); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%s: %w", cmd, err)
			}
			if strings.Contains(line, `"error"`) {
				return fmt.Errorf("%s: %s", cmd, strings.TrimSpace(line))
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
	return nil
}

// gpioSimChip makes a gpio-sim chip through configfs and returns its base GPIO number, found under
// /sys/class/gpio by its label as the board finds it.
func gpioSimChip(t *testing.T, name, label string, lines int) int {
	t.Helper()
	cfg := "/sys/kernel/config"
	if _, err := os.Stat(cfg + "/gpio-sim"); err != nil {
		if err := unix.Mount("configfs", cfg, "configfs", 0, ""); err != nil {
			t.Fatalf("mount configfs: %v", err)
		}
	}
	dir := filepath.Join(cfg, "gpio-sim", name)
	for _, d := range []string{dir, dir + "/bank0"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range [][2]string{{"bank0/num_lines", strconv.Itoa(lines)}, {"bank0/label", label}, {"live", "1"}} {
		if err := os.WriteFile(filepath.Join(dir, w[0]), []byte(w[1]), 0); err != nil {
			t.Fatalf("gpio-sim %s: %v", w[0], err)
		}
	}
	chips, _ := filepath.Glob("/sys/class/gpio/gpiochip*")
	for _, c := range chips {
		if b, _ := os.ReadFile(c + "/label"); strings.TrimSpace(string(b)) == label {
			base, err := readIntFile(c + "/base")
			if err != nil {
				t.Fatal(err)
			}
			return base
		}
	}
	t.Fatalf("gpio-sim chip %q not under /sys/class/gpio (%v)", label, chips)
	return 0
}

// simLineValue is the level gpio-sim sees on a line of the chip (what the power switch would see).
func simLineValue(t *testing.T, line int) string {
	t.Helper()
	vals, _ := filepath.Glob(fmt.Sprintf("/sys/devices/platform/gpio-sim.*/gpiochip*/sim_gpio%d/value", line))
	if len(vals) != 1 {
		t.Fatalf("sim_gpio%d: %v", line, vals)
	}
	b, err := os.ReadFile(vals[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// diskAt says whether the kernel shows a disk at an attach point.
func diskAt(attach string) bool {
	disks, _ := ListDisks(os.DirFS("/sys"))
	for _, d := range disks {
		if d.Attach.Matches(attach) && d.Size > 0 {
			return true
		}
	}
	return false
}

// guestGPIOPower runs in the guest: power off and on through the gpio-sim line make the disk leave
// and come back (the host harness follows the line), then a freezing drive is power-cycled by the
// recovery through the same line and read to the end with the right hash.
func guestGPIOPower(t *testing.T, ctx context.Context, d qemuDisk) {
	base := gpioSimChip(t, "evd", gpioChip, 8)
	fmt.Printf("GPIO-LINE %d %s\n", base, gpioDevice)
	time.Sleep(200 * time.Millisecond) // the harness reads the console line by line
	// The disk is there at boot, on a powered port.
	waitFor(t, func() bool { return diskAt(d.Attach) })
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "EVDQEMU", Ports: []board.PortDesc{
		{Name: d.Port, Attach: d.Attach, Mode: "source", Power: &board.GPIOLine{Chip: gpioChip, Line: 0}},
	}}
	// The board's log goes to the console: power off of the frozen drive says it did not wait for
	// the kernel's delete.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gb, err := New(desc, Options{Source: "kernel", Settle: 500 * time.Millisecond, DeleteWait: 2 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	ev := gb.Subscribe(ctx)
	p, _ := gb.Port(d.Port)
	// The board powers the port off at start: the disk is deleted, the line goes low, the harness
	// unplugs the disk. A rescan must not find it again: it is gone on the host side.
	if p.Powered() || simLineValue(t, 0) != "0" {
		t.Fatalf("%s at start: powered %v, line %s", d.Port, p.Powered(), simLineValue(t, 0))
	}
	assertUnplugged := func(when string) {
		t.Helper()
		time.Sleep(time.Second)
		if err := rescanFor("/sys", d.Attach); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if diskAt(d.Attach) {
				t.Fatalf("%s: a rescan finds the disk again: the power line did not unplug it", when)
			}
		}
	}
	assertUnplugged("power off at start")
	for cycle := 1; cycle <= 2; cycle++ {
		on := time.Now()
		if err := p.PowerOn(ctx); err != nil {
			t.Fatal(err)
		}
		if v := simLineValue(t, 0); v != "1" {
			t.Fatalf("power on: line %s", v)
		}
		waitEvent(t, ev, d.Port, hal.Plugged, 20*time.Second)
		t.Logf("FIGURE %s GPIO power on to plugged: %v", d.Port, time.Since(on).Round(time.Millisecond))
		if id := p.Drive().Identity(); id.Model != d.Model || id.Serial != d.Serial {
			t.Fatalf("%s after power on: %+v", d.Port, id)
		}
		assertWriteBlocked(t, "/dev/"+p.Drive().(*Drive).disk.Name)
		if cycle == 2 {
			break
		}
		off := time.Now()
		if err := p.PowerOff(); err != nil {
			t.Fatal(err)
		}
		t.Logf("FIGURE %s GPIO power off: %v", d.Port, time.Since(off).Round(time.Millisecond))
		if p.Drive() != nil || p.State() != hal.StateOff || simLineValue(t, 0) != "0" {
			t.Fatalf("%s after power off: state %s line %s", d.Port, p.State(), simLineValue(t, 0))
		}
		assertUnplugged("power off")
	}

	// A freezing drive: after a few MiB the host throttles the disk to a byte a second. The
	// recovery resets it, then power-cycles the port through the line; the harness plugs a
	// fresh disk back in and the read goes on to the end.
	drv := p.Drive()
	r, err := drv.Open()
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	rec := recovery.New(p, drv, r, recovery.Config{Timeout: 3 * time.Second, ResetWait: 3 * time.Second, OffTime: time.Second,
		ReadyWait: 30 * time.Second, Cycles: 3, Log: func(format string, args ...any) {
			s := fmt.Sprintf(format, args...)
			steps = append(steps, s)
			fmt.Println("RECOVERY", s)
		}})
	defer rec.Close()
	h := md5.New()
	buf := make([]byte, 1<<20)
	var frozeAt time.Time
	for off := int64(0); off < rec.Size(); off += int64(len(buf)) {
		if off == 4<<20 {
			fmt.Println("FREEZE " + gpioDevice)
			time.Sleep(time.Second) // the harness throttles the disk meanwhile
			frozeAt = time.Now()
		}
		n, err := rec.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatalf("read at %d through the recovery: %v (steps: %q)", off, err, steps)
		}
		h.Write(buf[:n])
	}
	took := time.Since(frozeAt)
	if got := hex.EncodeToString(h.Sum(nil)); got != d.MD5 {
		t.Fatalf("after the recovery: MD5 %s, image %s", got, d.MD5)
	}
	cycled := false
	for _, s := range steps {
		cycled = cycled || strings.Contains(s, "same serial "+d.Serial)
	}
	if !cycled {
		t.Fatalf("the read finished without a power cycle: steps %q", steps)
	}
	t.Logf("FIGURE %s frozen drive: read to the end %v after the freeze, MD5 right; steps %q", d.Port, took.Round(time.Millisecond), steps)
}
