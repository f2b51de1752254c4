package linux

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
)

// Options tune the real board. Zero values are the appliance's defaults.
type Options struct {
	// SysRoot is where sysfs is mounted (default /sys); DevRoot holds the device nodes (default /dev).
	SysRoot, DevRoot string
	// Source is the uevent source: "kernel" (raw kernel uevents: initramfs, containers, no udevd)
	// or "udev" (events after udevd's rules ran). Empty: "udev" when udevd runs, else "kernel".
	Source string
	// Settle is how long a port's power has to be on before the kernel is asked to look for the
	// drive (spin-up and link; default 2 s).
	Settle time.Duration
	// IdentifyTimeout is how long a powered port waits for a drive before it says not-detected
	// (default 15 s).
	IdentifyTimeout time.Duration
	// DeleteWait bounds how long power off waits for the kernel to let go of the disk before the
	// power line goes inactive anyway (default 5 s): a frozen drive holds its outstanding
	// commands, and the kernel's delete waits for them; cutting the power is what ends them.
	DeleteWait time.Duration
	Logger     *slog.Logger
}

// Board is the appliance's real board. It implements hal.Board.
type Board struct {
	id  string
	opt Options
	sys fs.FS
	log *slog.Logger

	mu     sync.Mutex
	ports  []*Port
	byName map[string]*Port
	closed bool

	events hal.Fanout

	stop    context.CancelFunc
	watched chan struct{} // closed when the event loop ended
}

var _ hal.Board = (*Board)(nil)

// New starts a board of kind "linux": it checks every port's attach point and GPIO chips (an error
// names the port), starts listening to uevents, then looks at the disks already there. Ports with a
// power line start powered off; ports without one are always powered.
func New(desc board.Description, opt Options) (*Board, error) {
	if err := desc.Validate(); err != nil {
		return nil, fmt.Errorf("linux board: %w", err)
	}
	if desc.Kind != board.KindLinux {
		return nil, fmt.Errorf("linux board: board kind is %q, want %q", desc.Kind, board.KindLinux)
	}
	if opt.SysRoot == "" {
		opt.SysRoot = "/sys"
	}
	if opt.DevRoot == "" {
		opt.DevRoot = "/dev"
	}
	if opt.Settle <= 0 {
		opt.Settle = 2 * time.Second
	}
	if opt.IdentifyTimeout <= 0 {
		opt.IdentifyTimeout = 15 * time.Second
	}
	if opt.DeleteWait <= 0 {
		opt.DeleteWait = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Source == "" {
		opt.Source = "kernel"
		if _, err := os.Stat("/run/udev/control"); err == nil {
			opt.Source = "udev"
		}
	}
	b := &Board{
		id:     desc.ApplianceID,
		opt:    opt,
		sys:    os.DirFS(opt.SysRoot),
		log:    opt.Logger.With("board", "linux"),
		byName: map[string]*Port{},
	}
	b.events.Dropped = func(ev hal.Event) {
		b.log.Warn("event dropped for a slow subscriber", "port", ev.Port, "event", ev.Kind)
	}
	for _, pd := range desc.Ports {
		p := &Port{b: b, name: pd.Name, bus: pd.Bus, attach: pd.Attach, mode: hal.Mode(pd.Mode), powered: true}
		if err := attachExists(opt.SysRoot, pd.Attach); err != nil {
			return nil, fmt.Errorf("linux board: port %s: %w", pd.Name, err)
		}
		var err error
		if pd.Power != nil {
			if p.power, err = findGPIO(opt.SysRoot, *pd.Power); err != nil {
				return nil, fmt.Errorf("linux board: port %s: power line: %w", pd.Name, err)
			}
			p.powered = false
		}
		if pd.Reset != nil {
			if p.reset, err = findGPIO(opt.SysRoot, *pd.Reset); err != nil {
				return nil, fmt.Errorf("linux board: port %s: reset line: %w", pd.Name, err)
			}
		}
		b.ports = append(b.ports, p)
		b.byName[p.name] = p
	}
	ctx, cancel := context.WithCancel(context.Background())
	events, err := watch(ctx, opt.Source, func(err error) {
		b.log.Error("uevents stopped: hot-plug is no longer seen", "err", err)
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("linux board: %w", err)
	}
	b.stop, b.watched = cancel, make(chan struct{})
	go b.loop(events)
	// Listening before looking: a disk that appears meanwhile is seen twice, never missed.
	disks, err := ListDisks(b.sys)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("linux board: %w", err)
	}
	for _, d := range disks {
		b.disk(d.Name)
	}
	for _, p := range b.ports {
		if p.power != nil {
			if err := p.PowerOff(); err != nil {
				b.Close()
				return nil, fmt.Errorf("linux board: port %s: power off at start: %w", p.name, err)
			}
		}
	}
	return b, nil
}

// loop handles uevents until the watcher ends.
func (b *Board) loop(events <-chan uevent) {
	defer close(b.watched)
	for ev := range events {
		switch ev.action {
		case "remove":
			b.removed(ev.name)
		case "add", "change", "online":
			b.disk(ev.name)
		}
	}
}

// ApplianceID is the appliance id of the board file.
func (b *Board) ApplianceID() string { return b.id }

// Ports lists the ports in board-file order.
func (b *Board) Ports() []hal.Port {
	out := make([]hal.Port, len(b.ports))
	for i, p := range b.ports {
		out[i] = p
	}
	return out
}

// Port finds a port by name, case-insensitively.
func (b *Board) Port(name string) (hal.Port, bool) {
	c, ok := board.CanonicalPort(name)
	if !ok {
		return nil, false
	}
	p, ok := b.byName[c]
	return p, ok
}

// Subscribe delivers plug/unplug events until ctx ends or the board is closed; a subscriber whose
// buffer is full loses events, so the board never waits for a consumer.
func (b *Board) Subscribe(ctx context.Context) <-chan hal.Event { return b.events.Subscribe(ctx) }

// Close stops listening, fails open Readers with hal.ErrGone and ends subscriptions. Port power is
// left as it is: closing the daemon must not cut a drive's power mid-write of another process.
func (b *Board) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, p := range b.ports {
		p.dropLocked()
	}
	b.events.Close()
	stop, watched := b.stop, b.watched
	b.mu.Unlock()
	if stop != nil {
		stop()
		<-watched
	}
	return nil
}

// portFor finds the port an attach path belongs to.
func (b *Board) portFor(a AttachPath) *Port {
	for _, p := range b.ports {
		if a.Matches(p.attach) {
			return p
		}
	}
	return nil
}

// disk looks at a block device that appeared or changed: a partition of a source drive is
// write-blocked; a whole disk on a port is write-blocked first (source ports), then identified.
func (b *Board) disk(name string) {
	d, err := ReadDisk(b.sys, name)
	if err != nil {
		if !isNotExist(err) {
			b.log.Warn("block device unreadable in sysfs", "dev", name, "err", err)
		}
		return
	}
	if d == nil {
		b.partition(name)
		return
	}
	p := b.portFor(d.Attach)
	if p == nil {
		return
	}
	b.mu.Lock()
	p.present = d // known to the port (power-off deletes it) even if it cannot be identified
	b.mu.Unlock()
	devnode := filepath.Join(b.opt.DevRoot, d.Name)
	if !b.applyMode(p, *d, devnode) {
		return
	}
	var id hal.Identity
	var idErr error
	if d.Size > 0 {
		id, idErr = identify(*d, devnode, p.bus)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		p.seenLocked(*d, devnode, id, idErr)
	}
}

// applyMode sets the kernel's read-only flag of a disk that appeared on port p as the port's mode
// wants it, before anything (identification included) opens the disk. False: a source drive
// could not be write-blocked, and must not be identified.
func (b *Board) applyMode(p *Port, d Disk, devnode string) bool {
	switch mode := p.Mode(); {
	case mode == hal.ModeSource && d.Size > 0:
		if err := b.writeBlock(d, true); err != nil {
			b.log.Error("WRITE-BLOCK FAILED: the drive is not identified", "port", p.name, "dev", d.Name, "err", err)
			return false
		}
	case mode == hal.ModeTarget && d.Size > 0 && d.ReadOnly:
		// A target is written to. A fresh disk is writable; a reused device (a loop device
		// a source drive used before) may still carry our flag.
		if err := b.writeBlock(d, false); err != nil {
			b.log.Warn("target drive stays read-only", "port", p.name, "dev", d.Name, "err", err)
		}
	case d.Size == 0 && d.ReadOnly && d.Transport == "loop":
		// A detached loop device is reused by whoever attaches next: the write-block belonged
		// to the image that was attached, not to the device.
		if err := setReadOnly(devnode, false); err != nil {
			b.log.Warn("clear read-only flag of a detached loop device", "dev", d.Name, "err", err)
		}
	}
	return true
}

// seenLocked brings the port up to date with a disk on it just looked at (identified as id, or
// failed with idErr): no medium or no identity forgets the drive it was; another drive replaces
// the old one (unplugged, then plugged); the same one changes nothing. A port that is off only
// remembers the disk: PowerOn identifies it.
func (p *Port) seenLocked(d Disk, devnode string, id hal.Identity, idErr error) {
	switch {
	case d.Size == 0:
		// No medium (an empty card reader, a detached loop device).
		if p.drive != nil && p.drive.disk.Name == d.Name {
			p.unpluggedLocked()
		}
		return
	case idErr != nil:
		p.b.log.Warn("drive not identified", "port", p.name, "dev", d.Name, "err", idErr)
		if p.drive != nil {
			p.unpluggedLocked()
		}
		return
	case p.drive != nil && p.drive.disk.Dev == d.Dev && p.drive.id == id:
		return // a change event about the same drive
	case p.drive != nil:
		p.unpluggedLocked()
	}
	if !p.powered {
		return // seen, but the port is off: PowerOn identifies it
	}
	p.drive = &Drive{port: p, disk: d, devnode: devnode, id: id, gone: make(chan struct{})}
	p.identifying = false
	p.changed.Notify()
	p.b.log.Info("drive plugged", "port", p.name, "dev", d.Name, "model", id.Model, "serial", id.Serial, "size", id.Size)
	p.b.events.Emit(p.name, hal.Plugged)
}

// partition write-blocks a partition of a source port's drive.
func (b *Board) partition(name string) {
	b.mu.Lock()
	var owner *Port
	for _, p := range b.ports {
		if p.drive != nil && p.mode == hal.ModeSource {
			for _, part := range currentPartitions(b.sys, p.drive.disk) {
				if part == name {
					owner = p
				}
			}
		}
	}
	b.mu.Unlock()
	if owner == nil {
		return
	}
	if err := setReadOnly(filepath.Join(b.opt.DevRoot, name), true); err != nil {
		b.log.Error("WRITE-BLOCK FAILED on a partition", "port", owner.name, "dev", name, "err", err)
	}
}

// removed handles a remove event: the drive of that name is gone.
func (b *Board) removed(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.ports {
		if p.drive != nil && p.drive.disk.Name == name {
			p.unpluggedLocked()
		}
		if p.present != nil && p.present.Name == name {
			p.present = nil
		}
	}
}

// writeBlock sets (or clears) the read-only flag of a disk and all its partitions.
func (b *Board) writeBlock(d Disk, ro bool) error {
	if err := setReadOnly(filepath.Join(b.opt.DevRoot, d.Name), ro); err != nil {
		return err
	}
	for _, part := range currentPartitions(b.sys, d) {
		if err := setReadOnly(filepath.Join(b.opt.DevRoot, part), ro); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// currentPartitions re-reads a disk's partitions (they come and go after the disk appeared).
func currentPartitions(sys fs.FS, d Disk) []string {
	if now, err := ReadDisk(sys, d.Name); err == nil && now != nil {
		return now.Partitions
	}
	return d.Partitions
}

// Port is one real port. It implements hal.Port.
type Port struct {
	b      *Board
	name   string
	bus    string
	attach string
	power  *gpioLine // nil: always powered
	reset  *gpioLine

	// guarded by b.mu
	mode        hal.Mode
	powered     bool
	identifying bool
	present     *Disk  // the disk the kernel shows on this port, identified or not
	drive       *Drive // the identified drive
	gen         int

	// changed is notified whenever powered, identifying or drive change (State and Drive derive
	// from them), under b.mu.
	changed hal.Signal
}

var _ hal.Port = (*Port)(nil)

func (p *Port) Name() string { return p.name }
func (p *Port) Bus() string  { return p.bus }

func (p *Port) Mode() hal.Mode {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.mode
}

// SetMode flips the Source switch and applies it to the drive now: switching to source
// write-blocks the disk and its partitions in the kernel, switching to target lifts the block.
func (p *Port) SetMode(m hal.Mode) error {
	m, err := hal.ParseMode(string(m))
	if err != nil {
		return err
	}
	p.b.mu.Lock()
	p.mode = m
	var d *Disk
	if p.drive != nil {
		dd := p.drive.disk
		d = &dd
	}
	p.b.mu.Unlock()
	if d != nil {
		if err := p.b.writeBlock(*d, m == hal.ModeSource); err != nil {
			return fmt.Errorf("port %s: mode %s: %w", p.name, m, err)
		}
	}
	return nil
}

// PowerSwitched says whether PowerOff really cuts the drive's power: a power line, or a USB
// connector whose device can be deauthorized. Other ports only forget their drive when "off".
func (p *Port) PowerSwitched() bool {
	return p.power != nil || (p.bus == "usb" && strings.Contains(p.attach, "-usb-0:"))
}

func (p *Port) Powered() bool {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.powered
}

func (p *Port) State() hal.PortState {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	switch {
	case !p.powered:
		return hal.StateOff
	case p.drive != nil:
		return hal.StateReady
	case p.identifying:
		return hal.StateIdentifying
	}
	return hal.StateNotDetected
}

// Changed is closed at the port's next state change (see hal.Port).
func (p *Port) Changed() <-chan struct{} { return p.changed.Changed() }

func (p *Port) Drive() hal.Drive {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	if p.drive == nil {
		return nil
	}
	return p.drive
}

// PowerOn powers the port and starts identification; it returns at once. With a power line: line
// on, wait Settle, ask the kernel to rescan, wait for the disk up to IdentifyTimeout. Without one
// the port is always powered: PowerOn looks at the disk the kernel shows now.
func (p *Port) PowerOn(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.b.mu.Lock()
	if p.b.closed {
		p.b.mu.Unlock()
		return errors.New("linux board: closed")
	}
	if p.powered && (p.drive != nil || p.identifying) {
		p.b.mu.Unlock()
		return nil
	}
	p.powered = true
	p.identifying = true
	p.gen++
	gen := p.gen
	p.changed.Notify()
	p.b.mu.Unlock()
	if p.power != nil {
		if err := p.power.set(true); err != nil {
			p.b.mu.Lock()
			p.powered, p.identifying = false, false
			p.changed.Notify()
			p.b.mu.Unlock()
			return fmt.Errorf("port %s: power on: %w", p.name, err)
		}
		p.b.log.Info("port powered on", "port", p.name)
	} else if p.bus == "usb" {
		// The connector's device was deauthorized by PowerOff: let the kernel bind it again.
		if err := usbAuthorize(p.b.opt.SysRoot, p.attach, true); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.b.log.Warn("USB authorize on power on", "port", p.name, "err", err)
		}
	}
	go p.identifyAfterPower(gen)
	return nil
}

func (p *Port) identifyAfterPower(gen int) {
	if p.power != nil {
		time.Sleep(p.b.opt.Settle)
		if err := rescanFor(p.b.opt.SysRoot, p.attach); err != nil {
			p.b.log.Warn("rescan after power on", "port", p.name, "err", err)
		}
	}
	deadline := time.Now().Add(p.b.opt.IdentifyTimeout)
	for {
		// Look for the disk ourselves too: the uevent may have come while the port was off.
		if disks, err := ListDisks(p.b.sys); err == nil {
			for _, d := range disks {
				if d.Attach.Matches(p.attach) {
					p.b.disk(d.Name)
				}
			}
		}
		p.b.mu.Lock()
		stale := p.gen != gen || !p.powered
		done := p.drive != nil || time.Now().After(deadline)
		if !stale && done {
			p.identifying = false
			p.changed.Notify()
		}
		p.b.mu.Unlock()
		if stale || done || p.power == nil {
			if p.power == nil {
				p.b.mu.Lock()
				if p.gen == gen {
					p.identifying = false
					p.changed.Notify()
				}
				p.b.mu.Unlock()
			}
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// PowerOff: the disk is deleted from the kernel first (the SCSI midlayer flushes and lets go
// cleanly), then the power line goes inactive. Open Readers fail with hal.ErrGone. A USB port
// without a power line deauthorizes the device on its connector; other ports without one are only
// marked off: their drive is forgotten until PowerOn.
func (p *Port) PowerOff() error {
	p.b.mu.Lock()
	p.gen++
	var present *Disk
	if p.present != nil && p.present.Size > 0 {
		d := *p.present
		present = &d
	}
	p.dropLocked()
	p.powered, p.identifying = false, false
	p.changed.Notify()
	p.b.mu.Unlock()
	if p.power == nil {
		if p.bus == "usb" && strings.Contains(p.attach, "-usb-0:") {
			// No power line: deauthorizing the device makes the kernel let go of the drive.
			if err := usbAuthorize(p.b.opt.SysRoot, p.attach, false); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("port %s: power off: %w", p.name, err)
			}
		}
		return nil
	}
	if present != nil {
		if err := p.deleteBounded(*present); err != nil {
			return fmt.Errorf("port %s: power off: delete %s: %w", p.name, present.Name, err)
		}
	}
	if err := p.power.set(false); err != nil {
		return fmt.Errorf("port %s: power off: %w", p.name, err)
	}
	p.b.log.Info("port powered off", "port", p.name)
	return nil
}

// deleteBounded deletes the disk from the kernel, waiting at most DeleteWait: the delete of a
// frozen drive waits for commands only the power cut ends, so past that the power goes anyway and
// the delete finishes by itself once the drive is gone.
func (p *Port) deleteBounded(d Disk) error {
	done := make(chan error, 1)
	go func() { done <- deleteDisk(p.b.opt.SysRoot, d) }()
	select {
	case err := <-done:
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	case <-time.After(p.b.opt.DeleteWait):
		p.b.log.Warn("the kernel still holds the disk (a frozen drive): cutting the power anyway", "port", p.name, "dev", d.Name, "waited", p.b.opt.DeleteWait)
		go func() {
			if err := <-done; err != nil && !errors.Is(err, os.ErrNotExist) {
				p.b.log.Warn("delete of a frozen disk", "port", p.name, "dev", d.Name, "err", err)
			}
		}()
		return nil
	}
}

// dropLocked forgets the drive (Readers fail with ErrGone) without an event: the port was
// switched off, nothing was pulled out.
func (p *Port) dropLocked() {
	if p.drive != nil {
		p.drive.markGone()
		p.drive = nil
		p.changed.Notify()
	}
}

// unpluggedLocked: the drive went away by itself.
func (p *Port) unpluggedLocked() {
	p.dropLocked()
	p.b.log.Info("drive unplugged", "port", p.name)
	p.b.events.Emit(p.name, hal.Unplugged)
}
