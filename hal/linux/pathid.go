package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// AttachPath is where a disk hangs in the device tree, in udev's ID_PATH form. Compat is the older
// form udev also publishes (ID_PATH_ATA_COMPAT: "ata-3" where ID_PATH says "ata-3.0"); it is empty
// when it would equal ID.
type AttachPath struct {
	ID     string
	Compat string
}

// Matches says whether a port's attach point names this disk: equal to either form, or a prefix of
// it followed by '-' (a port named by its USB connector "pci-…-usb-0:2" owns the disk behind it).
func (a AttachPath) Matches(attach string) bool {
	for _, p := range []string{a.ID, a.Compat} {
		if p != "" && (p == attach || strings.HasPrefix(p, attach+"-")) {
			return true
		}
	}
	return false
}

var (
	rePCI       = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	reSCSIDev   = regexp.MustCompile(`^(\d+):(\d+):(\d+):(\d+)$`)
	reUSBIntf   = regexp.MustCompile(`^\d+-[\d.]+(:\d+\.\d+)?$`)
	reUSBRoot   = regexp.MustCompile(`^usb\d+$`)
	reHost      = regexp.MustCompile(`^host(\d+)$`)
	reATA       = regexp.MustCompile(`^ata\d+$`)
	reLoop      = regexp.MustCompile(`^loop(\d+)$`)
	reNVMeNS    = regexp.MustCompile(`^(nvme\d+)(c\d+)?n(\d+)$`)
	reNVMeCtrl  = regexp.MustCompile(`^nvme\d+$`)
	reVirtio    = regexp.MustCompile(`^virtio\d+$`)
	errNoPathID = errors.New("no ID_PATH: the disk is not on a bus evidenced knows (PCI with ATA, SAS, SCSI, USB, NVMe or virtio)")
)

// PathID computes a disk's attach path from its sysfs device path (relative to the sysfs root, e.g.
// "devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sda"), the way systemd's
// path_id builtin does for the buses the appliance has, so that a board file written from `udevadm
// info` output and one written from `evidenced board discover` agree. It reads the few sysfs
// attributes path_id reads (ATA port_no, SAS phy and address, NVMe nsid) through fsys, so a fake
// tree tests it. Loop devices, which have no ID_PATH, get "loop-N" (see board.PortDesc.Attach).
func PathID(fsys fs.FS, devpath string) (AttachPath, error) {
	devpath = strings.Trim(path.Clean(devpath), "/")
	name := path.Base(devpath)
	if m := reLoop.FindStringSubmatch(name); m != nil && strings.HasPrefix(devpath, "devices/virtual/") {
		return AttachPath{ID: "loop-" + m[1]}, nil
	}
	var id, compat []string // prepended as the walk goes up
	both := func(s string) { id = append([]string{s}, id...); compat = append([]string{s}, compat...) }

	// The block device's parent device: skip the "block" class directory (sda lives in
	// …/2:0:0:0/block/sda); NVMe namespaces hang straight under their controller.
	dir := path.Dir(devpath)
	if path.Base(dir) == "block" {
		dir = path.Dir(dir)
	}
	if m := reNVMeNS.FindStringSubmatch(name); m != nil {
		nsid, err := readAttr(fsys, path.Join(devpath, "nsid"))
		if err != nil {
			nsid = m[3] // older kernels have no nsid attribute; the name carries it
		}
		both("nvme-" + nsid)
		if strings.Contains(devpath, "/nvme-subsystem/") {
			// A multipath namespace lives under the virtual subsystem: follow its first
			// controller (nvme0n1 → nvme0) to the PCI device, as path_id's find_real_nvme_parent.
			ctrl, err := fs.ReadLink(fsys, path.Join("class/nvme", m[1]))
			if err != nil {
				return AttachPath{}, fmt.Errorf("path id of %s: controller %s: %w", name, m[1], err)
			}
			dir = path.Join("class/nvme", ctrl)
		}
		if reNVMeCtrl.MatchString(path.Base(dir)) {
			dir = path.Dir(dir) // nvme0 → its class directory "nvme"
		}
		if path.Base(dir) == "nvme" {
			dir = path.Dir(dir)
		}
	}
	supported := false
	for dir != "." && dir != "devices" && dir != "/" {
		base := path.Base(dir)
		switch {
		case reSCSIDev.MatchString(base):
			s, err := scsiPath(fsys, dir)
			if err != nil {
				return AttachPath{}, fmt.Errorf("path id of %s: %w", name, err)
			}
			id = append([]string{s.id}, id...)
			compat = append([]string{s.compat}, compat...)
		case reUSBIntf.MatchString(base):
			port := base[strings.IndexByte(base, '-')+1:]
			both("usb-0:" + port)
			for d := path.Dir(dir); reUSBIntf.MatchString(path.Base(d)) || reUSBRoot.MatchString(path.Base(d)); d = path.Dir(d) {
				dir = d
			}
		case rePCI.MatchString(base):
			both("pci-" + base)
			supported = true
			for d := path.Dir(dir); rePCI.MatchString(path.Base(d)); d = path.Dir(d) {
				dir = d
			}
		}
		dir = path.Dir(dir)
	}
	if !supported || len(id) == 0 {
		return AttachPath{}, fmt.Errorf("%s: %w", name, errNoPathID)
	}
	ap := AttachPath{ID: strings.Join(id, "-"), Compat: strings.Join(compat, "-")}
	if ap.Compat == ap.ID {
		ap.Compat = ""
	}
	return ap, nil
}

type scsiPart struct{ id, compat string }

// scsiPath is path_id's handle_scsi for one SCSI device directory ("H:C:T:L"): ATA behind libata,
// SAS (direct phy, wide port, expander), or the default "scsi-H:C:T:L" with the host number
// counted from the controller's first host.
func scsiPath(fsys fs.FS, dev string) (scsiPart, error) {
	m := reSCSIDev.FindStringSubmatch(path.Base(dev))
	hostN, _ := strconv.Atoi(m[1])
	bus, target, lun := m[2], m[3], m[4]
	var hostDir string
	for d := path.Dir(dev); d != "." && d != "devices"; d = path.Dir(d) {
		if reHost.MatchString(path.Base(d)) {
			hostDir = d
			break
		}
	}
	if hostDir == "" {
		return scsiPart{}, fmt.Errorf("SCSI device %s has no host above it", path.Base(dev))
	}
	// SAS: …/hostH/port-H:N/[expander-H:N/port-H:M/]end_device-H:N/target…/H:C:T:L
	endDev := path.Dir(path.Dir(dev))
	if strings.HasPrefix(path.Base(endDev), "end_device-") {
		return sasPath(fsys, endDev, lun)
	}
	if ata := path.Dir(hostDir); reATA.MatchString(path.Base(ata)) {
		portNo, err := readAttr(fsys, path.Join(ata, "ata_port", path.Base(ata), "port_no"))
		if err != nil {
			return scsiPart{}, fmt.Errorf("ATA port number of %s: %w", path.Base(ata), err)
		}
		s := scsiPart{compat: "ata-" + portNo}
		if bus != "0" { // behind a port multiplier
			s.id = "ata-" + portNo + "." + bus + ".0"
		} else { // master/slave by target id
			s.id = "ata-" + portNo + "." + target
		}
		return s, nil
	}
	// Default: the host number relative to the lowest host on the same controller, so that the
	// path does not depend on probe order across controllers.
	base := hostN
	if ents, err := fs.ReadDir(fsys, path.Dir(hostDir)); err == nil {
		for _, e := range ents {
			if hm := reHost.FindStringSubmatch(e.Name()); hm != nil {
				if n, _ := strconv.Atoi(hm[1]); n < base {
					base = n
				}
			}
		}
	}
	s := fmt.Sprintf("scsi-%d:%s:%s:%s", hostN-base, bus, target, lun)
	return scsiPart{id: s, compat: s}, nil
}

// sasPath is path_id's handle_scsi_sas.
func sasPath(fsys fs.FS, endDev, lun string) (scsiPart, error) {
	port := path.Dir(endDev)
	pname := path.Base(port)
	if !strings.HasPrefix(pname, "port-") {
		return scsiPart{}, fmt.Errorf("SAS end device %s is not under a port", path.Base(endDev))
	}
	numPhys, err := readAttr(fsys, path.Join(port, "sas_port", pname, "num_phys"))
	if err != nil {
		return scsiPart{}, fmt.Errorf("SAS port %s: %w", pname, err)
	}
	if numPhys != "1" { // wide port: named by the end device's SAS address
		addr, err := readAttr(fsys, path.Join(endDev, "sas_device", path.Base(endDev), "sas_address"))
		if err != nil {
			return scsiPart{}, fmt.Errorf("SAS address of %s: %w", path.Base(endDev), err)
		}
		s := "sas-" + addr + "-lun-" + lunPart(lun)
		return scsiPart{id: s, compat: s}, nil
	}
	// The phy the end device is attached by (a single-phy port).
	phyID, err := readAttr(fsys, path.Join(endDev, "sas_device", path.Base(endDev), "phy_identifier"))
	if err != nil {
		return scsiPart{}, fmt.Errorf("SAS phy of %s: %w", path.Base(endDev), err)
	}
	var s string
	if exp := path.Dir(port); strings.HasPrefix(path.Base(exp), "expander-") {
		addr, err := readAttr(fsys, path.Join(exp, "sas_device", path.Base(exp), "sas_address"))
		if err != nil {
			return scsiPart{}, fmt.Errorf("SAS address of %s: %w", path.Base(exp), err)
		}
		s = "sas-exp" + addr + "-phy" + phyID + "-lun-" + lunPart(lun)
	} else {
		s = "sas-phy" + phyID + "-lun-" + lunPart(lun)
	}
	return scsiPart{id: s, compat: s}, nil
}

// lunPart is path_id's format_lun_number: small LUNs in decimal, others as the 64-bit LUN.
func lunPart(lun string) string {
	n, err := strconv.ParseUint(lun, 10, 64)
	if err != nil || n < 256 {
		return lun
	}
	return fmt.Sprintf("0x%04x%04x00000000", n&0xffff, (n>>16)&0xffff)
}

// readAttr reads a sysfs attribute, trimmed.
func readAttr(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
