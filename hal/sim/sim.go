// Package sim is a simulated appliance board: ports backed by image files, with fault injection
// (bad sectors, slow reads, hot-unplug) so that the daemon, the imaging engines and the API can be
// developed and tested on any machine, without root and without hardware.
//
// Behaviour mirrors the real board closely enough for the daemon not to care which one it runs on:
// ports start powered off; PowerOn starts identification, which takes the drive's spin-up time;
// then the port is ready (a drive answered) or not-detected. Unplug and PowerOff make every open
// Reader of the drive fail with an error wrapping hal.ErrGone, even one waiting in the read
// throttle, because that is what a yanked cable does to a real read.
//
// Concurrency: one mutex per Board guards all port state; it is never held while sleeping or doing
// file I/O, so a slow reader or subscriber cannot stall the board.
package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
)

// DefaultSpinUp is the identification time when neither Options nor the drive description set one.
const DefaultSpinUp = 1500 * time.Millisecond

// Options tune the simulated board.
type Options struct {
	// SpinUp is how long identification takes after power-on or plug (default 1.5 s; tests use
	// ~50 ms). A drive's spinUpMs in the description overrides it for that drive. Empty ports take
	// this long to report not-detected, as a real port waits for a drive to answer.
	SpinUp time.Duration
	// Logger receives state changes at Debug and anomalies at Warn; nil discards.
	Logger *slog.Logger
	// PlugRoots are the folders whose files Plug (the API's hot-plug) may connect; none means Plug
	// refuses every path. Drives of the description are the operator's own and are not limited.
	PlugRoots []string
}

// Board is a simulated board. It implements hal.Board.
type Board struct {
	roots  []string // resolved PlugRoots
	id     string
	spinUp time.Duration
	log    *slog.Logger

	mu     sync.Mutex
	ports  []*Port
	byName map[string]*Port
	closed bool
	events hal.Fanout
}

var _ hal.Board = (*Board)(nil)

// New builds a simulated board from a description of kind "sim". Every port of the description
// exists, in description order, powered off; the drives it describes are plugged in (their image
// files must exist and be regular files, so a typo in a path fails here and not at first scan).
func New(desc board.Description, opt Options) (*Board, error) {
	if err := desc.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if desc.Kind != board.KindSim {
		return nil, fmt.Errorf("sim: board kind is %q, want %q", desc.Kind, board.KindSim)
	}
	if opt.SpinUp <= 0 {
		opt.SpinUp = DefaultSpinUp
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	roots, err := resolveRoots(opt.PlugRoots)
	if err != nil {
		return nil, err
	}
	b := &Board{
		roots:  roots,
		id:     desc.ApplianceID,
		spinUp: opt.SpinUp,
		log:    opt.Logger.With("board", "sim"),
		byName: map[string]*Port{},
	}
	b.events.Dropped = func(ev hal.Event) {
		b.log.Warn("event dropped for a slow subscriber", "port", ev.Port, "event", ev.Kind)
	}
	for _, pd := range desc.Ports {
		p := &Port{b: b, name: pd.Name, bus: board.BusOf(pd.Name), mode: hal.Mode(pd.Mode), state: hal.StateOff}
		if pd.Drive != nil {
			if err := checkImage(pd.Drive.Path, pd.Drive.SectorSize); err != nil {
				return nil, fmt.Errorf("sim: port %s: drive path: %w", pd.Name, err)
			}
			p.media = newMedia(*pd.Drive)
		}
		b.ports = append(b.ports, p)
		b.byName[p.name] = p
	}
	return b, nil
}

// checkImage accepts an absolute path to an existing regular file or block device holding whole
// sectors (0: the default sector size). A ragged tail is refused rather than dropped: a drive has
// no partial sector, and imaging a file as a drive must not lose its last bytes without a word.
func checkImage(path string, sectorSize int) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not absolute", path)
	}
	size, err := imageSize(path)
	if err != nil {
		return err
	}
	if sectorSize <= 0 {
		sectorSize = board.DefaultSectorSize
	}
	if size%int64(sectorSize) != 0 {
		return fmt.Errorf("%q is %d bytes, not a whole number of %d-byte sectors: a drive holds whole sectors, so its last %d bytes could not be imaged (pad the file, or image it as a file)",
			path, size, sectorSize, size%int64(sectorSize))
	}
	return nil
}

// imageSize is the size of a regular file or block device (whose stat size is 0).
func imageSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	switch {
	case fi.Mode().IsRegular():
		return fi.Size(), nil
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		return f.Seek(0, io.SeekEnd)
	}
	return 0, fmt.Errorf("%q is not a regular file or block device", path)
}

// systemDirs hold kernel and device files (/proc/self/mem, /dev/mem ...) that a plug path reaches only
// when the operator named a root inside them.
var systemDirs = []string{"/proc", "/sys", "/dev"}

func resolveRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("sim: plug root %q: %w", r, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("sim: plug root: %w", err)
		}
		out = append(out, real)
	}
	return out, nil
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// plugPath resolves a hot-plug path (symlinks included) and accepts it only below a plug root and
// outside /proc, /sys and /dev unless that root lies inside them.
func (b *Board) plugPath(path string, sectorSize int) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%q is not absolute", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	for _, root := range b.roots {
		if real == root || !within(real, root) {
			continue
		}
		for _, sys := range systemDirs {
			if within(real, sys) && !within(root, sys) {
				return "", fmt.Errorf("%q resolves to %s, under %s", path, real, sys)
			}
		}
		return real, checkImage(real, sectorSize)
	}
	if len(b.roots) == 0 {
		return "", errors.New("hot-plug is off: no sim root is configured (--sim-root)")
	}
	return "", fmt.Errorf("%q resolves to %s, which is not under a sim root (--sim-root)", path, real)
}

// ApplianceID is the appliance id of the description.
func (b *Board) ApplianceID() string { return b.id }

// Ports lists the ports in description order.
func (b *Board) Ports() []hal.Port {
	out := make([]hal.Port, len(b.ports))
	for i, p := range b.ports {
		out[i] = p
	}
	return out
}

// Port finds a port by name, case-insensitively.
func (b *Board) Port(name string) (hal.Port, bool) {
	p := b.port(name)
	if p == nil {
		return nil, false
	}
	return p, true
}

func (b *Board) port(name string) *Port {
	c, ok := board.CanonicalPort(name)
	if !ok {
		return nil
	}
	return b.byName[c]
}

// Subscribe delivers plug/unplug events until ctx ends or the board is closed; then the channel
// is closed. Each subscriber has its own buffer; when it is full, events for that subscriber are
// dropped (and logged) so that the board never waits for a consumer.
func (b *Board) Subscribe(ctx context.Context) <-chan hal.Event { return b.events.Subscribe(ctx) }

// emit fans an event out. Caller holds b.mu, so that events leave in the order of the changes.
func (b *Board) emit(port string, kind hal.EventKind) { b.events.Emit(port, kind) }

// Close powers every port off (open Readers fail with hal.ErrGone) and ends all subscriptions.
// Closing twice is harmless.
func (b *Board) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for _, p := range b.ports {
		p.powerOffLocked()
	}
	b.events.Close()
	return nil
}

// Plug connects an image file to a port as a drive with the given model and serial (512-byte
// sectors, no faults, unthrottled), as if a drive had been hot-plugged. See PlugDrive.
func (b *Board) Plug(port, path, model, serial string) error {
	return b.PlugDrive(port, board.DriveDesc{Path: path, Model: model, Serial: serial})
}

// PlugDrive connects a drive described in full (bad sectors, throttle, SMART values ...). It emits
// a Plugged event; on a powered port identification starts again and the port becomes ready after
// the spin-up time. Errors: unknown port, the port already has a drive, an invalid description, a
// path that is not absolute, not below one of Options.PlugRoots once symlinks are resolved, or not
// an existing regular file or block device, a closed board.
func (b *Board) PlugDrive(port string, d board.DriveDesc) error {
	if err := validateDrive(&d); err != nil {
		return fmt.Errorf("sim: plug %s: %w", port, err)
	}
	real, err := b.plugPath(d.Path, d.SectorSize)
	if err != nil {
		return fmt.Errorf("sim: plug %s: path: %w", port, err)
	}
	d.Path = real
	p := b.port(port)
	if p == nil {
		return fmt.Errorf("sim: plug: unknown port %q", port)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("sim: plug: board is closed")
	}
	if p.media != nil {
		return fmt.Errorf("sim: plug: port %s already has a drive (%s %s)", p.name, p.media.desc.Model, p.media.desc.Serial)
	}
	p.media = newMedia(d)
	b.log.Debug("drive plugged", "port", p.name, "model", d.Model, "serial", d.Serial)
	b.emit(p.name, hal.Plugged)
	if p.powered {
		p.identifyLocked()
	}
	return nil
}

// validateDrive runs the board file's checks on a drive built in code, filling in defaults.
func validateDrive(d *board.DriveDesc) error {
	desc := board.Description{Kind: board.KindSim, ApplianceID: "X", Ports: []board.PortDesc{{Name: "SATA1", Drive: d}}}
	if err := desc.Validate(); err != nil {
		return err
	}
	return nil
}

// Unplug disconnects the drive of a port: open Readers fail with hal.ErrGone from now on, a
// powered port becomes not-detected at once, and an Unplugged event is emitted. Error when the
// port is unknown or has no drive.
func (b *Board) Unplug(port string) error {
	p := b.port(port)
	if p == nil {
		return fmt.Errorf("sim: unplug: unknown port %q", port)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.media == nil {
		return fmt.Errorf("sim: unplug: no drive on port %s", p.name)
	}
	p.media = nil
	p.dropDriveLocked()
	if p.powered {
		p.gen++ // a pending identification must not resurrect the drive
		p.setStateLocked(hal.StateNotDetected)
	}
	b.log.Debug("drive unplugged", "port", p.name)
	b.emit(p.name, hal.Unplugged)
	return nil
}

// Port is one simulated port. It implements hal.Port.
type Port struct {
	b    *Board
	name string
	bus  string

	// guarded by b.mu
	mode    hal.Mode
	powered bool
	state   hal.PortState
	media   *media // what is physically plugged in, whether identified or not
	drive   *Drive // the identified drive; non-nil only in StateReady
	gen     int    // bumped on every power/plug change so stale identification timers do nothing
	timer   *time.Timer

	changed hal.Signal // notified by setStateLocked
}

var _ hal.Port = (*Port)(nil)

// Name is the canonical port name (SATA1, USB4, ...).
func (p *Port) Name() string { return p.name }

// Bus is sata, sas, usb, ide, ext or nvme.
func (p *Port) Bus() string { return p.bus }

// Mode is the port's Source switch.
func (p *Port) Mode() hal.Mode {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.mode
}

// SetMode flips the Source switch. It does not check whether the port is busy: the daemon owns
// that decision. Readers are read-only in either mode, so a flip never exposes a drive to writes.
func (p *Port) SetMode(m hal.Mode) error {
	m, err := hal.ParseMode(string(m))
	if err != nil {
		return err
	}
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	p.mode = m
	return nil
}

// Powered says whether the port is powered.
func (p *Port) Powered() bool {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.powered
}

// State is off, identifying, ready or not-detected.
func (p *Port) State() hal.PortState {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.state
}

// Changed is closed at the port's next state change (see hal.Port).
func (p *Port) Changed() <-chan struct{} { return p.changed.Changed() }

// setStateLocked moves the port to state s (its drive already set or dropped) and wakes the
// waiters on Changed. Every state change goes through here.
func (p *Port) setStateLocked(s hal.PortState) {
	p.state = s
	p.changed.Notify()
}

// Drive is the identified drive, nil unless the port is ready.
func (p *Port) Drive() hal.Drive {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	if p.drive == nil {
		return nil // not a typed nil inside the interface
	}
	return p.drive
}

// PowerOn powers the port and starts identification in the background; it returns at once.
// Powering an already powered port does nothing (identification is not restarted), so the daemon
// can call it on every scan. ctx is only checked on entry: identification outlives the call.
func (p *Port) PowerOn(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	if p.b.closed {
		return errors.New("sim: board is closed")
	}
	if p.powered {
		return nil
	}
	p.powered = true
	p.b.log.Debug("port powered on", "port", p.name)
	p.identifyLocked()
	return nil
}

// PowerOff cuts power: the port is off, its drive (if any) stays plugged but is no longer
// identified, and open Readers fail with hal.ErrGone.
func (p *Port) PowerOff() error {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	p.powerOffLocked()
	return nil
}

func (p *Port) powerOffLocked() {
	if !p.powered {
		return
	}
	p.powered = false
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.dropDriveLocked()
	p.setStateLocked(hal.StateOff)
	p.b.log.Debug("port powered off", "port", p.name)
}

// dropDriveLocked forgets the identified drive and fails its Readers.
func (p *Port) dropDriveLocked() {
	if p.drive != nil {
		p.drive.markGone()
		p.drive = nil
	}
}

// identifyLocked (re)starts identification: identifying now, ready or not-detected after the
// spin-up time.
func (p *Port) identifyLocked() {
	p.dropDriveLocked()
	p.gen++
	gen := p.gen
	p.setStateLocked(hal.StateIdentifying)
	if p.timer != nil {
		p.timer.Stop()
	}
	d := p.b.spinUp
	if p.media != nil && p.media.desc.SpinUpMs > 0 {
		d = time.Duration(p.media.desc.SpinUpMs) * time.Millisecond
	}
	p.timer = time.AfterFunc(d, func() {
		p.b.mu.Lock()
		defer p.b.mu.Unlock()
		if p.gen != gen || !p.powered {
			return // superseded by a power or plug change
		}
		p.timer = nil
		p.finishIdentifyLocked()
	})
}

func (p *Port) finishIdentifyLocked() {
	m := p.media
	if m == nil {
		p.setStateLocked(hal.StateNotDetected)
		p.b.log.Debug("port identified", "port", p.name, "state", p.state)
		return
	}
	// Stat under the lock: one metadata call, and it keeps the state transition atomic.
	size, err := imageSize(m.desc.Path)
	if err != nil {
		// The image vanished since plugging: to the port this is a drive that does not answer.
		p.setStateLocked(hal.StateNotDetected)
		p.b.log.Warn("drive image unusable, port reports not-detected", "port", p.name, "path", m.desc.Path, "err", err)
		return
	}
	ss := int64(m.desc.SectorSize)
	if size%ss != 0 {
		// Checked whole at plug time; the file grew or shrank since. Not silently: say what is lost.
		p.b.log.Warn("drive image is not a whole number of sectors; its ragged tail is not addressable", "port", p.name, "path", m.desc.Path, "size", size, "dropped", size%ss)
	}
	p.drive = &Drive{
		port:  p.name,
		media: m,
		id: hal.Identity{
			Model:      m.desc.Model,
			Serial:     m.desc.Serial,
			Firmware:   m.desc.Firmware,
			Size:       size / ss * ss, // a drive holds whole sectors; a ragged tail is not addressable
			SectorSize: m.desc.SectorSize,
			Bus:        p.bus,
		},
		gone: make(chan struct{}),
	}
	p.setStateLocked(hal.StateReady)
	p.b.log.Debug("port identified", "port", p.name, "state", p.state, "model", m.desc.Model, "serial", m.desc.Serial)
}

// media is a physically plugged drive: its description and its read throttle. It survives power
// cycles (the throttle is the drive's, not the connection's).
type media struct {
	desc     board.DriveDesc
	bad      []int64 // sorted, distinct
	throttle *bucket // nil = unthrottled

	mu      sync.Mutex
	freezes map[int64]int // LBA -> freezes left; survives power cycles, as the fault is the drive's
}

// freezeIn reports whether a read of sectors [first, last] freezes the drive, using up one freeze.
func (m *media) freezeIn(first, last int64) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for lba, left := range m.freezes {
		if lba >= first && lba <= last && left > 0 {
			m.freezes[lba] = left - 1
			return lba, true
		}
	}
	return 0, false
}

func newMedia(d board.DriveDesc) *media {
	if d.SectorSize == 0 {
		d.SectorSize = board.DefaultSectorSize
	}
	bad := append([]int64(nil), d.BadSectors...)
	sort.Slice(bad, func(i, j int) bool { return bad[i] < bad[j] })
	out := bad[:0]
	for i, v := range bad {
		if i == 0 || v != bad[i-1] {
			out = append(out, v)
		}
	}
	m := &media{desc: d, bad: out}
	if len(d.FreezeAt) > 0 {
		times := max(d.FreezeTimes, 1)
		m.freezes = map[int64]int{}
		for _, lba := range d.FreezeAt {
			m.freezes[lba] = times
		}
	}
	if d.ReadMBps > 0 {
		m.throttle = newBucket(d.ReadMBps * 1e6)
	}
	return m
}

// Drive is an identified drive. It implements hal.Drive. A Drive belongs to one identification:
// after unplug or power-off it stays gone, and a later identification yields a new Drive.
type Drive struct {
	port     string
	media    *media
	id       hal.Identity
	gone     chan struct{}
	goneOnce sync.Once
}

var _ hal.Drive = (*Drive)(nil)

func (d *Drive) markGone() { d.goneOnce.Do(func() { close(d.gone) }) }

func (d *Drive) isGone() bool {
	select {
	case <-d.gone:
		return true
	default:
		return false
	}
}

func (d *Drive) errGone() error { return fmt.Errorf("sim: %s: %w", d.port, hal.ErrGone) }

// Identity is what identification found.
func (d *Drive) Identity() hal.Identity { return d.id }

// Reset is the SCSI device reset of a simulated drive: it does not unfreeze a frozen drive (only a
// power cycle does), which is the case the recovery has to handle.
func (d *Drive) Reset() error {
	if d.isGone() {
		return d.errGone()
	}
	return nil
}

// Open opens the image file read-only (O_RDONLY). Write-blocking is structural: the file
// descriptor cannot write and the returned Reader has no write method, so nothing reachable
// through this package can modify the image.
func (d *Drive) Open() (hal.Reader, error) {
	if d.isGone() {
		return nil, d.errGone()
	}
	f, err := os.OpenFile(d.media.desc.Path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("sim: %s: open drive: %w", d.port, err)
	}
	return &Reader{d: d, f: f, closed: make(chan struct{})}, nil
}

// Health reports the description's SMART values, with plausible defaults: supported, 34 °C, power-on
// hours derived from the serial, no reallocated sectors, and as many pending sectors as the drive
// has bad sectors (which is what a real drive reports after failing to read them). The overall
// verdict passes unless the description says otherwise.
func (d *Drive) Health(ctx context.Context) (hal.Health, error) {
	if err := ctx.Err(); err != nil {
		return hal.Health{}, err
	}
	if d.isGone() {
		return hal.Health{}, d.errGone()
	}
	h := fnv.New32a()
	h.Write([]byte(d.id.Serial))
	hv := hal.Health{
		Supported:      true,
		Passed:         true,
		TemperatureC:   34,
		PowerOnHours:   500 + int(h.Sum32()%20000),
		PendingSectors: len(d.media.bad),
	}
	if s := d.media.desc.SMART; s != nil {
		if s.Supported != nil {
			hv.Supported = *s.Supported
		}
		if s.Passed != nil {
			hv.Passed = *s.Passed
		}
		if s.Temperature != nil {
			hv.TemperatureC = *s.Temperature
		}
		if s.PowerOnHours != nil {
			hv.PowerOnHours = *s.PowerOnHours
		}
		if s.Reallocated != nil {
			hv.Reallocated = *s.Reallocated
		}
		if s.Pending != nil {
			hv.PendingSectors = *s.Pending
		}
	}
	if !hv.Supported {
		return hal.Health{Supported: false}, nil
	}
	hv.Attributes = map[string]string{
		"5 Reallocated_Sector_Ct":    strconv.Itoa(hv.Reallocated),
		"9 Power_On_Hours":           strconv.Itoa(hv.PowerOnHours),
		"194 Temperature_Celsius":    strconv.Itoa(hv.TemperatureC),
		"197 Current_Pending_Sector": strconv.Itoa(hv.PendingSectors),
		"198 Offline_Uncorrectable":  strconv.Itoa(len(d.media.bad)),
	}
	hv.SMART = simSMART(hv, len(d.media.bad))
	return hv, nil
}

// simSMART is the attribute table of a simulated drive: normalized values fall with the counts
// they stand for, and a drive whose description fails its verdict has its reallocated-sector
// attribute at its threshold, as a real drive's would be.
func simSMART(hv hal.Health, bad int) []hal.SMARTAttribute {
	realloc := max(1, 100-min(99, hv.Reallocated))
	if !hv.Passed {
		realloc = 36
	}
	return []hal.SMARTAttribute{
		{ID: 5, Name: "Reallocated_Sector_Ct", Value: realloc, Worst: realloc, Threshold: 36, Raw: strconv.Itoa(hv.Reallocated), PreFail: true},
		{ID: 9, Name: "Power_On_Hours", Value: max(1, 100-hv.PowerOnHours/1000), Worst: max(1, 100-hv.PowerOnHours/1000), Raw: strconv.Itoa(hv.PowerOnHours)},
		{ID: 194, Name: "Temperature_Celsius", Value: max(1, 100-hv.TemperatureC), Worst: max(1, 100-hv.TemperatureC-10), Raw: strconv.Itoa(hv.TemperatureC)},
		{ID: 197, Name: "Current_Pending_Sector", Value: max(1, 100-min(99, hv.PendingSectors)), Worst: max(1, 100-min(99, hv.PendingSectors)), Raw: strconv.Itoa(hv.PendingSectors)},
		{ID: 198, Name: "Offline_Uncorrectable", Value: max(1, 100-min(99, bad)), Worst: max(1, 100-min(99, bad)), Raw: strconv.Itoa(bad)},
	}
}

// Reader reads a simulated drive. It implements hal.Reader and deliberately nothing that writes.
//
// ReadAt contract:
//   - off beyond the drive: 0, io.EOF; a range crossing the end is cut short with io.EOF.
//   - a range touching a bad sector: n = the bytes before the first bad sector in the range
//     (0 if the range starts inside it), err = *hal.MediaError{LBA: first bad sector, Count: 1}.
//     The caller retries past the bad sector at its own granularity, as with a real drive.
//   - after Unplug/PowerOff of the port: an error wrapping hal.ErrGone, also for a read waiting in
//     the throttle (it wakes up at once).
//   - after Close: an error wrapping os.ErrClosed.
type Reader struct {
	d       *Drive
	f       *os.File
	closed  chan struct{}
	closeMu sync.Once
}

var _ hal.Reader = (*Reader)(nil)

// Size is the drive size in bytes.
func (r *Reader) Size() int64 { return r.d.id.Size }

// SectorSize is the logical sector size.
func (r *Reader) SectorSize() int { return r.d.id.SectorSize }

// Close releases the file; a read waiting in the throttle returns.
func (r *Reader) Close() error {
	err := os.ErrClosed
	r.closeMu.Do(func() {
		close(r.closed)
		err = r.f.Close()
	})
	return err
}

// ReadAt reads len(p) bytes at off; see the type's comment for the error contract.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	select {
	case <-r.closed:
		return 0, fmt.Errorf("sim: %s: read: %w", r.d.port, os.ErrClosed)
	default:
	}
	if r.d.isGone() {
		return 0, r.d.errGone()
	}
	if off < 0 {
		return 0, fmt.Errorf("sim: %s: read at negative offset %d", r.d.port, off)
	}
	size := r.d.id.Size
	if off >= size {
		return 0, io.EOF
	}
	want := p
	var tailErr error
	if rem := size - off; int64(len(want)) > rem {
		want = want[:rem]
		tailErr = io.EOF
	}
	if len(want) == 0 {
		return 0, nil
	}
	// Cut the read short at the first bad sector of the range.
	ss := int64(r.d.id.SectorSize)
	var mediaErr error
	first, last := off/ss, (off+int64(len(want))-1)/ss
	if lba, ok := firstBad(r.d.media.bad, first, last); ok {
		want = want[:max(0, lba*ss-off)]
		mediaErr = &hal.MediaError{LBA: lba, Count: 1}
		tailErr = nil
	}
	if len(want) > 0 {
		if _, frozen := r.d.media.freezeIn(first, (off+int64(len(want))-1)/ss); frozen {
			// The drive stops answering: nothing comes back until its power goes.
			select {
			case <-r.d.gone:
				return 0, r.d.errGone()
			case <-r.closed:
				return 0, fmt.Errorf("sim: %s: read: %w", r.d.port, os.ErrClosed)
			}
		}
	}
	if t := r.d.media.throttle; t != nil && len(want) > 0 {
		if err := r.wait(t.reserve(len(want))); err != nil {
			return 0, err
		}
	}
	n := 0
	if len(want) > 0 {
		var err error
		n, err = r.f.ReadAt(want, off)
		if err != nil && !errors.Is(err, io.EOF) {
			// A short pread means the image shrank under us; a read error, the host's problem.
			// Both look like a drive that stopped answering.
			return n, fmt.Errorf("sim: %s: read image: %w", r.d.port, err)
		}
		if n < len(want) {
			return n, fmt.Errorf("sim: %s: image shrank below the drive size: %w", r.d.port, io.ErrUnexpectedEOF)
		}
	}
	if r.d.isGone() {
		// The cable came out during the read: the data may be fine, but a real drive would not
		// have delivered it.
		return 0, r.d.errGone()
	}
	if mediaErr != nil {
		return n, mediaErr
	}
	return n, tailErr
}

// wait sleeps until the throttle allows the read, waking early on unplug or Close.
func (r *Reader) wait(until time.Time) error {
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.d.gone:
		return r.d.errGone()
	case <-r.closed:
		return fmt.Errorf("sim: %s: read: %w", r.d.port, os.ErrClosed)
	}
}

// firstBad is the smallest bad LBA in [first, last].
func firstBad(bad []int64, first, last int64) (int64, bool) {
	i := sort.Search(len(bad), func(i int) bool { return bad[i] >= first })
	if i < len(bad) && bad[i] <= last {
		return bad[i], true
	}
	return 0, false
}

// bucket is a token bucket expressed as a virtual schedule: every read reserves its bytes'
// transfer time after the previous reservations, and waits for its slot. A burst allowance
// lets small reads through without a timer each, without letting the average exceed the rate.
type bucket struct {
	mu    sync.Mutex
	rate  float64       // bytes per second
	burst time.Duration // credit an idle drive may accumulate
	tat   time.Time     // when the already reserved bytes will have been "transferred"
}

func newBucket(bytesPerSec float64) *bucket {
	return &bucket{rate: bytesPerSec, burst: 20 * time.Millisecond}
}

// reserve books n bytes and returns when the read may proceed.
func (t *bucket) reserve(n int) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.tat.Before(now) {
		t.tat = now
	}
	t.tat = t.tat.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	return t.tat.Add(-t.burst)
}
