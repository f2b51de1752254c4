package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/hal/board"
)

// fakeSys is a sysfs tree in a temporary folder: device directories with attribute files and the
// class/bus symlinks the kernel makes. Real symlinks, so os.DirFS reads it as it reads /sys.
type fakeSys struct {
	t    testing.TB
	root string
}

func newFakeSys(t *testing.T) *fakeSys { return &fakeSys{t: t, root: t.TempDir()} }

// newFakeSysF is the fake tree of build() for a fuzz target.
func newFakeSysF(f *testing.F) fs.FS {
	fk := &fakeSys{t: f, root: f.TempDir()}
	fk.build()
	return os.DirFS(fk.root)
}

func (f *fakeSys) file(name, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSys) link(name, target string) {
	f.t.Helper()
	p := filepath.Join(f.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	rel, err := filepath.Rel(filepath.Dir(p), filepath.Join(f.root, target))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(rel, p); err != nil {
		f.t.Fatal(err)
	}
}

// disk adds a block device at devpath with its class link, size in 512-byte units, sector sizes.
func (f *fakeSys) disk(devpath string, sectors string, attrs map[string]string) {
	name := filepath.Base(devpath)
	f.file(devpath+"/size", sectors+"\n")
	f.file(devpath+"/dev", "8:0\n")
	f.file(devpath+"/ro", "0\n")
	f.file(devpath+"/queue/logical_block_size", "512\n")
	f.file(devpath+"/queue/physical_block_size", "4096\n")
	for k, v := range attrs {
		f.file(filepath.Join(devpath, k), v)
	}
	f.link("class/block/"+name, devpath)
}

func (f *fakeSys) pci(addr, devdir string) { f.link("bus/pci/devices/"+addr, devdir) }

// exportedLines adds a GPIO controller with the export file and the given lines already exported
// (their direction files as the kernel makes them), since export does nothing on a fake tree.
func (f *fakeSys) exportedLines(label string, base, lines int, exported ...int) {
	f.gpioChip(label, base, lines)
	f.file("class/gpio/export", "")
	for _, l := range exported {
		f.file(fmt.Sprintf("class/gpio/gpio%d/direction", base+l), "in\n")
	}
}

// gpioChip adds a GPIO controller as /sys/class/gpio shows it.
func (f *fakeSys) gpioChip(label string, base, lines int) {
	dir := fmt.Sprintf("class/gpio/gpiochip%d/", base)
	f.file(dir+"label", label+"\n")
	f.file(dir+"base", fmt.Sprintf("%d\n", base))
	f.file(dir+"ngpio", fmt.Sprintf("%d\n", lines))
}

func vpd80(serial string) string {
	return string([]byte{0, 0x80, 0, byte(len(serial))}) + serial
}

// build makes the tree of a board with one disk on every bus evidenced supports.
func (f *fakeSys) build() {
	// SATA: AHCI at 00:1f.2, port 3 (ata3), libata's SCSI view. The model is cut to 16 chars.
	sata := "devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0"
	f.file("devices/pci0000:00/0000:00:1f.2/ata3/ata_port/ata3/port_no", "3\n")
	f.disk(sata+"/block/sda", "1953525168", map[string]string{"sda1/partition": "1\n", "sda1/size": "2048\n"})
	f.file(sata+"/vendor", "ATA     \n")
	f.file(sata+"/model", "WDC WD10EZEX-08W\n")
	f.file(sata+"/rev", "1A01\n")
	f.file(sata+"/vpd_pg80", vpd80("WD-WCC6Y0ABCDEF"))
	f.pci("0000:00:1f.2", "devices/pci0000:00/0000:00:1f.2")
	f.link("class/scsi_host/host2", "devices/pci0000:00/0000:00:1f.2/ata3/host2/scsi_host/host2")
	f.file("devices/pci0000:00/0000:00:1f.2/ata3/host2/scsi_host/host2/scan", "")
	// SAS: LSI HBA at 02:00.0, direct-attached on phy 5.
	hba := "devices/pci0000:00/0000:00:01.0/0000:02:00.0/host0"
	sas := hba + "/port-0:1/end_device-0:1/target0:0:1/0:0:1:0"
	f.file(hba+"/port-0:1/sas_port/port-0:1/num_phys", "1\n")
	f.file(hba+"/port-0:1/end_device-0:1/sas_device/end_device-0:1/phy_identifier", "5\n")
	f.file(hba+"/port-0:1/end_device-0:1/sas_device/end_device-0:1/sas_address", "0x5000c500a1b2c3d4\n")
	f.disk(sas+"/block/sdb", "585937500", nil)
	f.file(sas+"/vendor", "SEAGATE \n")
	f.file(sas+"/model", "ST300MM0048     \n")
	f.file(sas+"/rev", "N004\n")
	f.file(sas+"/vpd_pg80", vpd80("S0K2ABCD0000"))
	f.pci("0000:02:00.0", "devices/pci0000:00/0000:00:01.0/0000:02:00.0")
	// USB: xHCI at 00:14.0, port 2, a bridge without VPD page 0x80: the serial is the USB one.
	usbDev := "devices/pci0000:00/0000:00:14.0/usb2/2-2"
	usb := usbDev + "/2-2:1.0/host6/target6:0:0/6:0:0:0"
	f.file(usbDev+"/idVendor", "0bc2\n")
	f.file(usbDev+"/serial", "NA8F1234\n")
	f.file("devices/pci0000:00/0000:00:14.0/usb2/idVendor", "1d6b\n")
	f.disk(usb+"/block/sdc", "3907029168", nil)
	f.file(usb+"/vendor", "Seagate \n")
	f.file(usb+"/model", "Expansion       \n")
	f.file(usb+"/rev", "0710\n")
	f.pci("0000:00:14.0", "devices/pci0000:00/0000:00:14.0")
	// NVMe behind a root port 00:1d.0, controller 03:00.0, namespace 1.
	ctrl := "devices/pci0000:00/0000:00:1d.0/0000:03:00.0/nvme/nvme0"
	f.file(ctrl+"/model", "Samsung SSD 970 EVO Plus 1TB            \n")
	f.file(ctrl+"/serial", "S4EWNX0R123456      \n")
	f.file(ctrl+"/firmware_rev", "2B2QEXM7\n")
	f.disk(ctrl+"/nvme0n1", "1953525168", map[string]string{"nsid": "1\n"})
	f.pci("0000:03:00.0", "devices/pci0000:00/0000:00:1d.0/0000:03:00.0")
	f.link("class/pci_bus/0000:03", "devices/pci0000:00/0000:00:1d.0/pci_bus/0000:03")
	f.file("devices/pci0000:00/0000:00:1d.0/pci_bus/0000:03/.keep", "")
	// virtio-scsi (QEMU) at 00:05.0, second host on that controller; virtio-blk at 00:02.0.
	vs := "devices/pci0000:00/0000:00:05.0/virtio3"
	f.file(vs+"/host0/.keep", "")
	f.disk(vs+"/host1/target1:0:2/1:0:2:3/block/sdd", "2048", nil)
	f.file(vs+"/host1/target1:0:2/1:0:2:3/vendor", "QEMU    \n")
	f.file(vs+"/host1/target1:0:2/1:0:2:3/model", "QEMU HARDDISK   \n")
	f.disk("devices/pci0000:00/0000:00:02.0/virtio1/block/vda", "4096", map[string]string{"serial": "VBLK1\n"})
	// A loop device and a partition-less device evidenced knows nothing of.
	f.disk("devices/virtual/block/loop7", "0", nil)
	f.disk("devices/platform/soc/mmc0/mmc0:0001/block/mmcblk0", "100", nil)
}

func TestPathIDKnownExamples(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	fsys := os.DirFS(f.root)
	cases := []struct{ dev, id, compat string }{
		// systemd 252's path_id on the same trees gives these (ID_PATH, ID_PATH_ATA_COMPAT).
		{"devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sda", "pci-0000:00:1f.2-ata-3.0", "pci-0000:00:1f.2-ata-3"},
		{"devices/pci0000:00/0000:00:01.0/0000:02:00.0/host0/port-0:1/end_device-0:1/target0:0:1/0:0:1:0/block/sdb", "pci-0000:02:00.0-sas-phy5-lun-0", ""},
		{"devices/pci0000:00/0000:00:14.0/usb2/2-2/2-2:1.0/host6/target6:0:0/6:0:0:0/block/sdc", "pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0", ""},
		{"devices/pci0000:00/0000:00:1d.0/0000:03:00.0/nvme/nvme0/nvme0n1", "pci-0000:03:00.0-nvme-1", ""},
		{"devices/pci0000:00/0000:00:05.0/virtio3/host1/target1:0:2/1:0:2:3/block/sdd", "pci-0000:00:05.0-scsi-1:0:2:3", ""},
		{"devices/pci0000:00/0000:00:02.0/virtio1/block/vda", "pci-0000:00:02.0", ""},
		{"devices/virtual/block/loop7", "loop-7", ""},
	}
	for _, c := range cases {
		got, err := PathID(fsys, c.dev)
		if err != nil {
			t.Errorf("%s: %v", c.dev, err)
			continue
		}
		if got.ID != c.id || got.Compat != c.compat {
			t.Errorf("%s: got %+v, want ID %q compat %q", filepath.Base(c.dev), got, c.id, c.compat)
		}
	}
	if _, err := PathID(fsys, "devices/platform/soc/mmc0/mmc0:0001/block/mmcblk0"); !errors.Is(err, errNoPathID) {
		t.Errorf("mmc: err = %v, want errNoPathID", err)
	}
}

func TestPathIDSASVariants(t *testing.T) {
	f := newFakeSys(t)
	// Behind an expander: sas-exp<expander address>-phy<phy>-lun-<lun>.
	exp := "devices/pci0000:00/0000:04:00.0/host3/port-3:0/expander-3:0"
	f.file(exp+"/sas_device/expander-3:0/sas_address", "0x500605b000000001\n")
	f.file(exp+"/port-3:0:7/sas_port/port-3:0:7/num_phys", "1\n")
	f.file(exp+"/port-3:0:7/end_device-3:0:7/sas_device/end_device-3:0:7/phy_identifier", "7\n")
	f.disk(exp+"/port-3:0:7/end_device-3:0:7/target3:0:7/3:0:7:0/block/sde", "100", nil)
	// A wide port (two phys): sas-<end device address>-lun-<lun>.
	w := "devices/pci0000:00/0000:05:00.0/host4/port-4:0"
	f.file(w+"/sas_port/port-4:0/num_phys", "2\n")
	f.file(w+"/end_device-4:0/sas_device/end_device-4:0/sas_address", "0x5000c500deadbeef\n")
	f.disk(w+"/end_device-4:0/target4:0:0/4:0:0:1/block/sdf", "100", nil)
	fsys := os.DirFS(f.root)
	for dev, want := range map[string]string{
		exp + "/port-3:0:7/end_device-3:0:7/target3:0:7/3:0:7:0/block/sde": "pci-0000:04:00.0-sas-exp0x500605b000000001-phy7-lun-0",
		w + "/end_device-4:0/target4:0:0/4:0:0:1/block/sdf":                "pci-0000:05:00.0-sas-0x5000c500deadbeef-lun-1",
	} {
		got, err := PathID(fsys, dev)
		if err != nil || got.ID != want {
			t.Errorf("%s: %+v %v, want %q", filepath.Base(dev), got, err, want)
		}
	}
}

func TestAttachMatches(t *testing.T) {
	a := AttachPath{ID: "pci-0000:00:1f.2-ata-3.0", Compat: "pci-0000:00:1f.2-ata-3"}
	for attach, want := range map[string]bool{
		"pci-0000:00:1f.2-ata-3.0": true, "pci-0000:00:1f.2-ata-3": true, "pci-0000:00:1f.2": true,
		"pci-0000:00:1f.2-ata-30": false, "pci-0000:00:1f.2-ata-3.": false, "pci-0000:00:1f": false,
	} {
		if got := a.Matches(attach); got != want {
			t.Errorf("Matches(%q) = %v", attach, got)
		}
	}
}

func TestListDisksIdentity(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	disks, err := ListDisks(os.DirFS(f.root))
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]Disk{}
	for _, d := range disks {
		by[d.Name] = d
	}
	if len(disks) != 8 {
		t.Fatalf("%d disks, want 8 (partition sda1 excluded): %v", len(disks), by)
	}
	check := func(name, transport, vendor, model, serial, fw string, size int64) {
		t.Helper()
		d := by[name]
		if d.Transport != transport || d.Vendor != vendor || d.Model != model || d.Serial != serial || d.Firmware != fw || d.Size != size {
			t.Errorf("%s: %+v", name, d)
		}
	}
	check("sda", "ata", "ATA", "WDC WD10EZEX-08W", "WD-WCC6Y0ABCDEF", "1A01", 1953525168*512)
	check("sdb", "sas", "SEAGATE", "ST300MM0048", "S0K2ABCD0000", "N004", 585937500*512)
	check("sdc", "usb", "Seagate", "Expansion", "NA8F1234", "0710", 3907029168*512)
	check("nvme0n1", "nvme", "", "Samsung SSD 970 EVO Plus 1TB", "S4EWNX0R123456", "2B2QEXM7", 1953525168*512)
	check("vda", "virtio", "", "", "VBLK1", "", 4096*512)
	if d := by["sda"]; len(d.Partitions) != 1 || d.Partitions[0] != "sda1" || d.Logical != 512 || d.Physical != 4096 {
		t.Errorf("sda partitions/sector sizes: %+v", d)
	}
	if d := by["mmcblk0"]; d.AttachErr == nil || d.Attach.ID != "" {
		t.Errorf("mmcblk0: attach %+v err %v", d.Attach, d.AttachErr)
	}
	// The identity through identify(): sysfs values, SATA without the "ATA" vendor.
	id, err := identify(by["sdb"], "/nonexistent/sdb", "sas")
	if err != nil || id.Model != "SEAGATE ST300MM0048" || id.Serial != "S0K2ABCD0000" || id.Bus != "sas" || id.SectorSize != 512 {
		t.Errorf("sdb identity %+v %v", id, err)
	}
	id, err = identify(by["sda"], "/nonexistent/sda", "sata")
	if err != nil || id.Model != "WDC WD10EZEX-08W" {
		t.Errorf("sda identity %+v %v", id, err)
	}
	if _, err := identify(by["vda"], "/nonexistent/vda", "sata"); err == nil || !strings.Contains(err.Error(), "model") {
		t.Errorf("vda without a model: err %v", err)
	}
}

// TestBoardStartErrors: an attach point or GPIO chip that does not exist fails New, naming the port.
func TestBoardStartErrors(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.gpioChip("port-power", 496, 16)
	cases := []struct {
		port board.PortDesc
		want string
	}{
		{board.PortDesc{Name: "SATA1", Attach: "pci-0000:00:1f.3-ata-1"}, "port SATA1: attach point \"pci-0000:00:1f.3-ata-1\": no PCI device 0000:00:1f.3"},
		{board.PortDesc{Name: "SATA2", Attach: "loop-99"}, "port SATA2: attach point \"loop-99\": no loop device loop99"},
		{board.PortDesc{Name: "NVME2", Attach: "pci-0000:04:00.0-nvme-1"}, "port NVME2: attach point \"pci-0000:04:00.0-nvme-1\": no PCI bus 0000:04"},
		{board.PortDesc{Name: "SAS1", Attach: "platform-ahci-ata-1"}, "port SAS1: attach point"},
		{board.PortDesc{Name: "SATA3", Attach: "pci-0000:00:1f.2-ata-3", Power: &board.GPIOLine{Chip: "nope", Line: 1}}, "port SATA3: power line: GPIO chip \"nope\" not found (chips: port-power)"},
		{board.PortDesc{Name: "SATA3", Attach: "pci-0000:00:1f.2-ata-3", Reset: &board.GPIOLine{Chip: "port-power", Line: 16}}, "port SATA3: reset line: GPIO chip \"port-power\" has 16 lines, line 16 does not exist"},
	}
	for _, c := range cases {
		desc := board.Description{Kind: board.KindLinux, ApplianceID: "E1", Ports: []board.PortDesc{c.port}}
		_, err := New(desc, Options{SysRoot: f.root, Source: "kernel"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.port.Name, err, c.want)
		}
	}
}

// TestGPIOPowerCycle: on the fake tree, power-on exports the line (found by chip label), drives it
// active (honouring activeLow) and rescans the controller's SCSI hosts; power-off deletes the disk
// from the kernel first, then drives the line inactive.
func TestGPIOPowerCycle(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.gpioChip("INT34BB:00", 0, 8)
	f.gpioChip("port-power", 504, 8)
	f.file("class/gpio/export", "")
	f.file("class/block/sda/device/delete", "") // sda's device dir: the SCSI device
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(f.root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	line := &board.GPIOLine{Chip: "port-power", Line: 3, ActiveLow: true}
	g, err := findGPIO(f.root, *line)
	if err != nil {
		t.Fatal(err)
	}
	if g.num != 507 {
		t.Fatalf("GPIO number %d, want 504+3", g.num)
	}
	// Not exported yet and export does nothing on a fake tree: a clear error.
	if err := g.set(true); err == nil || !strings.Contains(err.Error(), "export did not create gpio507") {
		t.Fatalf("set without export: %v", err)
	}
	if got := read("class/gpio/export"); got != "507" {
		t.Fatalf("export got %q", got)
	}
	f.file("class/gpio/gpio507/direction", "in\n") // as the kernel would after the export
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "E1", Ports: []board.PortDesc{
		{Name: "SATA3", Attach: "pci-0000:00:1f.2-ata-3", Power: line},
	}}
	b, err := New(desc, Options{SysRoot: f.root, DevRoot: t.TempDir(), Source: "kernel", Settle: 1, IdentifyTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// At start the powered port is switched off: disk deleted, line inactive (active-low: high).
	if got := read("class/block/sda/device/delete"); got != "1" {
		t.Fatalf("power off at start: delete = %q, want 1", got)
	}
	if got := read("class/gpio/gpio507/direction"); got != "high" {
		t.Fatalf("power off: direction = %q, want high (active-low line inactive)", got)
	}
	p, _ := b.Port("SATA3")
	if p.Powered() || p.State() != "off" {
		t.Fatalf("after start: powered %v state %s", p.Powered(), p.State())
	}
	os.WriteFile(filepath.Join(f.root, "class/block/sda/device/delete"), nil, 0o644)
	if err := p.PowerOn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := read("class/gpio/gpio507/direction"); got != "low" {
		t.Fatalf("power on: direction = %q, want low (active-low line active)", got)
	}
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(f.root, "class/scsi_host/host2/scan"))
		return string(b) == "- - -"
	})
	if err := p.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if got := read("class/block/sda/device/delete"); got != "1" {
		t.Fatalf("power off: delete = %q", got)
	}
	if got := read("class/gpio/gpio507/direction"); got != "high" {
		t.Fatalf("power off: direction = %q", got)
	}
}

func TestRescanNVMeAndDelete(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.file("bus/pci/rescan", "")
	f.file("devices/pci0000:00/0000:00:1d.0/0000:03:00.0/remove", "")
	if err := rescanFor(f.root, "pci-0000:03:00.0-nvme-1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.root, "bus/pci/rescan")); string(b) != "1" {
		t.Fatalf("PCI rescan wrote %q", b)
	}
	d, err := ReadDisk(os.DirFS(f.root), "nvme0n1")
	if err != nil {
		t.Fatal(err)
	}
	if err := deleteDisk(f.root, *d); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.root, "devices/pci0000:00/0000:00:1d.0/0000:03:00.0/remove")); string(b) != "1" {
		t.Fatalf("NVMe remove wrote %q", b)
	}
	if err := rescanFor(f.root, "pci-0000:09:00.0-ata-1"); err == nil {
		t.Fatal("rescan of a controller without SCSI hosts succeeded")
	}
	// A port named down to its SCSI address scans that channel, target and LUN only, on the hosts
	// of its controller; a port named by its controller alone scans everything.
	vs := "devices/pci0000:00/0000:00:05.0/virtio3/"
	for _, h := range []string{"host0", "host1"} {
		f.file(vs+h+"/scsi_host/"+h+"/scan", "")
		f.link("class/scsi_host/"+h, vs+h+"/scsi_host/"+h)
	}
	f.file("devices/pci0000:00/0000:00:1f.2/ata3/host2/scsi_host/host2/scan", "")
	for _, c := range []struct{ attach, want string }{
		{"pci-0000:00:05.0-scsi-1:0:2:3", "0 2 3"},
		{"pci-0000:00:05.0", "- - -"},
	} {
		if err := rescanFor(f.root, c.attach); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"host0", "host1"} {
			if b, _ := os.ReadFile(filepath.Join(f.root, vs+h+"/scsi_host/"+h+"/scan")); string(b) != c.want {
				t.Errorf("%s: %s scan got %q, want %q", c.attach, h, b, c.want)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(f.root, "devices/pci0000:00/0000:00:1f.2/ata3/host2/scsi_host/host2/scan")); len(b) != 0 {
			t.Errorf("%s: another controller's host was scanned (%q)", c.attach, b)
		}
	}
}

func TestDiscoverSkeleton(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.link("class/ata_port/ata3", "devices/pci0000:00/0000:00:1f.2/ata3/ata_port/ata3")
	f.file("devices/pci0000:00/0000:00:1f.2/ata4/ata_port/ata4/port_no", "4\n") // an empty SATA port
	f.link("class/ata_port/ata4", "devices/pci0000:00/0000:00:1f.2/ata4/ata_port/ata4")
	f.gpioChip("port-power", 504, 8)
	d, err := Discover(os.DirFS(f.root))
	if err != nil {
		t.Fatal(err)
	}
	desc, notes := d.Skeleton("EVD0042")
	want := []board.PortDesc{
		{Name: "SATA1", Bus: "sata", Attach: "pci-0000:00:1f.2-ata-3", Mode: "source"},
		{Name: "SATA2", Bus: "sata", Attach: "pci-0000:00:1f.2-ata-4", Mode: "source"},
		{Name: "NVME1", Bus: "nvme", Attach: "pci-0000:03:00.0-nvme-1", Mode: "source"},
		{Name: "SAS1", Bus: "sas", Attach: "pci-0000:02:00.0-sas-phy5-lun-0", Mode: "source"},
		{Name: "USB1", Bus: "usb", Attach: "pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0", Mode: "target"},
	}
	if len(desc.Ports) != len(want) {
		t.Fatalf("ports %+v", desc.Ports)
	}
	for i, w := range want {
		if g := desc.Ports[i]; g.Name != w.Name || g.Bus != w.Bus || g.Attach != w.Attach || g.Mode != w.Mode {
			t.Errorf("port %d = %+v, want %+v", i, g, w)
		}
	}
	if err := desc.Validate(); err != nil {
		t.Fatalf("skeleton does not validate: %v", err)
	}
	all := strings.Join(notes, "\n")
	for _, s := range []string{"SATA1 = pci-0000:00:1f.2-ata-3 (sda, WDC WD10EZEX-08W WD-WCC6Y0ABCDEF", "SATA2 = pci-0000:00:1f.2-ata-4 (empty)", `GPIO chip "port-power": 8 lines`, "vda", "mmcblk0"} {
		if !strings.Contains(all, s) {
			t.Errorf("notes lack %q:\n%s", s, all)
		}
	}
	// The skeleton starts a board on the same tree: every attach point exists.
	b, err := New(desc, Options{SysRoot: f.root, DevRoot: t.TempDir(), Source: "kernel"})
	if err != nil {
		t.Fatalf("board from the skeleton: %v", err)
	}
	b.Close()
}

// TestUSBPortPowerByAuthorized: a USB port without a power line is switched off and on through
// its device's authorized file.
func TestUSBPortPowerByAuthorized(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.file("devices/pci0000:00/0000:00:14.0/usb2/2-2/authorized", "1\n")
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "E1", Ports: []board.PortDesc{
		{Name: "USB1", Attach: "pci-0000:00:14.0-usb-0:2:1.0"},
	}}
	b, err := New(desc, Options{SysRoot: f.root, DevRoot: t.TempDir(), Source: "kernel", IdentifyTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, _ := b.Port("USB1")
	auth := func() string {
		b, _ := os.ReadFile(filepath.Join(f.root, "devices/pci0000:00/0000:00:14.0/usb2/2-2/authorized"))
		return string(b)
	}
	if err := p.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if auth() != "0" || p.Powered() {
		t.Fatalf("after power off: authorized %q powered %v", auth(), p.Powered())
	}
	if err := p.PowerOn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if auth() != "1" || !p.Powered() {
		t.Fatalf("after power on: authorized %q powered %v", auth(), p.Powered())
	}
	if err := usbAuthorize(f.root, "pci-0000:00:14.0-usb-0:3:1.0", false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty connector: %v", err)
	}
}

// TestResetLine: a drive's Reset pulses the port's reset line (found by label, exported, driven
// active then inactive), even where the SCSI reset cannot be sent.
func TestResetLine(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.exportedLines("port-reset", 504, 8, 1)
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "E1", Ports: []board.PortDesc{
		{Name: "SAS1", Attach: "pci-0000:02:00.0-sas-phy5-lun-0", Mode: "target", Reset: &board.GPIOLine{Chip: "port-reset", Line: 1}},
	}}
	b, err := New(desc, Options{SysRoot: f.root, DevRoot: t.TempDir(), Source: "kernel"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, _ := b.Port("SAS1")
	d, ok := p.Drive().(*Drive)
	if !ok {
		t.Fatalf("SAS1: no drive (state %s)", p.State())
	}
	var levels []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // watch the line's level while the pulse runs
		defer close(done)
		for {
			v, _ := os.ReadFile(filepath.Join(f.root, "class/gpio/gpio505/direction"))
			// (a fake file is empty for a moment while it is rewritten)
			if len(v) > 0 && (len(levels) == 0 || levels[len(levels)-1] != string(v)) {
				levels = append(levels, string(v))
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	if err := d.Reset(); err != nil {
		t.Fatalf("reset with a reset line: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	<-done
	if !strings.HasSuffix(strings.Join(levels, ","), "high,low") {
		t.Fatalf("reset line levels %q, want high then low", levels)
	}
}

// TestPowerOffFrozenDelete: the kernel's delete of a frozen drive waits for commands only the power
// cut ends; power off waits DeleteWait for it, then cuts the power anyway. The fake delete file is
// a FIFO: a write to it blocks until someone reads.
func TestPowerOffFrozenDelete(t *testing.T) {
	f := newFakeSys(t)
	f.build()
	f.exportedLines("port-power", 504, 8, 3)
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "E1", Ports: []board.PortDesc{
		{Name: "SATA3", Attach: "pci-0000:00:1f.2-ata-3", Power: &board.GPIOLine{Chip: "port-power", Line: 3}},
	}}
	del := filepath.Join(f.root, "class/block/sda/device/delete")
	f.file("class/block/sda/device/.keep", "")
	if err := unix.Mkfifo(del, 0o644); err != nil {
		t.Fatal(err)
	}
	var released sync.WaitGroup
	released.Add(1)
	go func() { // the "kernel" lets go of the disk late: read the FIFO after 2 s
		defer released.Done()
		time.Sleep(2 * time.Second)
		b, err := os.ReadFile(del)
		if err != nil || string(b) != "1" {
			t.Errorf("the delete wrote %q, %v", b, err)
		}
	}()
	start := time.Now()
	b, err := New(desc, Options{SysRoot: f.root, DevRoot: t.TempDir(), Source: "kernel", DeleteWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	took := time.Since(start)
	dir, err := os.ReadFile(filepath.Join(f.root, "class/gpio/gpio507/direction"))
	if err != nil || string(dir) != "low" {
		t.Fatalf("power line after the frozen delete: %q %v, want low", dir, err)
	}
	if took < 200*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("power off took %v: it must wait DeleteWait (200ms) for the delete, and no longer", took)
	}
	released.Wait()
}
