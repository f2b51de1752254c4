package api

import (
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/formats/aff4"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// E01 is the default type; case metadata comes from the linked case; ewfverify accepts the image.
func TestE01ImageWithCaseAndPauseResume(t *testing.T) {
	testenv.Tool(t, "ewfverify")
	e := newEnv(t)
	before := testenv.FileMD5(t, e.disks["SATA1"])
	e.json("/api/create-case?source=SATA4&caseId=CASE-7&caseExaminer=Ann&caseDescription=seized+laptop&evidenceId=EV-7")
	code, key := e.get("/api/start-image?source=SATA4&targetFolder=" + url.QueryEscape(e.targets) + "&e01Desc=override")
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, key)
	}
	time.Sleep(700 * time.Millisecond)
	if st := e.json("/api/stop-task?taskKey=" + url.QueryEscape(key)); st["state"] != "paused" {
		t.Fatalf("E01 pause: %v", st)
	}
	const pause = 1200 * time.Millisecond
	time.Sleep(pause)
	if r := e.json("/api/resume-task?taskKey=" + url.QueryEscape(key)); r["state"] != "in-progress" {
		t.Fatalf("resume: %v", r)
	}
	m := e.wait(key)
	// The report leaves the pause out of the duration and says how long it was.
	r, html, pdf := reportFiles(t, filepath.Dir(m["report"].(string)))
	a := r.Acquisition
	wall := a.Ended.Sub(a.Started).Seconds()
	if a.PausedSeconds < pause.Seconds() || a.PausedSeconds > wall || math.Abs(a.Seconds+a.PausedSeconds-wall) > 0.01 {
		t.Errorf("report: %.3f s working + %.3f s paused, %.3f s from start to end", a.Seconds, a.PausedSeconds, wall)
	}
	contains(t, "Report.html", html, "paused "+report.Duration(a.PausedSeconds)+", not counted")
	contains(t, "Report.pdf", pdf, "not counted")
	img := filepath.Join(e.targets, "Slow DiskSLOW1_0.E01")
	if m["state"] != "completed" || m["target"] != img || m["hashes"].(map[string]any)["MD5"] != before {
		t.Fatalf("E01 task: %v (want MD5 %s)", m, before)
	}
	out, err := exec.Command("ewfverify", "-q", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") || !strings.Contains(string(out), before) {
		t.Fatalf("ewfverify: %v\n%s", err, out)
	}
	info, _ := exec.Command("ewfinfo", img).CombinedOutput()
	for _, want := range []string{"CASE-7", "EV-7", "Ann", "override"} {
		if !strings.Contains(string(info), want) {
			t.Fatalf("ewfinfo lacks %q:\n%s", want, info)
		}
	}
}

func TestAFF4Image(t *testing.T) {
	e := newEnv(t)
	code, key := e.get("/api/start-image?source=SATA1&targetFolder=" + url.QueryEscape(e.targets) + "&targetType=aff4&aff4Hash=sha256&aff4Case=C9")
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, key)
	}
	m := e.wait(key)
	if m["state"] != "completed" || m["message"] != "completed" || m["verified"] != true {
		t.Fatalf("AFF4 task: %v", m)
	}
	want := m["hashes"].(map[string]any)["SHA256"]
	v, err := aff4.OpenFile(filepath.Join(e.targets, "SanDisk SDSSDA120G171108456213_0.aff4"))
	if err != nil {
		t.Fatal(err)
	}
	imgs := v.Images()
	if len(imgs) != 1 || strings.ToLower(imgs[0].Hashes()["SHA256"]) != want || want == nil {
		t.Fatalf("stored hashes %v, task %v", imgs[0].Hashes(), want)
	}
}

// AFF4 pauses at a checkpoint inside a bevy and resumes to a container equal to the source: the
// task's hashes and those stored in the container are the source's, the task's verification
// (our reader over the stream) matched, and unzip -t checks every member's CRC. deflate is
// accepted on the API and written with the AFF4 standard's IRI.
func TestAFF4PauseResume(t *testing.T) {
	unzip := testenv.Tool(t, "unzip")
	// 4 MiB read at 1 MB/s take four seconds, so the pause lands mid-image.
	disk := randomDisk(t, t.TempDir(), "slow.img", 4<<20)
	e := newEnv(t, board.PortDesc{Name: "SATA6", Mode: "source", Drive: &board.DriveDesc{Path: disk, Model: "Slow Disk", Serial: "SLOW1", ReadMBps: 1}})
	before := testenv.FileMD5(t, disk)
	code, key := e.get("/api/start-image?source=SATA6&targetFolder=" + url.QueryEscape(e.targets) + "&targetType=aff4&aff4Comp=deflate")
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, key)
	}
	img := filepath.Join(e.targets, "Slow DiskSLOW1_0.aff4")
	time.Sleep(600 * time.Millisecond)
	if st := e.json("/api/stop-task?taskKey=" + url.QueryEscape(key)); st["state"] != "paused" {
		rep, _ := os.ReadFile(filepath.Join(e.targets, "Slow DiskSLOW1_0_AFF4_report", "Report.html"))
		t.Fatalf("AFF4 pause: %v\n%s", st, rep)
	}
	if m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key)); m["state"] != "paused" {
		t.Fatalf("paused task: %v", m)
	}
	if r := e.json("/api/resume-task?taskKey=" + url.QueryEscape(key)); r["state"] != "in-progress" {
		t.Fatalf("resume: %v", r)
	}
	m := e.wait(key)
	if m["state"] != "completed" || m["message"] != "completed" || m["verified"] != true || m["hashes"].(map[string]any)["MD5"] != before {
		t.Fatalf("resumed AFF4 task: %v (want MD5 %s)", m, before)
	}
	v, err := aff4.OpenFile(img)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	imgs := v.Images()
	if len(imgs) != 1 || imgs[0].Hashes()["MD5"] != before {
		t.Fatalf("stored hashes %v, source MD5 %s", imgs[0].Hashes(), before)
	}
	out, err := exec.Command(unzip, "-t", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Fatalf("unzip -t: %v\n%s", err, out)
	}
	turtle, err := exec.Command(unzip, "-p", img, "information.turtle").Output()
	if err != nil || !strings.Contains(string(turtle), "<https://tools.ietf.org/html/rfc1951>") {
		t.Fatalf("turtle does not name the standard deflate IRI: %v\n%s", err, turtle)
	}
}
