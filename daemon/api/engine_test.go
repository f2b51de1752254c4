package api

import (
	"crypto/md5"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// TestUnplugMidImage: a source that disappears fails its task within 2 s with a message that says
// so, the partial image is kept, and the port is free again.
func TestUnplugMidImage(t *testing.T) {
	for _, typ := range []string{"raw", "e01"} {
		t.Run(typ, func(t *testing.T) {
			// 4 MiB at 0.5 MB/s: time enough to unplug it mid-way, even on a loaded machine.
			disk := randomDisk(t, t.TempDir(), "slow.img", 4<<20)
			e := newEnv(t, board.PortDesc{Name: "SATA5", Mode: "source",
				Drive: &board.DriveDesc{Path: disk, Model: "Slower Disk", Serial: "SLOW5", ReadMBps: 0.5}})
			key := e.mustStart("/api/start-image?source=SATA5&targetType=" + typ + "&targetFolder=" + url.QueryEscape(e.targets+"/u"))
			for deadline := time.Now().Add(20 * time.Second); ; {
				m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
				// Reads are in flight from the start and all end near the end (4 at a time,
				// each throttled), so progress stays 0 for a while: being in the imaging step is
				// what "mid-task" means here.
				if m["taskStep"] == "imaging" {
					time.Sleep(time.Second)
					break
				}
				if m["state"] != "in-progress" || time.Now().After(deadline) {
					t.Fatalf("before unplug: %v", m)
				}
				time.Sleep(20 * time.Millisecond)
			}
			unplugged := time.Now()
			if code, body := e.get("/api/sim/unplug?port=SATA5"); code != 200 {
				t.Fatalf("unplug: %d %s", code, body)
			}
			var m map[string]any
			for {
				m = e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
				if m["state"] != "in-progress" {
					break
				}
				if time.Since(unplugged) > 2*time.Second {
					t.Fatalf("task still running 2 s after the unplug: %v", m)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if m["state"] != "failed" || !strings.Contains(m["message"].(string), "gone") {
				t.Fatalf("after unplug: %v", m)
			}
			t.Logf("failed %v after the unplug: %s", time.Since(unplugged).Round(time.Millisecond), m["message"])
			// The drive can come back and be imaged again on the same port.
			if code, body := e.get("/api/sim/plug?port=SATA5&path=" + url.QueryEscape(e.disks["SATA1"]) + "&model=Again&serial=A1"); code != 200 {
				t.Fatalf("plug: %d %s", code, body)
			}
			if code, body := e.get("/api/start-image?source=SATA5&targetType=raw&verify=false&targetFolder=" + url.QueryEscape(e.targets+"/again")); code != 200 {
				t.Fatalf("port not free after the failed task: %d %s", code, body)
			}
		})
	}
}

// TestFreezingDriveImaged: the engine's path through the freezing-drive recovery. A drive that
// freezes once is reset, power-cycled, recognised by its serial and imaged completely (MD5 of the
// image = MD5 of the drive); one that always freezes at an LBA gets its block recorded unreadable
// after two cycles and the image completes around it. Both logs tell every step.
func TestFreezingDriveImaged(t *testing.T) {
	dir := t.TempDir()
	once := randomDisk(t, dir, "once.img", 2<<20)
	always := randomDisk(t, dir, "always.img", 2<<20)
	e := newEnv(t,
		board.PortDesc{Name: "SATA6", Mode: "source", Drive: &board.DriveDesc{Path: once, Model: "Freezing Once", Serial: "FRZ1", FreezeAt: []int64{1500}}},
		board.PortDesc{Name: "SATA7", Mode: "source", Drive: &board.DriveDesc{Path: always, Model: "Freezing Always", Serial: "FRZ2", FreezeAt: []int64{2100}, FreezeTimes: 1000}},
	)
	key := e.mustStart("/api/start-image?source=SATA6&targetType=raw&targetFile=once&targetFolder=" + url.QueryEscape(e.targets+"/f"))
	m := e.wait(key)
	if bad, ok := m["unreadableSectors"]; m["state"] != "completed" || (ok && bad != float64(0)) {
		t.Fatalf("task: %v", m)
	}
	if got, want := testenv.FileMD5(t, filepath.Join(e.targets, "f", "once.raw")), testenv.FileMD5(t, once); got != want {
		t.Fatalf("image MD5 %s, drive %s", got, want)
	}
	if code, _ := e.get("/api/report?taskKey=" + url.QueryEscape(key)); code != 200 {
		t.Fatalf("report: %d", code)
	}
	logTxt, err := os.ReadFile(filepath.Join(e.targets, "f", "once_RAW_report", "Log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rep, html, pdf := reportFiles(t, filepath.Join(e.targets, "f", "once_RAW_report"))
	recovery := strings.Join(rep.Result.Recovery, "\n")
	for _, s := range []string{"did not return within 4s: the drive is frozen", "SCSI device reset", "power cycle 1 of 2", "same serial FRZ1"} {
		if !strings.Contains(string(logTxt), s) {
			t.Errorf("log lacks %q:\n%s", s, logTxt)
		}
		// The report's Result section lists the recovery's steps.
		if !strings.Contains(recovery, s) || !strings.Contains(html, s) {
			t.Errorf("the report's freezing-drive recovery lacks %q: %q", s, rep.Result.Recovery)
		}
	}
	contains(t, "Report.pdf", pdf, "Freezing-drive recovery", "SCSI device reset", "same serial FRZ1")

	key = e.mustStart("/api/start-image?source=SATA7&targetType=raw&targetFile=always&targetFolder=" + url.QueryEscape(e.targets+"/f"))
	m = e.wait(key)
	// The 1 MiB block holding LBA 2100 (LBAs 2048-4095) is given up.
	if m["state"] != "completed" || m["unreadableSectors"] != float64(2048) {
		t.Fatalf("task: %v", m)
	}
	src, _ := os.ReadFile(always)
	clear(src[2048*512 : 4096*512])
	sum := md5.Sum(src)
	if got := testenv.FileMD5(t, filepath.Join(e.targets, "f", "always.raw")); got != hex.EncodeToString(sum[:]) {
		t.Fatal("the image is not the drive with the given-up block zero-filled")
	}
	if code, _ := e.get("/api/report?taskKey=" + url.QueryEscape(key)); code != 200 {
		t.Fatalf("report: %d", code)
	}
	logTxt, _ = os.ReadFile(filepath.Join(e.targets, "f", "always_RAW_report", "Log.txt"))
	if !strings.Contains(string(logTxt), "LBA 2048-4095 still froze after 2 power cycles: recorded unreadable") {
		t.Errorf("log:\n%s", logTxt)
	}
}
