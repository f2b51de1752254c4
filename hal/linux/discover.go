package linux

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/evidenced/evidenced/hal/board"
)

// Discovery is what a machine shows an integrator writing its board file: the disks with their
// attach points, the SATA ports (also the empty ones) and the GPIO chips.
type Discovery struct {
	Disks    []Disk
	ATAPorts []string // attach points of every libata port ("pci-0000:00:1f.2-ata-3")
	GPIO     []GPIOChip
}

// GPIOChip is a GPIO controller as the legacy sysfs interface shows it.
type GPIOChip struct {
	Label string
	Base  int
	Lines int
}

// Discover reads the machine's sysfs (through fsys: the sysfs root).
func Discover(fsys fs.FS) (Discovery, error) {
	var d Discovery
	var err error
	if d.Disks, err = ListDisks(fsys); err != nil {
		return d, err
	}
	if ents, err := fs.ReadDir(fsys, "class/ata_port"); err == nil {
		for _, e := range ents {
			link, err := fs.ReadLink(fsys, path.Join("class/ata_port", e.Name()))
			if err != nil {
				continue
			}
			dev := path.Join("class/ata_port", link) // …/0000:00:1f.2/ata3/ata_port/ata3
			portNo, err := readAttr(fsys, path.Join(dev, "port_no"))
			if err != nil {
				continue
			}
			pci := path.Base(path.Dir(path.Dir(path.Dir(dev))))
			if rePCI.MatchString(pci) {
				d.ATAPorts = append(d.ATAPorts, "pci-"+pci+"-ata-"+portNo)
			}
		}
		sort.Strings(d.ATAPorts)
	}
	if ents, err := fs.ReadDir(fsys, "class/gpio"); err == nil {
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "gpiochip") {
				continue
			}
			dir := path.Join("class/gpio", e.Name())
			label, _ := readAttr(fsys, path.Join(dir, "label"))
			base, _ := readInt(fsys, path.Join(dir, "base"))
			n, _ := readInt(fsys, path.Join(dir, "ngpio"))
			d.GPIO = append(d.GPIO, GPIOChip{Label: label, Base: int(base), Lines: int(n)})
		}
	}
	return d, nil
}

// busOf maps what sysfs says of a disk's transport to a port bus; "" for disks that are no port.
func busOf(d Disk) string {
	switch d.Transport {
	case "ata":
		return "sata"
	case "sas":
		return "sas"
	case "usb":
		return "usb"
	case "nvme":
		return "nvme"
	}
	return ""
}

// Skeleton is a board file for this machine: a port for every SATA port (empty or not) and every
// SAS, USB and NVMe disk seen, named in order per bus, in their default mode, without power lines
// (the integrator adds them from the GPIO chip list). Disks evidenced cannot name a port for
// (virtio, MMC, loop) are left out: Notes says which.
func (d Discovery) Skeleton(applianceID string) (board.Description, []string) {
	desc := board.Description{Kind: board.KindLinux, ApplianceID: applianceID}
	var notes []string
	count := map[string]int{}
	max := map[string]int{"sata": 8, "sas": 8, "usb": 4, "nvme": 4}
	used := map[string]bool{}
	add := func(bus, attach, what string) {
		if used[attach] {
			return
		}
		if count[bus] == max[bus] {
			notes = append(notes, fmt.Sprintf("%s: no %s port name left (a board has at most %d)", attach, strings.ToUpper(bus), max[bus]))
			return
		}
		count[bus]++
		used[attach] = true
		name := strings.ToUpper(bus) + strconv.Itoa(count[bus])
		desc.Ports = append(desc.Ports, board.PortDesc{Name: name, Bus: bus, Attach: attach, Mode: string(board.DefaultMode(name))})
		notes = append(notes, fmt.Sprintf("%s = %s %s", name, attach, what))
	}
	diskOn := map[string]Disk{}
	for _, k := range d.Disks {
		if k.Attach.Compat != "" {
			diskOn[k.Attach.Compat] = k
		}
	}
	for _, a := range d.ATAPorts {
		what := "(empty)"
		if k, ok := diskOn[a]; ok {
			what = describe(k)
		}
		add("sata", a, what)
	}
	for _, k := range d.Disks {
		bus := busOf(k)
		switch {
		case bus == "sata":
			if k.Attach.Compat != "" && used[k.Attach.Compat] {
				continue
			}
			add(bus, k.Attach.ID, describe(k))
		case bus != "" && k.Attach.ID != "":
			add(bus, k.Attach.ID, describe(k))
		default:
			why := k.Transport
			if k.AttachErr != nil {
				why = k.AttachErr.Error()
			}
			notes = append(notes, fmt.Sprintf("%s %s: not a port (%s)", k.Name, describe(k), why))
		}
	}
	for _, g := range d.GPIO {
		notes = append(notes, fmt.Sprintf("GPIO chip %q: %d lines (power: {\"chip\": %q, \"line\": N, \"activeLow\": false})", g.Label, g.Lines, g.Label))
	}
	return desc, notes
}

func describe(k Disk) string {
	m := strings.TrimSpace(k.Vendor + " " + k.Model)
	if k.Vendor == "ATA" {
		m = k.Model
	}
	return fmt.Sprintf("(%s, %s %s, %.1f GB)", k.Name, m, k.Serial, float64(k.Size)/1e9)
}
