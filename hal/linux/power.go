package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/hal/board"
)

// Port power and rescans go through sysfs files under a root passed in (/sys on the appliance, a
// temporary folder in tests): the legacy GPIO sysfs interface (export, direction, value), the SCSI
// hosts' scan files, the PCI rescan and remove files, a disk's device/delete.

// gpioLine is one exported GPIO line.
type gpioLine struct {
	sysRoot   string
	num       int // global GPIO number: the chip's base + the line's offset
	activeLow bool
	desc      board.GPIOLine
}

// findGPIO finds the chip by label under class/gpio and returns the line, not yet exported.
func findGPIO(sysRoot string, l board.GPIOLine) (*gpioLine, error) {
	chips, _ := filepath.Glob(filepath.Join(sysRoot, "class/gpio/gpiochip*"))
	var labels []string
	for _, c := range chips {
		label, err := os.ReadFile(filepath.Join(c, "label"))
		if err != nil {
			continue
		}
		lb := strings.TrimSpace(string(label))
		labels = append(labels, lb)
		if lb != l.Chip {
			continue
		}
		base, err := readIntFile(filepath.Join(c, "base"))
		if err != nil {
			return nil, fmt.Errorf("GPIO chip %q: %w", l.Chip, err)
		}
		n, err := readIntFile(filepath.Join(c, "ngpio"))
		if err != nil {
			return nil, fmt.Errorf("GPIO chip %q: %w", l.Chip, err)
		}
		if l.Line >= n {
			return nil, fmt.Errorf("GPIO chip %q has %d lines, line %d does not exist", l.Chip, n, l.Line)
		}
		return &gpioLine{sysRoot: sysRoot, num: base + l.Line, activeLow: l.ActiveLow, desc: l}, nil
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("GPIO chip %q not found: no chip under %s", l.Chip, filepath.Join(sysRoot, "class/gpio"))
	}
	return nil, fmt.Errorf("GPIO chip %q not found (chips: %s)", l.Chip, strings.Join(labels, ", "))
}

// set drives the line so that its function (power, reset) is on or off, exporting it first.
func (g *gpioLine) set(on bool) error {
	dir := filepath.Join(g.sysRoot, "class/gpio", "gpio"+strconv.Itoa(g.num))
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := writeFile(filepath.Join(g.sysRoot, "class/gpio/export"), strconv.Itoa(g.num)); err != nil {
			return fmt.Errorf("GPIO %s/%d: export: %w", g.desc.Chip, g.desc.Line, err)
		}
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("GPIO %s/%d: export did not create gpio%d: %w", g.desc.Chip, g.desc.Line, g.num, err)
		}
	}
	level := on != g.activeLow
	// "high"/"low" set the direction and the level in one write, so the line never glitches.
	v := "low"
	if level {
		v = "high"
	}
	if err := writeFile(filepath.Join(dir, "direction"), v); err != nil {
		return fmt.Errorf("GPIO %s/%d: direction: %w", g.desc.Chip, g.desc.Line, err)
	}
	return nil
}

// pulse drives the line active for d, then inactive.
func (g *gpioLine) pulse(d time.Duration) error {
	if err := g.set(true); err != nil {
		return err
	}
	time.Sleep(d)
	return g.set(false)
}

// reSCSIAttach is the SCSI address at the end of an attach point: "-scsi-H:C:T:L" → C, T, L.
var reSCSIAttach = regexp.MustCompile(`^-scsi-\d+:(\d+):(\d+):(\d+)$`)

// rescanFor asks the kernel to look for the drive of an attach point: the SCSI hosts below its
// PCI controller scan all channels, targets and LUNs; an NVMe port (a PCIe slot) needs a PCI
// rescan. USB ports enumerate by themselves.
func rescanFor(sysRoot, attach string) error {
	pci, ok := strings.CutPrefix(attach, "pci-")
	if !ok {
		return nil // loop devices: nothing to scan
	}
	if i := strings.IndexByte(pci, '-'); i > 0 {
		pci = pci[:i]
	}
	rest := strings.TrimPrefix(attach, "pci-"+pci)
	switch {
	case strings.HasPrefix(rest, "-nvme"):
		return writeFile(filepath.Join(sysRoot, "bus/pci/rescan"), "1")
	case strings.HasPrefix(rest, "-usb"):
		return nil
	}
	// A port named down to its SCSI address ("-scsi-H:C:T:L") scans that channel, target and LUN
	// only: a wildcard scan of a virtio-scsi or megaraid host walks hundreds of targets (about 10 s
	// in a QEMU guest).
	scan := "- - -"
	if m := reSCSIAttach.FindStringSubmatch(rest); m != nil {
		scan = m[1] + " " + m[2] + " " + m[3]
	}
	hosts, _ := filepath.Glob(filepath.Join(sysRoot, "class/scsi_host/host*"))
	n := 0
	for _, h := range hosts {
		target, err := os.Readlink(h)
		if err != nil || !strings.Contains(target, "/"+pci+"/") {
			continue
		}
		if err := writeFile(filepath.Join(h, "scan"), scan); err != nil {
			return fmt.Errorf("rescan %s: %w", filepath.Base(h), err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("rescan: no SCSI host below PCI device %s", pci)
	}
	return nil
}

// deleteDisk removes a disk from the kernel before its power goes: the SCSI device's delete file
// (the midlayer flushes and detaches cleanly), or for NVMe the controller's PCI function.
func deleteDisk(sysRoot string, d Disk) error {
	if reNVMeNS.MatchString(d.Name) {
		pci, ok := strings.CutPrefix(d.Attach.ID, "pci-")
		if !ok {
			return fmt.Errorf("delete %s: no PCI function in its path %q", d.Name, d.Attach.ID)
		}
		pci = pci[:strings.IndexByte(pci+"-", '-')]
		return writeFile(filepath.Join(sysRoot, "bus/pci/devices", pci, "remove"), "1")
	}
	if strings.HasPrefix(d.Name, "loop") {
		return nil // a loop device has no device to delete
	}
	return writeFile(filepath.Join(sysRoot, "class/block", d.Name, "device/delete"), "1")
}

// attachExists checks that the controller an attach point starts with is there: the PCI function,
// or for "loop-N" the loop device.
func attachExists(sysRoot, attach string) error {
	if n, ok := strings.CutPrefix(attach, "loop-"); ok {
		if _, err := os.Stat(filepath.Join(sysRoot, "class/block", "loop"+n)); err != nil {
			return fmt.Errorf("attach point %q: no loop device loop%s", attach, n)
		}
		return nil
	}
	pci, ok := strings.CutPrefix(attach, "pci-")
	if !ok {
		return fmt.Errorf("attach point %q: evidenced knows attach points on PCI (pci-…) and loop devices (loop-N)", attach)
	}
	pci = pci[:strings.IndexByte(pci+"-", '-')]
	if strings.Contains(attach, "-nvme-") && len(pci) > 7 {
		// An empty NVMe slot has no PCI function yet, only the bus behind its root port.
		bus := pci[:7] // DDDD:BB
		if _, err := os.Stat(filepath.Join(sysRoot, "class/pci_bus", bus)); err != nil {
			return fmt.Errorf("attach point %q: no PCI bus %s", attach, bus)
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(sysRoot, "bus/pci/devices", pci)); err != nil {
		return fmt.Errorf("attach point %q: no PCI device %s", attach, pci)
	}
	return nil
}

func writeFile(name, v string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0) // sysfs ignores O_TRUNC; a fake tree needs it
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readIntFile(name string) (int, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// usbAuthorize switches the USB device on a port's connector on or off through its authorized
// file (0: the kernel unbinds its drivers and the disk goes; 1: it is bound again), the power
// switch of a USB port without a power line. The attach point names the connector after
// "-usb-0:" ("pci-0000:00:14.0-usb-0:2:1.0" is connector 2, "…-usb-0:1.4:1.0" port 4 of the hub on
// connector 1). Nothing plugged there: os.ErrNotExist.
func usbAuthorize(sysRoot, attach string, on bool) error {
	pci, rest, ok := strings.Cut(strings.TrimPrefix(attach, "pci-"), "-usb-0:")
	if !ok || !strings.HasPrefix(attach, "pci-") {
		return fmt.Errorf("attach point %q is not a USB connector", attach)
	}
	port := rest
	if i := strings.IndexAny(port, ":-"); i >= 0 {
		port = port[:i]
	}
	devs, _ := filepath.Glob(filepath.Join(sysRoot, "bus/pci/devices", pci, "usb*", "*-"+port))
	v := "0"
	if on {
		v = "1"
	}
	n := 0
	for _, d := range devs {
		if _, err := os.Stat(filepath.Join(d, "authorized")); err != nil {
			continue
		}
		if err := writeFile(filepath.Join(d, "authorized"), v); err != nil {
			return fmt.Errorf("USB %s: authorized=%s: %w", filepath.Base(d), v, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("USB connector %s of %s: %w", port, pci, os.ErrNotExist)
	}
	return nil
}
