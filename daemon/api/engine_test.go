package api

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal/board"
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
