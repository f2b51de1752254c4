// Package e2e proves the appliance image through its forwarded API, as a lab's script would: it
// boots var/image/evidenced.img in QEMU (scripts/qemu-run.sh) and drives it over HTTP, with the guest
// agent only for what a lab does at the console (freezing the daemon, installing an update) and
// QEMU's monitor (QMP) for what an examiner does with the drives (plugging and pulling them).
// `make qemu-e2e` runs it; without EVIDENCED_QEMU_E2E it is skipped (it takes many minutes).
package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

const bootTimeout = 10 * time.Minute // TCG on a loaded shared machine

type checkTask struct {
	State    string            `json:"state"`
	Message  string            `json:"message"`
	Progress string            `json:"progress"`
	TaskStep string            `json:"taskStep"`
	Target   string            `json:"target"`
	Hashes   map[string]string `json:"hashes"`
}

func (v *vm) check(key string) checkTask {
	v.t.Helper()
	var c checkTask
	if err := json.Unmarshal([]byte(v.mustGet("/api/check-task?taskKey="+url.QueryEscape(key))), &c); err != nil {
		v.t.Fatal(err)
	}
	return c
}

func TestAppliance(t *testing.T) {
	if os.Getenv("EVIDENCED_QEMU_E2E") == "" {
		t.Skip("set EVIDENCED_QEMU_E2E=1 (make qemu-e2e): boots the appliance image in QEMU")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	newRoot := filepath.Join(repo, "var/image/rootfs-e2e-new.squashfs")
	brokenRoot := filepath.Join(repo, "var/image/rootfs-e2e-broken.squashfs")
	for _, p := range []string{filepath.Join(repo, "var/image/evidenced.img"), newRoot, brokenRoot} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v (make qemu-e2e builds it)", err)
		}
	}
	ewfverify := testenv.Tool(t, "ewfverify")
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	state := t.TempDir()
	v := &vm{t: t, repo: repo, state: state, apiPort: freePort(t), smbPort: srv.Port, serial: filepath.Join(state, "serial.log")}
	// The evidence drives' hashes before QEMU ever opens them: write-blocking is proven against these.
	drives := v.drives()
	orig := hashFiles(t, drives)
	hashes := map[string]string{}
	for _, d := range qemuDisks {
		hashes[d.port] = orig[d.file]
	}
	creds := "&targetFolderLogin=" + url.QueryEscape(srv.User) + "&targetFolderPwd=" + url.QueryEscape(srv.Password) +
		"&mountOptions=" + url.QueryEscape(fmt.Sprintf("port=%d", srv.Port))
	folder := func(sub string) string { return "targetFolder=" + url.QueryEscape("//10.0.2.2/"+srv.Share+"/"+sub) }
	defer func() {
		if t.Failed() {
			t.Logf("serial console (end):\n%s", v.serialTail())
		}
	}()

	// 1. Boot to API-ready.
	took := v.boot(true, bootTimeout)
	version, _ := v.health()
	t.Logf("step 1: API ready %.1f s after QEMU started (TCG), version %s", took.Seconds(), version)
	if out, code := v.exec("systemd-analyze verify evidenced.service evidenced-boot-ok.service 2>&1", 5*time.Minute); code != 0 || out != "" {
		t.Errorf("systemd-analyze verify: exit %d: %s", code, out)
	}
	score := v.mustExec("systemd-analyze security evidenced.service --no-pager 2>&1 | tail -1", 5*time.Minute)
	t.Logf("systemd-analyze security evidenced.service: %s; startup: %s", score, v.mustExec("systemd-analyze time 2>&1 | head -1", time.Minute))

	// 2. Every virtual disk on its port, with the model and serial QEMU gives it.
	t.Logf("step 2: board discover in the guest:\n%s", v.mustExec("evidenced board discover 2>&1", 2*time.Minute))
	v.sourceDrives(t)

	// 3 and 4. One disk per bus imaged to the share (AFF4 for NVMe, E01 for the others), while a USB
	// disk and an NVMe drive are hot-plugged; then the hot USB disk is unplugged mid-image.
	step3 := time.Now()
	keys := map[string]string{}
	for _, d := range []struct{ port, typ string }{{"SATA1", "e01"}, {"SAS1", "e01"}, {"USB1", "e01"}, {"NVME1", "aff4"}} {
		keys[d.port] = strings.TrimSpace(v.getRetry("/api/start-image?source=" + d.port + "&targetType=" + d.typ + "&" + folder(strings.ToLower(d.port)) + creds))
	}
	hotplug(t, v)
	for _, port := range []string{"SATA1", "SAS1", "USB1", "NVME1"} {
		c := waitDone(t, v, keys[port], 15*time.Minute)
		if c.State != "completed" {
			t.Fatalf("step 3: %s: task %s: %q %s", port, keys[port], c.State, c.Message)
		}
		want := hashes[port]
		if !strings.EqualFold(c.Hashes["MD5"], want) {
			t.Fatalf("step 3: %s: check-task MD5 %q, disk image file %s", port, c.Hashes["MD5"], want)
		}
		dir := filepath.Join(share, strings.ToLower(port))
		if port == "NVME1" {
			verifyAFF4(t, dir, want)
		} else {
			verifyE01(t, ewfverify, dir, want)
		}
	}
	t.Logf("step 3: PASS: SATA1, SAS1, USB1 (E01, ewfverify) and NVME1 (AFF4, unzip -t and read back) imaged to the share in %.1f s; MD5s equal the disk image files'", time.Since(step3).Seconds())
	unplugMidImage(t, v, folder("unplug")+creds)
	unchanged(t, drives, orig, "steps 3-4")

	// 5. Power loss mid-image: the task comes back paused, resumes, and the image verifies. SATA2 is
	// a slow drive (qemu-run.sh's SLOW_BPS), so the power can be cut mid-image past the first
	// checkpoints.
	key := strings.TrimSpace(v.getRetry("/api/start-image?source=SATA2&targetType=e01&" + folder("powerloss") + creds))
	deadline := time.Now().Add(5 * time.Minute)
	var imagingSince time.Time
	for {
		c := v.check(key)
		if c.State == "completed" || c.State == "failed" {
			t.Fatalf("step 5: task %s before the power loss could be simulated: %+v", c.State, c)
		}
		// Past the first checkpoints (every 3 s), well before the end.
		p, _ := strconv.Atoi(c.Progress)
		if c.State == "in-progress" && c.TaskStep == "imaging" && p >= 1 && imagingSince.IsZero() {
			imagingSince = time.Now()
		}
		if !imagingSince.IsZero() && time.Since(imagingSince) >= 5*time.Second {
			if p > 90 || c.TaskStep != "imaging" {
				t.Fatalf("step 5: imaging too fast to cut the power mid-image: %+v", c)
			}
			t.Logf("step 5: power cut at %s%%, %.1f s into imaging", c.Progress, time.Since(imagingSince).Seconds())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("step 5: imaging did not get going: %+v", c)
		}
		time.Sleep(300 * time.Millisecond)
	}
	v.kill()
	took = v.boot(false, bootTimeout)
	t.Logf("step 5: booted again in %.1f s", took.Seconds())
	if c := v.check(key); c.State != "paused" {
		t.Fatalf("step 5: after power loss the task is %q (%s), want paused", c.State, c.Message)
	}
	// The drive is identified again on its port after the boot (as an examiner's script waits for it).
	v.waitPort(t, "sata2", "QSATA0002", 2*time.Minute)
	v.getRetry("/api/resume-task?taskKey=" + url.QueryEscape(key) + creds)
	final := waitDone(t, v, key, 15*time.Minute)
	if final.State != "completed" {
		t.Fatalf("step 5: resumed task ended %q: %s", final.State, final.Message)
	}
	srcMD5 := hashes["SATA2"]
	verifyE01(t, ewfverify, filepath.Join(share, "powerloss"), srcMD5)
	if !strings.EqualFold(final.Hashes["MD5"], srcMD5) {
		t.Fatalf("step 5: check-task MD5 %q, disk image file %s", final.Hashes["MD5"], srcMD5)
	}
	journal := v.mustExec("journalctl -u evidenced -o cat TASK_KEY="+key+" | head -50", time.Minute)
	if !strings.Contains(journal, key) {
		t.Fatalf("step 5: journalctl TASK_KEY=%s found: %q", key, journal)
	}
	t.Logf("step 5: PASS: paused after power loss, resumed, ewfverify ok, MD5 %s = drive; journalctl TASK_KEY= finds %d lines", srcMD5, len(strings.Split(journal, "\n")))

	// 6. Watchdog: a frozen daemon is restarted by systemd within 2 x WatchdogSec.
	wd := v.mustExec("systemctl show -p WatchdogUSec --value evidenced", 2*time.Minute)
	wdSec, err := time.ParseDuration(strings.ReplaceAll(wd, "min", "m"))
	if err != nil {
		t.Fatalf("step 6: WatchdogUSec %q: %v", wd, err)
	}
	pid := v.mustExec("systemctl show -p MainPID --value evidenced", time.Minute)
	frozen := time.Now()
	v.mustExec("kill -STOP "+pid, time.Minute)
	var newPID string
	for {
		newPID = v.mustExec("systemctl show -p MainPID --value evidenced", time.Minute)
		if newPID != pid && newPID != "0" {
			if _, err := v.health(); err == nil {
				break
			}
		}
		if time.Since(frozen) > 4*wdSec {
			t.Fatalf("step 6: daemon (pid %s) not restarted %s after SIGSTOP", pid, time.Since(frozen))
		}
		time.Sleep(time.Second)
	}
	restarted := time.Since(frozen)
	if restarted > 2*wdSec {
		t.Errorf("step 6: restart took %s, more than 2 x WatchdogSec (%s)", restarted, wdSec)
	}
	// systemd's own line says why it restarted the daemon (the daemon's SIGABRT stack dump
	// mentions the watchdog too, so that is not enough).
	why, _ := v.exec("journalctl -u evidenced -o cat | grep \"Failed with result 'watchdog'\" | tail -1", time.Minute)
	if why == "" {
		t.Fatalf("step 6: the journal does not say systemd's watchdog restarted the daemon")
	}
	t.Logf("step 6: PASS: SIGSTOP pid %s, new pid %s API-ready %.1f s later (WatchdogSec %s); journal: %s", pid, newPID, restarted.Seconds(), wdSec, why)

	// 7. Update: a new root in the inactive slot, reboot, new version; then a root that cannot boot
	// falls back to the slot that works.
	install := func(image string) string {
		for _, p := range []string{image, image + ".sha256"} {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(share, filepath.Base(p)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return v.mustExec(fmt.Sprintf("mkdir -p /run/lab && (mountpoint -q /run/lab || mount -t cifs //10.0.2.2/%s /run/lab -o port=%d,username=%s,password=%s) && "+
			"evidenced update /run/lab/%s 2>&1 && evidenced update --status && umount /run/lab",
			srv.Share, srv.Port, srv.User, srv.Password, filepath.Base(image)), 10*time.Minute)
	}
	reboot := func() time.Duration {
		start := time.Now()
		// The guest agent goes down with the guest: the answer may never come.
		if _, _, err := v.execOnce("systemctl --no-block reboot", 30*time.Second); err != nil {
			t.Logf("step 7: reboot: %v", err)
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
			if _, err := v.health(); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("step 7: API still up 2 min after reboot")
			}
		}
		v.waitAPI(bootTimeout)
		return time.Since(start)
	}
	before := v.mustExec("evidenced update --status", time.Minute)
	out7 := install(newRoot)
	if !strings.Contains(out7, "try=") || strings.Contains(out7, "try=none") {
		t.Fatalf("step 7: after update the boot record has no slot on trial:\n%s", out7)
	}
	took = reboot()
	ver, _ := v.health()
	after := v.mustExec("evidenced update --status", time.Minute)
	if ver != "0.2.0-e2e" {
		t.Fatalf("step 7: /healthz version %q after the update, want 0.2.0-e2e", ver)
	}
	if c := v.check(key); c.State != "completed" {
		t.Fatalf("step 7: the task from before the update is %q: state not kept", c.State)
	}
	t.Logf("step 7: update PASS: %s -> %s; rebooted to API-ready in %.1f s, /healthz %s, task %s kept", before, after, took.Seconds(), ver, key)
	out7 = install(brokenRoot)
	took = reboot()
	ver, _ = v.health()
	fallback := v.mustExec("evidenced update --status", time.Minute)
	if ver != "0.2.0-e2e" || !strings.Contains(fallback, "try=none") {
		t.Fatalf("step 7: after a broken update: version %q, boot record %s", ver, fallback)
	}
	if serial, _ := os.ReadFile(v.serial); !strings.Contains(string(serial), "falling back to slot") {
		t.Fatalf("step 7: the serial console does not show stage 1 falling back")
	}
	t.Logf("step 7: fallback PASS: broken root installed (%s), stage 1 fell back, API-ready in %.1f s on %s, version %s", out7, took.Seconds(), fallback, ver)
	v.kill()
	unchanged(t, drives, orig, "the end")
}

// getRetry is mustGet for calls that reach the share: right after boot the API can answer before
// DHCP has configured the network (the daemon does not wait for it), as a lab's script would see.
func (v *vm) getRetry(path string) string {
	v.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body, err := v.get(path)
		if err == nil && code == http.StatusOK {
			return body
		}
		if time.Now().After(deadline) || !strings.Contains(body, "cannot connect") {
			v.t.Fatalf("GET %s: %d %v: %s", path, code, err, body)
		}
		time.Sleep(3 * time.Second)
	}
}

func waitDone(t *testing.T, v *vm, key string, timeout time.Duration) checkTask {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := v.check(key)
		switch c.State {
		case "completed", "failed", "stopped":
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not done after %s: %+v", key, timeout, c)
		}
		time.Sleep(2 * time.Second)
	}
}
