package linux

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/directio"
)

// identify names a disk: sysfs first (no I/O to the drive), then the drive itself through SG_IO
// for what sysfs lacks. On SATA the drive's own IDENTIFY is preferred: libata's SCSI model field
// keeps only 16 of the 40 model characters. The device is opened read-only and non-blocking:
// on a source port it is already write-blocked.
func identify(d Disk, devnode, bus string) (hal.Identity, error) {
	id := hal.Identity{
		Model:      strings.TrimSpace(strings.TrimPrefix(d.Vendor+" "+d.Model, "ATA ")),
		Serial:     d.Serial,
		Firmware:   d.Firmware,
		Size:       d.Size,
		SectorSize: d.Logical,
		Bus:        bus,
	}
	if d.Vendor == "" || strings.EqualFold(d.Vendor, "ATA") {
		id.Model = d.Model
	}
	if d.Transport == "scsi" || d.Transport == "sas" || d.Transport == "usb" || d.Transport == "ata" || d.Transport == "nvme" {
		askDrive(&id, d, devnode)
	}
	if err := board.CheckModel(id.Model); err != nil {
		return id, fmt.Errorf("%s: model: %w", d.Name, err)
	}
	if err := board.CheckSerial(id.Serial); err != nil {
		return id, fmt.Errorf("%s: serial: %w", d.Name, err)
	}
	return id, nil
}

// askDrive fills identity fields from the drive's own answers. Failures leave sysfs's values.
func askDrive(id *hal.Identity, d Disk, devnode string) {
	f, err := os.OpenFile(devnode, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if d.Transport == "nvme" {
		if id.Serial != "" && id.Model != "" {
			return
		}
		if b, err := nvmeIdentify(f, 1, 0); err == nil {
			if c, err := ParseNVMeIdentifyController(b); err == nil {
				id.Model, id.Serial, id.Firmware = c.Model, c.Serial, c.Firmware
			}
		}
		return
	}
	// ATA behind libata or a SAT-capable bridge (USB, SAS with STP).
	if a, err := ataIdentify(f); err == nil {
		id.Model, id.Serial, id.Firmware = a.Model, a.Serial, a.Firmware
		if a.HPASupported {
			if n, err := ataNativeMax(f); err == nil && n > a.Sectors {
				id.NativeSize = n * int64(a.Logical)
			}
		}
		return
	}
	// Behind a USB bridge sysfs may only know the bridge's own iSerial (usb-storage skips VPD
	// pages): the drive's unit serial number, when it answers VPD 0x80, is the one that names it.
	if id.Serial != "" && id.Model != "" && d.Transport != "usb" {
		return
	}
	if inq, serial, err := scsiInquiry(f); err == nil {
		id.Model = strings.TrimSpace(inq.Vendor + " " + inq.Product)
		id.Firmware = inq.Revision
		if serial != "" {
			id.Serial = serial
		}
	}
}

// Drive is an identified drive. It implements hal.Drive. After unplug or power-off it stays gone;
// a later identification yields a new Drive.
type Drive struct {
	port     *Port
	disk     Disk
	devnode  string
	id       hal.Identity
	gone     chan struct{}
	goneOnce sync.Once
}

var (
	_ hal.Drive    = (*Drive)(nil)
	_ hal.Resetter = (*Drive)(nil)
)

func (d *Drive) markGone() { d.goneOnce.Do(func() { close(d.gone) }) }

func (d *Drive) isGone() bool {
	select {
	case <-d.gone:
		return true
	default:
		return false
	}
}

func (d *Drive) errGone() error {
	return fmt.Errorf("%s (%s): %w", d.port.name, d.disk.Name, hal.ErrGone)
}

func (d *Drive) Identity() hal.Identity { return d.id }

// Open opens the drive O_RDONLY|O_DIRECT. On a source port the kernel's read-only flag is checked
// (BLKROGET) on the descriptor itself, and set again if something cleared it, before the handle is
// returned: no read happens on a drive that is not write-blocked.
func (d *Drive) Open() (hal.Reader, error) {
	if d.isGone() {
		return nil, d.errGone()
	}
	f, err := os.OpenFile(d.devnode, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: open %s: %w", d.port.name, d.devnode, err)
	}
	if d.port.Mode() == hal.ModeSource {
		ro, err := readOnly(f)
		if err == nil && !ro {
			d.port.b.log.Warn("write-block was lifted behind our back: setting it again", "port", d.port.name, "dev", d.disk.Name)
			if err = d.port.b.writeBlock(d.disk, true); err == nil {
				ro, err = readOnly(f)
			}
		}
		if err != nil || !ro {
			f.Close()
			return nil, fmt.Errorf("%s: %s is not write-blocked (BLKROGET: %v): refusing to read it: %w", d.port.name, d.disk.Name, err, hal.ErrWriteBlocked)
		}
	}
	return &Reader{d: d, f: f, ss: d.id.SectorSize}, nil
}

// Reset sends a SCSI device reset (SG_SCSI_RESET) to a SCSI, SATA (libata), SAS or USB drive and,
// when the port has a reset line, pulses it: the first step of unfreezing a drive.
func (d *Drive) Reset() error {
	if d.isGone() {
		return d.errGone()
	}
	var err error
	switch d.disk.Transport {
	case "ata", "sas", "usb", "scsi":
		err = scsiReset(d.devnode)
	default:
		err = fmt.Errorf("%s: device reset of a %s drive: %w", d.port.name, d.disk.Transport, errNotSupported)
	}
	if l := d.port.reset; l != nil {
		if perr := l.pulse(resetPulse); perr != nil {
			return errors.Join(err, fmt.Errorf("%s: reset line: %w", d.port.name, perr))
		}
		return nil // the line reset the drive whatever the SCSI layer said
	}
	return err
}

// resetPulse is how long a port's reset line is held active.
const resetPulse = 100 * time.Millisecond

// Reader reads a drive with direct I/O. It implements hal.Reader.
//
// ReadAt takes any offset and length: aligned requests into aligned buffers go straight to the
// drive, others through an aligned bounce buffer. Errors: past the end io.EOF; a drive that was
// removed (uevent, or ENODEV/ENXIO from the kernel) an error wrapping hal.ErrGone; EIO a
// *hal.MediaError at the first sector of the request (the caller narrows it down).
type Reader struct {
	d  *Drive
	f  *os.File
	ss int

	// Aligned bounce buffers (*[]byte of maxBounce bytes), one per read in flight: readers of
	// small files read side by side, and one shared buffer under a lock kept one read at a time.
	bounce sync.Pool
}

var _ hal.Reader = (*Reader)(nil)

func (r *Reader) Size() int64     { return r.d.id.Size }
func (r *Reader) SectorSize() int { return r.ss }
func (r *Reader) Close() error    { return r.f.Close() }

const maxBounce = 1 << 20

func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.d.isGone() {
		return 0, r.d.errGone()
	}
	if off < 0 {
		return 0, fmt.Errorf("%s: read at negative offset %d", r.d.port.name, off)
	}
	size := r.d.id.Size
	if off >= size {
		return 0, io.EOF
	}
	var tail error
	if rem := size - off; int64(len(p)) > rem {
		p = p[:rem]
		tail = io.EOF
	}
	ss := int64(r.ss)
	n := 0
	for n < len(p) {
		o := off + int64(n)
		want := p[n:]
		var got int
		var err error
		if o%ss == 0 && int64(len(want))%ss == 0 && directio.Aligned(want) {
			got, err = r.pread(want, o)
		} else {
			got, err = r.readBounced(want, o)
		}
		n += got
		if err != nil {
			return n, err
		}
		if got == 0 {
			return n, io.ErrUnexpectedEOF
		}
	}
	if r.d.isGone() {
		return 0, r.d.errGone() // the drive went away while we read: do not trust the data
	}
	return n, tail
}

// readBounced reads through the aligned bounce buffer: at most maxBounce bytes per call.
func (r *Reader) readBounced(p []byte, off int64) (int, error) {
	ss := int64(r.ss)
	start := off / ss * ss
	end := min(off+int64(len(p)), start+maxBounce)
	end = (end + ss - 1) / ss * ss
	end = min(end, r.d.id.Size)
	bp, _ := r.bounce.Get().(*[]byte)
	if bp == nil {
		b := directio.Buffer(maxBounce)
		bp = &b
	}
	defer r.bounce.Put(bp)
	buf := (*bp)[:end-start]
	got, err := r.pread(buf, start)
	if got < int(off-start) {
		return 0, err
	}
	c := copy(p, buf[off-start:got])
	if err != nil && c < len(p) {
		return c, err
	}
	return c, nil
}

// pread is one read syscall, retried on EINTR, with errors mapped to the hal contract.
func (r *Reader) pread(p []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(int(r.f.Fd()), p, off)
		if err == syscall.EINTR {
			continue
		}
		if err == nil && n > 0 {
			return n, nil
		}
		if err == nil {
			// ReadAt never asks past the identified size, so no bytes means the device shrank under
			// us: a disk being deleted has its capacity set to 0 before its uevent is sent.
			if r.d.isGone() || !r.d.stillThere() {
				r.d.port.b.removedDrive(r.d)
				return 0, r.d.errGone()
			}
			return 0, fmt.Errorf("%s: read %s at %d: the device is now smaller than its identified %d bytes: %w",
				r.d.port.name, r.d.disk.Name, off, r.d.id.Size, io.ErrUnexpectedEOF)
		}
		if r.d.isGone() || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) || !r.d.stillThere() {
			r.d.port.b.removedDrive(r.d)
			return 0, r.d.errGone()
		}
		if errors.Is(err, unix.EIO) || errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EILSEQ) {
			return 0, &hal.MediaError{LBA: off / int64(r.ss), Count: 1}
		}
		return 0, fmt.Errorf("%s: read %s at %d: %w", r.d.port.name, r.d.disk.Name, off, err)
	}
}

// stillThere says whether sysfs still shows the same device (same major:minor, a medium).
func (d *Drive) stillThere() bool {
	now, err := ReadDisk(d.port.b.sys, d.disk.Name)
	return err == nil && now != nil && now.Dev == d.disk.Dev && now.Size > 0
}

// removedDrive is what a read found out before the uevent said it: the drive is gone.
func (b *Board) removedDrive(d *Drive) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d.port.drive == d {
		d.port.unpluggedLocked()
	} else {
		d.markGone()
	}
}
