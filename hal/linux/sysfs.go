package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Disk is a whole block device as sysfs describes it, with what sysfs knows of its identity. Fields
// sysfs does not have (a SATA drive's full model, a USB disk's serial behind a bridge without VPD)
// are empty; identification asks the drive through SG_IO then.
type Disk struct {
	Name       string     // kernel name: sda, nvme0n1, loop7
	DevPath    string     // sysfs path relative to the sysfs root (devices/…/block/sda)
	Dev        string     // major:minor
	Attach     AttachPath // zero when the disk is on no bus evidenced knows
	AttachErr  error      // why Attach is zero
	Size       int64      // bytes; 0 = no medium
	Logical    int        // logical sector size
	Physical   int        // physical sector size
	ReadOnly   bool       // the kernel's ro flag
	Partitions []string   // kernel names of its partitions
	Vendor     string     // SCSI vendor (ATA for libata disks)
	Model      string
	Serial     string
	Firmware   string
	Transport  string // what sysfs says about the bus: ata, sas, usb, nvme, scsi, virtio, loop
	Backing    string // loop devices: the backing file
}

// ListDisks lists the whole disks sysfs shows under class/block (partitions excluded), sorted by
// name. A disk whose attributes cannot be read is skipped only when it vanished meanwhile; other
// errors are returned.
func ListDisks(fsys fs.FS) ([]Disk, error) {
	ents, err := fs.ReadDir(fsys, "class/block")
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var out []Disk
	for _, e := range ents {
		d, err := ReadDisk(fsys, e.Name())
		if err != nil {
			if isNotExist(err) {
				continue // gone between ReadDir and now
			}
			return nil, err
		}
		if d == nil {
			continue // a partition
		}
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// ReadDisk reads one block device by kernel name; nil, nil for a partition.
func ReadDisk(fsys fs.FS, name string) (*Disk, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("block device name %q is not a kernel name", name)
	}
	link, err := fs.ReadLink(fsys, path.Join("class/block", name))
	if err != nil {
		return nil, fmt.Errorf("block device %s: %w", name, err)
	}
	dp := path.Join("class/block", link)
	if _, err := fs.Stat(fsys, path.Join(dp, "partition")); err == nil {
		return nil, nil
	}
	d := &Disk{Name: name, DevPath: dp}
	d.Dev, _ = readAttr(fsys, path.Join(dp, "dev"))
	sectors, err := readInt(fsys, path.Join(dp, "size"))
	if err != nil {
		return nil, fmt.Errorf("block device %s: %w", name, err)
	}
	d.Size = sectors * 512 // sysfs counts 512-byte units whatever the sector size
	d.Logical = 512
	if v, err := readInt(fsys, path.Join(dp, "queue/logical_block_size")); err == nil && v > 0 {
		d.Logical = int(v)
	}
	d.Physical = d.Logical
	if v, err := readInt(fsys, path.Join(dp, "queue/physical_block_size")); err == nil && v > 0 {
		d.Physical = int(v)
	}
	if v, err := readInt(fsys, path.Join(dp, "ro")); err == nil {
		d.ReadOnly = v != 0
	}
	if ents, err := fs.ReadDir(fsys, dp); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), name) {
				if _, err := fs.Stat(fsys, path.Join(dp, e.Name(), "partition")); err == nil {
					d.Partitions = append(d.Partitions, e.Name())
				}
			}
		}
	}
	d.Attach, d.AttachErr = PathID(fsys, dp)
	d.identify(fsys)
	return d, nil
}

// identify fills the identity fields from sysfs: the SCSI device's attributes for SCSI, SATA and
// USB disks (vpd_pg80 holds the unit serial number page), the controller's for NVMe, the USB
// device's serial when the bridge has no VPD page, the backing file for loop devices.
func (d *Disk) identify(fsys fs.FS) {
	dp := d.DevPath
	switch {
	case strings.HasPrefix(d.Name, "loop"):
		d.Transport = "loop"
		d.Backing, _ = readAttr(fsys, path.Join(dp, "loop/backing_file"))
		d.Model = "Linux loop"
		d.Serial = loopSerial(d.Backing)
		return
	case reNVMeNS.MatchString(d.Name):
		d.Transport = "nvme"
		ctrl := path.Dir(dp) // the controller, or for multipath the subsystem: both have these
		d.Model, _ = readAttr(fsys, path.Join(ctrl, "model"))
		d.Serial, _ = readAttr(fsys, path.Join(ctrl, "serial"))
		d.Firmware, _ = readAttr(fsys, path.Join(ctrl, "firmware_rev"))
		return
	}
	dev := path.Dir(path.Dir(dp)) // …/H:C:T:L/block/sda → …/H:C:T:L
	if path.Base(path.Dir(dp)) != "block" {
		dev = path.Dir(dp)
	}
	if reSCSIDev.MatchString(path.Base(dev)) {
		d.Vendor, _ = readAttr(fsys, path.Join(dev, "vendor"))
		d.Model, _ = readAttr(fsys, path.Join(dev, "model"))
		d.Firmware, _ = readAttr(fsys, path.Join(dev, "rev"))
		if b, err := fs.ReadFile(fsys, path.Join(dev, "vpd_pg80")); err == nil {
			if s, err := ParseVPD80(b); err == nil {
				d.Serial = s
			}
		}
		switch {
		case strings.Contains(dp, "/end_device-"):
			d.Transport = "sas"
		case strings.Contains(dp, "/ata"):
			d.Transport = "ata"
		case strings.Contains(dp, "/usb"):
			d.Transport = "usb"
		default:
			d.Transport = "scsi"
		}
		if d.Transport == "usb" && d.Serial == "" {
			// The USB device's iSerial: the ancestor with idVendor.
			for a := path.Dir(dev); a != "." && a != "devices"; a = path.Dir(a) {
				if _, err := fs.Stat(fsys, path.Join(a, "idVendor")); err == nil {
					d.Serial, _ = readAttr(fsys, path.Join(a, "serial"))
					break
				}
			}
		}
		return
	}
	if strings.Contains(dp, "/virtio") {
		d.Transport = "virtio"
		d.Serial, _ = readAttr(fsys, path.Join(dp, "serial"))
	}
}

// loopSerial makes a serial for a loop device from its backing file's name: one word of the
// characters a serial may hold, so that tests and demos can name the drive.
func loopSerial(backing string) string {
	b := strings.TrimSuffix(path.Base(backing), " (deleted)")
	var s strings.Builder
	for _, r := range b {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			s.WriteRune(r)
		default:
			s.WriteByte('-')
		}
	}
	if s.Len() == 0 || backing == "" {
		return ""
	}
	out := s.String()
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return out
}

func readInt(fsys fs.FS, name string) (int64, error) {
	s, err := readAttr(fsys, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}
