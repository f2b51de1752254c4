// Package board reads and validates the board description file: which ports a board has, their
// default Source/Target mode and, for the simulated board, the image files standing in for drives.
//
// Validation is strict because the description is the only thing that decides which ports exist,
// and because model and serial must survive the API's `PORT MODEL SERIAL` drive identifier: the
// last word is the serial, so a serial with a space (or a model with control characters) would make
// a drive impossible to name.
package board

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/evidenced/evidenced/hal"
)

// Kinds of board a description can name.
const (
	KindSim   = "sim"   // ports backed by image files (hal/sim)
	KindLinux = "linux" // real ports (hal/linux)
)

// Description is a board description file.
type Description struct {
	Kind        string `json:"kind"`
	ApplianceID string `json:"applianceId"`
	// IdlePowerOff: a powered Source port with no task on it for this long is powered off again
	// (a drive left spinning wears and warms for nothing); scan-port or a task powers it on. In the
	// file a duration such as "10m" or "1h30m"; absent or "0" means never.
	IdlePowerOff Duration   `json:"idlePowerOff,omitzero"`
	Ports        []PortDesc `json:"ports"`
}

// Duration is a time.Duration written in a board file as Go duration text ("90s", "10m").
type Duration time.Duration

// MaxIdlePowerOff bounds IdlePowerOff: a longer value is a typo (a day, not a minute count).
const MaxIdlePowerOff = 24 * time.Hour

// UnmarshalJSON reads "10m"-style text; a bare number is refused (seconds or minutes?).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`a duration is text such as "10m" or "90s", not %s`, b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`duration %q: write it as "10m", "90s" or "1h30m"`, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as text ParseDuration reads back.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// PortDesc is one port of the board. Mode may be empty in the file; Parse fills in DefaultMode.
// Bus, Attach, Power and Reset describe a real port (kind "linux"); Drive a simulated one.
type PortDesc struct {
	Name string `json:"name"`
	Mode string `json:"mode,omitempty"`
	// Bus is sata, sas, usb, ide, ext or nvme; empty means the bus the port's name says.
	Bus string `json:"bus,omitempty"`
	// Attach is the stable kernel attach point of the port in udev's ID_PATH form, for example
	// "pci-0000:00:1f.2-ata-3", "pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0" or
	// "pci-0000:03:00.0-nvme-1". Required on a "linux" board. A disk whose path starts with it
	// (followed by nothing or by '-') belongs to the port. "loop-N" names the loop device N, which
	// has no ID_PATH: it lets tests and demos use a loop device as a port's drive.
	Attach string `json:"attach,omitempty"`
	// Power switches the port's drive power; nil means the port is always powered.
	Power *GPIOLine `json:"power,omitempty"`
	// Reset is the port's reset line (a pulse resets the drive); optional.
	Reset *GPIOLine  `json:"reset,omitempty"`
	Drive *DriveDesc `json:"drive,omitempty"`
}

// GPIOLine is one GPIO line, named by its chip's label (stable across boots, unlike the global
// GPIO numbers) and its offset on that chip.
type GPIOLine struct {
	Chip      string `json:"chip"`                // label of the gpiochip (/sys/class/gpio/gpiochipN/label)
	Line      int    `json:"line"`                // offset on the chip
	ActiveLow bool   `json:"activeLow,omitempty"` // true: writing 0 turns the function (power, reset) on
}

// DriveDesc is a simulated drive: an image file and the identity it reports.
type DriveDesc struct {
	Path       string  `json:"path"`
	Model      string  `json:"model"`
	Serial     string  `json:"serial"`
	Firmware   string  `json:"firmware,omitempty"`
	SectorSize int     `json:"sectorSize,omitempty"` // 0 = 512
	BadSectors []int64 `json:"badSectors,omitempty"` // LBAs that fail to read
	ReadMBps   float64 `json:"readMBps,omitempty"`   // 0 = unthrottled; MB = 10^6 bytes
	SpinUpMs   int     `json:"spinUpMs,omitempty"`   // 0 = the simulator's default
	SMART      *SMART  `json:"smart,omitempty"`      // nil = healthy defaults
	// FreezeAt are LBAs where the drive stops answering: a read touching one hangs until the port
	// is power-cycled (or the drive unplugged). Each LBA freezes FreezeTimes times (0 = once).
	FreezeAt    []int64 `json:"freezeAt,omitempty"`
	FreezeTimes int     `json:"freezeTimes,omitempty"`
}

// SMART is the health a simulated drive reports. Nil pointers mean "use the default", so that a
// file can set one value (e.g. only the temperature) without having to spell out the others.
type SMART struct {
	Supported    *bool `json:"supported,omitempty"`
	Passed       *bool `json:"passed,omitempty"`
	Temperature  *int  `json:"temperature,omitempty"` // °C
	PowerOnHours *int  `json:"powerOnHours,omitempty"`
	Reallocated  *int  `json:"reallocated,omitempty"`
	Pending      *int  `json:"pending,omitempty"`
}

// DefaultSectorSize is the logical sector size of a drive whose description does not give one.
const DefaultSectorSize = 512

var taskForcePorts = []string{
	"SATA1", "SATA2", "SATA3", "SATA4", "SATA5", "SATA6",
	"SAS1", "SAS2", "SAS3", "SAS4", "SAS5", "SAS6",
	"USB1", "USB2", "USB3", "USB4",
	"IDE1", "EXT1",
}

var taskForce2Extra = []string{"SATA7", "SATA8", "SAS7", "SAS8", "NVME1", "NVME2", "NVME3", "NVME4"}

// TaskForcePorts is the 18 ports of the TaskForce board, in board order.
func TaskForcePorts() []string { return append([]string(nil), taskForcePorts...) }

// TaskForce2Ports is the 26 ports of the TaskForce 2 board, in board order (each bus grouped).
func TaskForce2Ports() []string {
	return []string{
		"SATA1", "SATA2", "SATA3", "SATA4", "SATA5", "SATA6", "SATA7", "SATA8",
		"SAS1", "SAS2", "SAS3", "SAS4", "SAS5", "SAS6", "SAS7", "SAS8",
		"NVME1", "NVME2", "NVME3", "NVME4",
		"USB1", "USB2", "USB3", "USB4",
		"IDE1", "EXT1",
	}
}

// known is every port name any supported board has (the TaskForce 2 set is a superset).
var known = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range TaskForce2Ports() {
		m[p] = true
	}
	return m
}()

// CanonicalPort maps a port name in any case ("sata1", "Sata1") to its canonical upper-case name.
// It reports false for a name no supported board has.
func CanonicalPort(s string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !known[u] {
		return "", false
	}
	return u, true
}

// BusOf is the bus of a port: "sata", "sas", "usb", "ide", "ext" or "nvme"; "" for an unknown port.
func BusOf(port string) string {
	u, ok := CanonicalPort(port)
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimRight(u, "0123456789"))
}

// DefaultMode is the mode of a port whose description does not give one. Internal buses (SATA,
// SAS, IDE, NVMe) and the external eSATA connector (EXT) carry evidence drives on the TaskForce,
// so they default to source; USB ports are where examiners plug target disks, so they default to
// target. Source is the safe side: a source drive is never written.
func DefaultMode(port string) hal.Mode {
	if BusOf(port) == "usb" {
		return hal.ModeTarget
	}
	return hal.ModeSource
}

// Load reads and validates a board description file.
func Load(path string) (Description, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Description{}, fmt.Errorf("board description: %w", err)
	}
	d, err := Parse(b)
	if err != nil {
		return Description{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Parse decodes and validates a board description. Unknown JSON fields are rejected (a typo in a
// field name would otherwise silently fall back to a default). Port names come back canonical
// (upper case), modes lower case with defaults filled in, drive sector sizes filled in.
func Parse(b []byte) (Description, error) {
	var d Description
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Description{}, fmt.Errorf("board description: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Description{}, errors.New("board description: trailing data after the JSON object")
	}
	if err := d.normalize(); err != nil {
		return Description{}, fmt.Errorf("board description: %w", err)
	}
	return d, nil
}

// Validate checks a Description built in code (as Parse does for a file) and fills in defaults.
func (d *Description) Validate() error { return d.normalize() }

func (d *Description) normalize() error {
	switch d.Kind {
	case KindSim, KindLinux:
	case "":
		return errors.New(`kind: missing (accepted: "sim", "linux")`)
	default:
		return fmt.Errorf(`kind: unknown %q (accepted: "sim", "linux")`, d.Kind)
	}
	if d.ApplianceID == "" {
		return errors.New("applianceId: missing")
	}
	if !isWord(d.ApplianceID) || strings.Contains(d.ApplianceID, "_") {
		// The appliance id is a field of the underscore-separated task key.
		return fmt.Errorf("applianceId: %q must be one word of printable characters without '_'", d.ApplianceID)
	}
	if d.IdlePowerOff < 0 || time.Duration(d.IdlePowerOff) > MaxIdlePowerOff {
		return fmt.Errorf("idlePowerOff: %v out of range (0 = never, at most %v)", time.Duration(d.IdlePowerOff), MaxIdlePowerOff)
	}
	if len(d.Ports) == 0 {
		return errors.New("ports: the board has no ports")
	}
	seen := map[string]bool{}
	attach := map[string]string{} // attach point -> port
	for i := range d.Ports {
		p := &d.Ports[i]
		name, ok := CanonicalPort(p.Name)
		if !ok {
			return fmt.Errorf("ports[%d].name: unknown port %q (accepted: SATA1-8, SAS1-8, USB1-4, IDE1, EXT1, NVME1-4)", i, p.Name)
		}
		if seen[name] {
			return fmt.Errorf("ports[%d].name: duplicate port %s", i, name)
		}
		seen[name] = true
		p.Name = name
		if p.Mode == "" {
			p.Mode = string(DefaultMode(name))
		} else {
			m, err := hal.ParseMode(p.Mode)
			if err != nil {
				return fmt.Errorf("ports[%d].mode (%s): %w", i, name, err)
			}
			p.Mode = string(m)
		}
		if err := p.normalizeReal(d.Kind, attach); err != nil {
			return fmt.Errorf("ports[%d] (%s): %w", i, name, err)
		}
		if p.Drive != nil {
			if d.Kind != KindSim {
				return fmt.Errorf("ports[%d].drive (%s): drives can only be described on a %q board", i, name, KindSim)
			}
			if err := p.Drive.normalize(); err != nil {
				return fmt.Errorf("ports[%d].drive (%s): %w", i, name, err)
			}
		}
	}
	return nil
}

// Buses a port may name.
var buses = map[string]bool{"sata": true, "sas": true, "usb": true, "ide": true, "ext": true, "nvme": true}

// normalizeReal checks the fields of a real port: bus, attach point, GPIO lines. Whether the attach
// point and the GPIO chips exist is for the board to check when it starts, naming the port.
func (p *PortDesc) normalizeReal(kind string, attach map[string]string) error {
	if p.Bus == "" {
		p.Bus = BusOf(p.Name)
	} else {
		p.Bus = strings.ToLower(p.Bus)
		if !buses[p.Bus] {
			return fmt.Errorf("bus: unknown %q (accepted: sata, sas, usb, ide, ext, nvme)", p.Bus)
		}
	}
	if kind != KindLinux {
		if p.Attach != "" || p.Power != nil || p.Reset != nil {
			return fmt.Errorf("attach, power and reset describe real ports: only on a %q board", KindLinux)
		}
		return nil
	}
	if p.Attach == "" {
		return errors.New(`attach: missing (the port's udev ID_PATH, e.g. "pci-0000:00:1f.2-ata-1"; "evidenced board discover" lists them)`)
	}
	if err := CheckAttach(p.Attach); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	for a, other := range attach {
		if a == p.Attach || strings.HasPrefix(a, p.Attach+"-") || strings.HasPrefix(p.Attach, a+"-") {
			return fmt.Errorf("attach: %q overlaps port %s's %q (a disk would belong to both)", p.Attach, other, a)
		}
	}
	attach[p.Attach] = p.Name
	for _, l := range []struct {
		what string
		l    *GPIOLine
	}{{"power", p.Power}, {"reset", p.Reset}} {
		if l.l == nil {
			continue
		}
		if l.l.Chip == "" || !isPrintable(l.l.Chip) {
			return fmt.Errorf("%s.chip: missing or not printable (the gpiochip's label)", l.what)
		}
		if l.l.Line < 0 || l.l.Line > 4095 {
			return fmt.Errorf("%s.line: %d out of range", l.what, l.l.Line)
		}
	}
	if p.Power != nil && p.Reset != nil && *p.Power == *p.Reset {
		return errors.New("reset: the same GPIO line as power")
	}
	return nil
}

// CheckAttach accepts an attach point in udev's ID_PATH form: words of letters, digits, '.', ':'
// and '_' separated by single '-'.
func CheckAttach(a string) error {
	if a == "" {
		return errors.New("empty")
	}
	if strings.HasPrefix(a, "-") || strings.HasSuffix(a, "-") || strings.Contains(a, "--") {
		return fmt.Errorf("%q: empty component", a)
	}
	for _, r := range a {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-.:_", r):
		default:
			return fmt.Errorf("%q: character %q is not allowed in an ID_PATH", a, r)
		}
	}
	return nil
}

func (dd *DriveDesc) normalize() error {
	if dd.Path == "" {
		return errors.New("path: missing")
	}
	if !filepath.IsAbs(dd.Path) {
		return fmt.Errorf("path: %q is not absolute", dd.Path)
	}
	if err := CheckModel(dd.Model); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := CheckSerial(dd.Serial); err != nil {
		return fmt.Errorf("serial: %w", err)
	}
	if dd.Firmware != "" && !isPrintable(dd.Firmware) {
		return fmt.Errorf("firmware: %q has non-printable characters", dd.Firmware)
	}
	switch dd.SectorSize {
	case 0:
		dd.SectorSize = DefaultSectorSize
	case 512, 1024, 2048, 4096:
	default:
		return fmt.Errorf("sectorSize: %d (accepted: 512, 1024, 2048, 4096)", dd.SectorSize)
	}
	for j, lba := range dd.BadSectors {
		if lba < 0 {
			return fmt.Errorf("badSectors[%d]: negative LBA %d", j, lba)
		}
	}
	for j, lba := range dd.FreezeAt {
		if lba < 0 {
			return fmt.Errorf("freezeAt[%d]: negative LBA %d", j, lba)
		}
	}
	if dd.FreezeTimes < 0 {
		return fmt.Errorf("freezeTimes: negative (%d)", dd.FreezeTimes)
	}
	if dd.ReadMBps < 0 {
		return fmt.Errorf("readMBps: negative (%g)", dd.ReadMBps)
	}
	if dd.SpinUpMs < 0 {
		return fmt.Errorf("spinUpMs: negative (%d)", dd.SpinUpMs)
	}
	if s := dd.SMART; s != nil {
		for _, v := range []struct {
			name string
			p    *int
		}{{"temperature", s.Temperature}, {"powerOnHours", s.PowerOnHours}, {"reallocated", s.Reallocated}, {"pending", s.Pending}} {
			if v.p != nil && *v.p < 0 {
				return fmt.Errorf("smart.%s: negative (%d)", v.name, *v.p)
			}
		}
	}
	return nil
}

// CheckModel accepts a drive model usable in a `PORT MODEL SERIAL` identifier: non-empty,
// printable, no leading/trailing or doubled spaces (those would not survive splitting into words
// and re-joining), no '_' (the model is a field of the underscore-separated task key), no '+' or
// '%' (the API decodes them in a drive identifier).
func CheckModel(m string) error {
	switch {
	case m == "":
		return errors.New("missing")
	case !isPrintable(m):
		return fmt.Errorf("%q has non-printable characters", m)
	case strings.TrimSpace(m) != m || strings.Contains(m, "  "):
		return fmt.Errorf("%q has leading, trailing or repeated spaces", m)
	case strings.ContainsAny(m, "\t_+%"):
		// '_' separates task-key fields; '+' and '%' are decoded by the API (to a space / an escape).
		return fmt.Errorf("%q contains one of '_', '+', '%%' or a tab", m)
	}
	return nil
}

// CheckSerial accepts a drive serial usable in a `PORT MODEL SERIAL` identifier: one word of
// printable characters without '_', '+' or '%'.
func CheckSerial(s string) error {
	switch {
	case s == "":
		return errors.New("missing")
	case !isWord(s):
		return fmt.Errorf("%q must be one word of printable characters", s)
	case strings.ContainsAny(s, "_+%"):
		return fmt.Errorf("%q contains one of '_', '+', '%%'", s)
	}
	return nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

func isWord(s string) bool {
	if s == "" || !isPrintable(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
