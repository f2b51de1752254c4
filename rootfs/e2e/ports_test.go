package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/aff4"
	"github.com/evidenced/evidenced/internal/testenv"
)

// qemuDisk is an evidence disk scripts/qemu-run.sh attaches at boot: its port in
// rootfs/board-qemu.json, its image file in $STATE/drives, and the model and serial set on QEMU's
// command line as the guest must report them (a SCSI disk's model is "VENDOR PRODUCT"; QEMU's NVMe
// controller has no model property).
type qemuDisk struct{ port, file, model, serial string }

var qemuDisks = []qemuDisk{
	{"SATA1", "sata1", "SanDisk SDSSDA120G", "QSATA0001"},
	{"SATA2", "sata2", "Samsung SSD 840 PRO Series", "QSATA0002"},
	{"SAS1", "sas", "SEAGATE ST600MM0088", "QSAS0001"},
	{"USB1", "usb", "WD Elements-2620", "QUSB0001"},
	{"NVME1", "nvme", "QEMU NVMe Ctrl", "QNVME0001"},
}

// qemuSourcePorts is the number of source ports in rootfs/board-qemu.json.
const qemuSourcePorts = 8

// hashFiles returns the MD5 of each *.img in dir, by name without the extension.
func hashFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	imgs, err := filepath.Glob(filepath.Join(dir, "*.img"))
	if err != nil || len(imgs) == 0 {
		t.Fatalf("no disk images in %s: %v", dir, err)
	}
	sums := map[string]string{}
	for _, img := range imgs {
		sums[strings.TrimSuffix(filepath.Base(img), ".img")] = testenv.FileMD5(t, img)
	}
	return sums
}

// unchanged fails the test unless every disk image file still has the hash it had before boot.
func unchanged(t *testing.T, dir string, before map[string]string, when string) {
	t.Helper()
	after := hashFiles(t, dir)
	for name, sum := range before {
		if after[name] != sum {
			t.Fatalf("%s: disk image %s.img changed: MD5 %s, before boot %s", when, name, after[name], sum)
		}
	}
	t.Logf("%s: PASS: the %d disk image files are unchanged (MD5 before boot = after)", when, len(before))
}

// sourceDrives is step 2: source-drives lists exactly the virtual disks, each on its port with
// QEMU's model and serial. Drives are identified in the background after boot, so the list is
// polled until it is complete.
func (v *vm) sourceDrives(t *testing.T) {
	t.Helper()
	var want []string
	for _, d := range qemuDisks {
		want = append(want, d.port+" "+d.model+" "+d.serial)
	}
	start := time.Now()
	var got struct {
		Scanned int      `json:"scannedSourcePorts"`
		Total   int      `json:"totalSourcePorts"`
		Found   []string `json:"foundSourceDevices"`
	}
	for {
		if err := json.Unmarshal([]byte(v.mustGet("/api/source-drives")), &got); err != nil {
			t.Fatalf("step 2: source-drives: %v", err)
		}
		slices.Sort(got.Found)
		if len(got.Found) >= len(want) || time.Since(start) > 2*time.Minute {
			break
		}
		time.Sleep(2 * time.Second)
	}
	slices.Sort(want)
	if !slices.Equal(got.Found, want) || got.Total != qemuSourcePorts {
		t.Fatalf("step 2: source-drives after %.1f s: %d source ports, found\n  %s\nwant %d ports and\n  %s",
			time.Since(start).Seconds(), got.Total, strings.Join(got.Found, "\n  "), qemuSourcePorts, strings.Join(want, "\n  "))
	}
	t.Logf("step 2: PASS: source-drives (%.1f s) lists %d of %d source ports' drives: %q", time.Since(start).Seconds(), len(got.Found), got.Total, got.Found)
}

type scanResult struct {
	State  string `json:"state"`
	Model  string `json:"model"`
	Serial string `json:"serial"`
}

// waitPort polls scan-port until the drive with serial is ready on port.
func (v *vm) waitPort(t *testing.T, port, serial string, timeout time.Duration) scanResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var r scanResult
	for {
		if err := json.Unmarshal([]byte(v.mustGet("/api/scan-port?"+url.QueryEscape(port))), &r); err != nil {
			t.Fatalf("scan-port %s: %v", port, err)
		}
		if r.State == "ready" && r.Serial == serial {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan-port %s: no drive %s after %s: %+v", port, serial, timeout, r)
		}
		time.Sleep(time.Second)
	}
}

// hotplug is step 4's first half: while step 3's tasks run, a USB disk (USB2) and an NVMe drive
// (NVME2) are plugged through QMP and found by scan-port.
func hotplug(t *testing.T, v *vm) {
	t.Helper()
	start := time.Now()
	if err := v.qmp("device_add", map[string]any{"driver": "usb-storage", "bus": "xhci.0", "port": "2", "drive": "hotusb", "id": "hotusb", "serial": "QHOTUSB1"}); err != nil {
		t.Fatalf("step 4: %v", err)
	}
	if err := v.qmp("device_add", map[string]any{"driver": "nvme", "bus": "rp2", "drive": "hotnvme", "id": "hotnvme", "serial": "QHOTNVME1"}); err != nil {
		t.Fatalf("step 4: %v", err)
	}
	usb := v.waitPort(t, "usb2", "QHOTUSB1", 2*time.Minute)
	nvme := v.waitPort(t, "nvme2", "QHOTNVME1", 2*time.Minute)
	t.Logf("step 4: PASS: hot-plugged during imaging, scan-port finds USB2 %q %s and NVME2 %q %s (%.1f s after device_add)",
		usb.Model, usb.Serial, nvme.Model, nvme.Serial, time.Since(start).Seconds())
}

// unplugMidImage is step 4's second half: the hot-plugged USB disk (a slow drive) is unplugged
// through QMP in the middle of imaging; its task must fail within 2 s, naming the port.
func unplugMidImage(t *testing.T, v *vm, target string) {
	t.Helper()
	key := strings.TrimSpace(v.getRetry("/api/start-image?source=USB2&targetType=e01&" + target))
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		c := v.check(key)
		if c.State == "in-progress" && c.TaskStep == "imaging" && c.Progress != "" && c.Progress != "0" {
			break
		}
		if c.State != "in-progress" && c.State != "pending" && c.State != "" || time.Now().After(deadline) {
			t.Fatalf("step 4: USB2 imaging did not get going: %+v", c)
		}
	}
	pulled := time.Now()
	if err := v.qmp("device_del", map[string]any{"id": "hotusb"}); err != nil {
		t.Fatalf("step 4: %v", err)
	}
	var c checkTask
	for {
		c = v.check(key)
		if c.State != "in-progress" && c.State != "pending" {
			break
		}
		if time.Since(pulled) > 30*time.Second {
			t.Fatalf("step 4: USB2 task still %q 30 s after the disk was unplugged: %+v", c.State, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(pulled)
	if c.State != "failed" || !regexp.MustCompile(`USB ?2\b`).MatchString(c.Message) {
		t.Fatalf("step 4: USB2 unplugged mid-image: task %q %q, want failed naming USB2", c.State, c.Message)
	}
	if took > 2*time.Second {
		t.Fatalf("step 4: USB2 task failed %.2f s after device_del, want within 2 s: %s", took.Seconds(), c.Message)
	}
	t.Logf("step 4: PASS: USB2 unplugged at %s%% of imaging, task failed %.2f s after device_del: %q", c.Progress, took.Seconds(), c.Message)
}

var reEWFMD5 = regexp.MustCompile(`MD5 hash calculated over data:\s+([0-9a-f]{32})`)

// verifyE01 checks the one E01 in dir with ewfverify and that its data's MD5 is want.
func verifyE01(t *testing.T, ewfverify, dir, want string) {
	t.Helper()
	e01s, _ := filepath.Glob(filepath.Join(dir, "*.E01"))
	if len(e01s) != 1 {
		t.Fatalf("E01 files in %s: %v", dir, e01s)
	}
	out, err := exec.Command(ewfverify, "-q", "-d", "md5", e01s[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("ewfverify %s: %v\n%s", e01s[0], err, out)
	}
	if m := reEWFMD5.FindSubmatch(out); m == nil || string(m[1]) != want {
		t.Fatalf("ewfverify %s: MD5 %q, disk image file %s\n%s", e01s[0], m, want, out)
	}
}

// verifyAFF4 checks the one AFF4 container in dir: every zip member's CRC (unzip -t), and the
// image stream read back through the AFF4 reader hashes to want, as does its stored MD5.
func verifyAFF4(t *testing.T, dir, want string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.aff4"))
	if len(files) != 1 {
		t.Fatalf("AFF4 files in %s: %v", dir, files)
	}
	out, err := exec.Command(testenv.Tool(t, "unzip"), "-t", files[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Fatalf("unzip -t %s: %v\n%s", files[0], err, out)
	}
	vol, err := aff4.OpenFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer vol.Close()
	imgs := vol.Images()
	if len(imgs) != 1 {
		t.Fatalf("%s: %d images", files[0], len(imgs))
	}
	r, err := imgs[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, imgs[0].Size)); err != nil {
		t.Fatalf("%s: reading the image stream: %v", files[0], err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want || imgs[0].Hashes()["MD5"] != want {
		t.Fatalf("%s: stream MD5 %s, stored %s, disk image file %s", files[0], got, imgs[0].Hashes()["MD5"], want)
	}
	if fi, err := os.Stat(files[0]); err == nil {
		t.Logf("AFF4 %s: %d bytes, stream %d bytes, MD5 %s", filepath.Base(files[0]), fi.Size(), imgs[0].Size, want)
	}
}
