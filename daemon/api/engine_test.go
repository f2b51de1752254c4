package api

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestUnplugMidImage: a source that disappears fails its task within 2 s with a message that says
// so, the partial image is kept, and the port is free again.
func TestUnplugMidImage(t *testing.T) {
	for _, typ := range []string{"raw", "e01"} {
		t.Run(typ, func(t *testing.T) {
			e := newEnv(t)
			key := e.mustStart("/api/start-image?source=SATA4&targetType=" + typ + "&targetFolder=" + url.QueryEscape(e.targets+"/u"))
			for deadline := time.Now().Add(20 * time.Second); ; {
				m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
				if m["taskStep"] == "imaging" && m["progress"] != "0" {
					break
				}
				if m["state"] != "in-progress" || time.Now().After(deadline) {
					t.Fatalf("before unplug: %v", m)
				}
				time.Sleep(20 * time.Millisecond)
			}
			unplugged := time.Now()
			if code, body := e.get("/api/sim/unplug?port=SATA4"); code != 200 {
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
			if code, body := e.get("/api/sim/plug?port=SATA4&path=" + url.QueryEscape(e.disks["SATA1"]) + "&model=Again&serial=A1"); code != 200 {
				t.Fatalf("plug: %d %s", code, body)
			}
			if code, body := e.get("/api/start-image?source=SATA4&targetType=raw&verify=false&targetFolder=" + url.QueryEscape(e.targets+"/again")); code != 200 {
				t.Fatalf("port not free after the failed task: %d %s", code, body)
			}
		})
	}
}
