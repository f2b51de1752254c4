package linux

// TestBoardInQEMU (make qemu-test) boots a Debian kernel under QEMU with this package's test
// binary as /init and virtual disks on every bus the board knows: AHCI (ide-hd), a SCSI HBA
// (virtio-scsi with scsi-hd), xHCI with a USB mass-storage bridge (usb-bot + scsi-hd) and NVMe, all
// with model and serial set on the QEMU command line. Inside, TestBoardGuest opens a board of kind
// linux on that topology and checks each drive is identified on its port with QEMU's model and
// serial, write-blocked, read back exactly, that deleting the SATA disk from the kernel in the
// middle of a read gives hal.ErrGone within 2 s and a rescan brings it back (plugged), and that a
// USB stick, an NVMe drive and a SCSI disk added and removed through QMP are plugged and unplugged
// on their own ports. Then a port powered through gpio-sim (qemu_gpio_linux_test.go): power off and
// on, and a freezing drive recovered by a power cycle. The host then checks the disk images' hashes
// are unchanged and that its power harness unplugged and plugged the GPIO port's disk in step.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// qemuDisk is one virtual disk of the guest and what the guest must find on its port.
type qemuDisk struct {
	Port, Attach, Model, Serial string
	MD5                         string // of the image, for the guest to compare what it reads
	devices                     []string
}

type qemuGuest struct {
	Modules  []string
	Disks    []qemuDisk
	GPIODisk qemuDisk // on a port powered through gpio-sim
}

var qemuBoardModules = []string{"ahci", "sd_mod", "virtio_pci", "virtio_scsi", "xhci-pci", "usb-storage", "nvme", "configfs"}

func TestBoardInQEMU(t *testing.T) {
	kdir := os.Getenv("EVIDENCED_QEMU_KERNEL")
	if kdir == "" {
		t.Skip("EVIDENCED_QEMU_KERNEL is not set: run `make qemu-test`")
	}
	qemu := testenv.Tool(t, "qemu-system-x86_64")
	gpioSim := os.Getenv("EVIDENCED_GPIO_SIM")
	if gpioSim == "" {
		t.Fatal("EVIDENCED_GPIO_SIM is not set: the gpio-sim module scripts/gpio-sim.sh builds (run `make qemu-test`)")
	}
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "modules", "lib64", "lib/x86_64-linux-gnu"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(root, "init"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build guest: %v\n%s", err, out)
	}
	// go-udev is cgo: the binary's shared libraries go in at their paths.
	out, err := exec.Command("ldd", filepath.Join(root, "init")).Output()
	if err != nil {
		t.Fatalf("ldd: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				testenv.CopyFile(t, f, filepath.Join(root, f))
			}
		}
	}
	vmlinuz, mods := testenv.KernelFiles(t, kdir, qemuBoardModules)
	var g qemuGuest
	for i, m := range mods {
		name := fmt.Sprintf("%02d-%s", i, filepath.Base(m))
		testenv.CopyFile(t, m, filepath.Join(root, "modules", name))
		g.Modules = append(g.Modules, "/modules/"+name)
	}
	// gpio-sim after configfs, which it needs.
	testenv.CopyFile(t, gpioSim, filepath.Join(root, "modules", "99-gpio-sim.ko"))
	g.Modules = append(g.Modules, "/modules/99-gpio-sim.ko")
	// The topology: fixed PCI addresses make the attach points known in advance.
	disks := []qemuDisk{
		{Port: "SATA1", Attach: "pci-0000:00:05.0-ata-1", Model: "EVD QEMU SATA DISK 1", Serial: "EVDSATA0001", devices: []string{
			"-device", "ahci,id=ahci,addr=0x5", "-device", "ide-hd,drive=%s,bus=ahci.0,model=EVD QEMU SATA DISK 1,serial=EVDSATA0001"}},
		{Port: "SAS1", Attach: "pci-0000:00:06.0-scsi-0:0:0:0", Model: "EVD SASDISK", Serial: "EVDSAS0001", devices: []string{
			"-device", "virtio-scsi-pci,id=vs,addr=0x6", "-device", "scsi-hd,drive=%s,bus=vs.0,channel=0,scsi-id=0,lun=0,vendor=EVD,product=SASDISK,serial=EVDSAS0001"}},
		{Port: "USB1", Attach: "pci-0000:00:07.0-usb-0:1:1.0", Model: "EVD USBDISK", Serial: "EVDUSB0001", devices: []string{
			"-device", "qemu-xhci,id=xhci,addr=0x7", "-device", "usb-bot,id=ub,bus=xhci.0,port=1", "-device", "scsi-hd,drive=%s,bus=ub.0,scsi-id=0,lun=0,vendor=EVD,product=USBDISK,serial=EVDUSB0001"}},
		{Port: "NVME1", Attach: "pci-0000:00:08.0-nvme-1", Model: "QEMU NVMe Ctrl", Serial: "EVDNVME0001", devices: []string{
			"-device", "nvme,drive=%s,serial=EVDNVME0001,addr=0x8"}},
	}
	args := []string{"-m", "768", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-kernel", vmlinuz,
		// Every write to a GPIO line is traced on the console, for the power harness to follow.
		"-append", "console=ttyS0 panic=-1 quiet loglevel=5 trace_event=gpio:gpio_value tp_printk EVIDENCED_QEMU_GUEST=1 -- -test.run=^TestBoardGuest$ -test.v"}
	images := map[string]string{}
	image := func(port string, i int) (string, string) {
		img := filepath.Join(tmp, strings.ToLower(port)+".img")
		b := make([]byte, 16<<20)
		for j := range b {
			b[j] = byte(j*7 + i + j>>9)
		}
		if err := os.WriteFile(img, b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(b)
		images[port] = img
		return img, hex.EncodeToString(sum[:])
	}
	g.GPIODisk = gpioPort
	var gpioImg string
	gpioImg, g.GPIODisk.MD5 = image(gpioPort.Port, len(disks))
	for i, d := range disks {
		var img string
		img, d.MD5 = image(d.Port, i)
		id := fmt.Sprintf("d%d", i)
		args = append(args, "-drive", "if=none,id="+id+",format=raw,file="+img)
		for _, a := range d.devices {
			if strings.Contains(a, "%s") {
				a = fmt.Sprintf(a, id)
			}
			args = append(args, a)
		}
		g.Disks = append(g.Disks, d)
	}
	args = append(args, gpioDeviceArgs(gpioImg)...) // after the HBA it hangs on
	b, _ := json.Marshal(g)
	if err := os.WriteFile(filepath.Join(root, "guest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(tmp, "initrd.cpio")
	testenv.PackInitramfs(t, root, initrd)
	// Drives for hot-plug: a USB stick, an NVMe drive and a SCSI disk (target 1 of the virtio-scsi
	// HBA whose target 0 is SAS1), added and removed through QMP when the guest says it is ready.
	hot := map[string]string{}
	for _, name := range []string{"hotusb", "hotnvme", "hotscsi"} {
		hot[name] = filepath.Join(tmp, name+".img")
		if err := os.WriteFile(hot[name], make([]byte, 8<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-drive", "if=none,id="+name+",format=raw,file="+hot[name])
	}
	qmpSock := filepath.Join(tmp, "qmp.sock")
	args = append(args, "-initrd", initrd, "-qmp", "unix:"+qmpSock+",server=on,wait=off")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, qemu, args...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	harness := newPowerHarness(t, qmpSock)
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		console.WriteString(line + "\n")
		harness.console(line)
		switch {
		case strings.Contains(line, "HOTPLUG-READY"):
			qmp(t, qmpSock, `{"execute":"device_add","arguments":{"driver":"usb-storage","bus":"xhci.0","port":"2","drive":"hotusb","id":"hotusb","serial":"EVDHOTUSB1"}}`)
			qmp(t, qmpSock, `{"execute":"device_add","arguments":{"driver":"nvme","drive":"hotnvme","id":"hotnvme","serial":"EVDHOTNVME1","addr":"0x9"}}`)
			qmp(t, qmpSock, `{"execute":"device_add","arguments":{"driver":"scsi-hd","bus":"vs.0","channel":0,"scsi-id":1,"lun":0,"drive":"hotscsi","id":"hotscsi","vendor":"EVD","product":"HOTSCSI","serial":"EVDHOTSCSI1"}}`)
		case strings.Contains(line, "UNPLUG-READY"):
			qmp(t, qmpSock, `{"execute":"device_del","arguments":{"id":"hotusb"}}`)
			qmp(t, qmpSock, `{"execute":"device_del","arguments":{"id":"hotnvme"}}`)
			qmp(t, qmpSock, `{"execute":"device_del","arguments":{"id":"hotscsi"}}`)
		}
	}
	err = cmd.Wait()
	t.Logf("guest console (%v):\n%s", time.Since(start).Round(time.Second), console.String())
	if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	if !strings.Contains(console.String(), "--- PASS: TestBoardGuest") {
		t.Fatal("the guest test did not pass")
	}
	// The line went low at board start, high, low, high; then the freeze, and the recovery's
	// power cycle: low, high.
	if got, want := strings.Join(harness.done(), " "), "del add del add freeze del add"; got != want {
		t.Errorf("power harness did %q, want %q", got, want)
	}
	for _, d := range append(g.Disks, g.GPIODisk) {
		if got := testenv.FileMD5(t, images[d.Port]); got != d.MD5 {
			t.Errorf("%s: the disk image changed in the guest (MD5 %s, was %s)", d.Port, got, d.MD5)
		}
	}
	for _, line := range strings.Split(console.String(), "\n") {
		if strings.Contains(line, "FIGURE ") {
			t.Log(line)
		}
	}
}

// qmp sends one command to QEMU's monitor socket and fails the test on an error answer.
func qmp(t *testing.T, sock, command string) {
	t.Helper()
	if err := qmpCall(sock, command); err != nil {
		t.Errorf("QMP: %v", err)
	}
}

// TestMain powers the QEMU guest off once the tests ran (init must not exit).
func TestMain(m *testing.M) { testenv.GuestMain(m) }

// TestBoardGuest runs as /init inside the QEMU guest only.
func TestBoardGuest(t *testing.T) {
	var g qemuGuest
	testenv.GuestConfig(t, "TestBoardInQEMU", "/guest.json", &g)
	testenv.GuestInit(t, g.Modules)
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "EVDQEMU"}
	for _, d := range g.Disks {
		desc.Ports = append(desc.Ports, board.PortDesc{Name: d.Port, Attach: d.Attach, Mode: "source"})
	}
	start := time.Now()
	bd, err := New(desc, Options{Source: "kernel"})
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := bd.Subscribe(ctx)
	for _, d := range g.Disks {
		p, _ := bd.Port(d.Port)
		for deadline := time.Now().Add(30 * time.Second); p.State() != hal.StateReady; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				disks, _ := ListDisks(os.DirFS("/sys"))
				for _, k := range disks {
					t.Logf("disk %s attach %+v (%v) model %q serial %q", k.Name, k.Attach, k.AttachErr, k.Model, k.Serial)
				}
				usb, _ := filepath.Glob("/sys/bus/usb/devices/*")
				hosts, _ := filepath.Glob("/sys/class/scsi_host/*")
				mods, _ := os.ReadFile("/proc/modules")
				t.Logf("usb devices %v\nscsi hosts %v\nmodules:\n%s", usb, hosts, mods)
				t.Fatalf("%s (%s): no drive after 30 s, state %s", d.Port, d.Attach, p.State())
			}
		}
		id := p.Drive().Identity()
		t.Logf("FIGURE %s identified %v after board start: %+v", d.Port, time.Since(start).Round(time.Millisecond), id)
		if id.Model != d.Model || id.Serial != d.Serial || id.Size != 16<<20 {
			t.Errorf("%s: identity %+v, want model %q serial %q", d.Port, id, d.Model, d.Serial)
		}
		dev := "/dev/" + p.Drive().(*Drive).disk.Name
		assertWriteBlocked(t, dev)
		r, err := p.Drive().Open()
		if err != nil {
			t.Fatal(err)
		}
		h := md5.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, r.Size())); err != nil {
			t.Fatalf("%s: read: %v", d.Port, err)
		}
		r.Close()
		if got := hex.EncodeToString(h.Sum(nil)); got != d.MD5 {
			t.Errorf("%s: read MD5 %s, image %s", d.Port, got, d.MD5)
		}
		// SMART through smart.go: QEMU's IDE and NVMe drives answer it; the SCSI ones do not.
		hh, err := p.Drive().Health(context.Background())
		t.Logf("FIGURE %s health: %+v %v", d.Port, hh, err)
		wantSMART := d.Port == "SATA1" || d.Port == "NVME1"
		if err != nil || hh.Supported != wantSMART || (wantSMART && !hh.Passed) {
			t.Errorf("%s: health %+v, %v (want supported=%v and passed)", d.Port, hh, err, wantSMART)
		}
		assertWriteBlocked(t, dev)
	}
	// The SATA disk leaves the kernel mid-read (what power-off does first): ErrGone within 2 s.
	p, _ := bd.Port("SATA1")
	drv := p.Drive().(*Drive)
	r, err := drv.Open()
	if err != nil {
		t.Fatal(err)
	}
	failed := readUntilError(r)
	time.Sleep(300 * time.Millisecond)
	gone := time.Now()
	if err := os.WriteFile("/sys/block/"+drv.disk.Name+"/device/delete", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		t.Logf("FIGURE SATA1 deleted mid-read: the read failed after %v (%v)", time.Since(gone).Round(time.Millisecond), err)
		if !errors.Is(err, hal.ErrGone) {
			t.Fatalf("read error %v, want hal.ErrGone", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("reads still succeed 2 s after the disk left the kernel")
	}
	r.Close()
	waitEvent(t, events, "SATA1", hal.Unplugged, 2*time.Second)
	// A rescan of the AHCI hosts brings it back: a real add uevent, plugged, identified again.
	rescan := time.Now()
	if err := rescanFor("/sys", "pci-0000:00:05.0-ata-1"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "SATA1", hal.Plugged, 10*time.Second)
	t.Logf("FIGURE SATA1 rescan to plugged: %v", time.Since(rescan).Round(time.Millisecond))
	if id := p.Drive().Identity(); id.Serial != "EVDSATA0001" {
		t.Fatalf("after the rescan: %+v", id)
	}
	assertWriteBlocked(t, "/dev/"+p.Drive().(*Drive).disk.Name)

	// A USB port without a power line: power off deauthorizes the device (the disk leaves the
	// kernel), power on authorizes it again (plugged, identified).
	up, _ := bd.Port("USB1")
	usbDev := up.Drive().(*Drive).disk.Name
	if err := up.PowerOff(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat("/sys/class/block/" + usbDev); return err != nil })
	on := time.Now()
	if err := up.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "USB1", hal.Plugged, 15*time.Second)
	t.Logf("FIGURE USB1 power on (authorized=1) to plugged: %v", time.Since(on).Round(time.Millisecond))
	if id := up.Drive().Identity(); id.Serial != "EVDUSB0001" {
		t.Fatalf("USB1 after power on: %+v", id)
	}

	// QMP hot-plug: the host adds a USB stick, an NVMe drive and a SCSI disk when told, and
	// removes them. SAS2 is the next target of SAS1's HBA: the disk must land there, not on SAS1.
	hb, err := New(board.Description{Kind: board.KindLinux, ApplianceID: "EVDQEMU", Ports: []board.PortDesc{
		{Name: "USB2", Attach: "pci-0000:00:07.0-usb-0:2:1.0", Mode: "target"},
		{Name: "NVME2", Attach: "pci-0000:00:09.0-nvme-1", Mode: "source"},
		{Name: "SAS1", Attach: "pci-0000:00:06.0-scsi-0:0:0:0", Mode: "source"},
		{Name: "SAS2", Attach: "pci-0000:00:06.0-scsi-0:0:1:0", Mode: "source"},
	}}, Options{Source: "kernel"})
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	hev := hb.Subscribe(ctx)
	sas1 := waitReady(t, hb, "SAS1", 10*time.Second)
	asked := time.Now()
	fmt.Println("HOTPLUG-READY")
	seen := map[string]time.Duration{}
	hotPorts := []string{"USB2", "NVME2", "SAS2"}
	for len(seen) < len(hotPorts) && time.Since(asked) < 30*time.Second {
		select {
		case e := <-hev:
			if e.Port == "SAS1" {
				t.Errorf("SAS1 got %s while a disk was hot-plugged on another target of its HBA", e.Kind)
			}
			if e.Kind == hal.Plugged {
				seen[e.Port] = time.Since(asked)
			}
		case <-time.After(time.Second):
		}
	}
	for _, c := range []struct{ port, model, serial string }{{"USB2", "QEMU QEMU HARDDISK", "EVDHOTUSB1"}, {"NVME2", "QEMU NVMe Ctrl", "EVDHOTNVME1"}, {"SAS2", "EVD HOTSCSI", "EVDHOTSCSI1"}} {
		hp, _ := hb.Port(c.port)
		if _, ok := seen[c.port]; !ok || hp.Drive() == nil {
			t.Fatalf("%s: no plugged event within 30 s of the QMP device_add", c.port)
		}
		id := hp.Drive().Identity()
		t.Logf("FIGURE %s QMP device_add to plugged: %v (%s %s)", c.port, seen[c.port].Round(time.Millisecond), id.Model, id.Serial)
		if id.Model != c.model || id.Serial != c.serial {
			t.Errorf("%s: identity %+v, want %s %s", c.port, id, c.model, c.serial)
		}
	}
	asked = time.Now()
	fmt.Println("UNPLUG-READY")
	left := map[string]time.Duration{}
	for len(left) < len(hotPorts) && time.Since(asked) < 30*time.Second {
		select {
		case e := <-hev:
			if e.Port == "SAS1" {
				t.Errorf("SAS1 got %s while a disk was unplugged from another target of its HBA", e.Kind)
			}
			if e.Kind == hal.Unplugged {
				left[e.Port] = time.Since(asked)
			}
		case <-time.After(time.Second):
		}
	}
	for _, port := range hotPorts {
		if _, ok := left[port]; !ok {
			t.Fatalf("%s: no unplugged event within 30 s of the QMP device_del", port)
		}
		t.Logf("FIGURE %s QMP device_del to unplugged: %v", port, left[port].Round(time.Millisecond))
		if hp, _ := hb.Port(port); hp.Drive() != nil || hp.State() == hal.StateReady {
			t.Errorf("%s: still has a drive after the unplug (state %s)", port, hp.State())
		}
	}
	if p, _ := hb.Port("SAS1"); p.Drive() == nil || p.Drive().Identity().Serial != sas1.Identity().Serial {
		t.Errorf("SAS1 lost its drive while SAS2's came and went")
	}
	guestGPIOPower(t, ctx, g.GPIODisk)
}

// waitReady waits for a port to identify its drive.
func waitReady(t *testing.T, b *Board, port string, max time.Duration) hal.Drive {
	t.Helper()
	p, ok := b.Port(port)
	if !ok {
		t.Fatalf("no port %s", port)
	}
	for deadline := time.Now().Add(max); p.State() != hal.StateReady; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no drive after %v, state %s", port, max, p.State())
		}
	}
	return p.Drive()
}
