package api

import (
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// pauseAt starts nothing: it polls a running task until its progress reaches pct, then pauses it.
func (e *env) pauseAt(key string, pct int) {
	e.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
		if p, _ := strconv.Atoi(m["progress"].(string)); p >= pct && m["state"] == "in-progress" {
			if m["taskStep"] != "imaging" {
				e.t.Fatalf("the task went past imaging before it could be paused: %v", m)
			}
			break
		}
		if m["state"] != "in-progress" || time.Now().After(deadline) {
			e.t.Fatalf("task did not reach %d%%: %v", pct, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := e.json("/api/stop-task?taskKey=" + url.QueryEscape(key)); st["state"] != "paused" {
		e.t.Fatalf("pause: %v", st)
	}
}

// slowEnv is newEnv plus SATA6, a 6 MiB drive read at 2 MB/s: slow enough to pause mid-way.
func slowEnv(t *testing.T) (*env, string) {
	disk := randomDisk(t, t.TempDir(), "slow6.img", 6<<20)
	return newEnv(t, board.PortDesc{Name: "SATA6", Mode: "source",
		Drive: &board.DriveDesc{Path: disk, Model: "Slow Six", Serial: "SLOW6", ReadMBps: 2}}), disk
}

// errorOf asserts a status and returns the error message.
func (e *env) errorOf(path string, want int) string {
	e.t.Helper()
	code, body := e.get(path)
	if code != want {
		e.t.Fatalf("GET %s: %d %s, want %d", path, code, body, want)
	}
	return body
}

// Item 1 of issue 11: a paused task whose image was moved away, while another drive's image took its
// name, is not resumed onto the other image: 409, and the other image keeps every byte (ewfverify).
func TestResumeRefusesAnotherTasksImage(t *testing.T) {
	testenv.Tool(t, "ewfverify")
	for _, typ := range []string{"e01", "raw", "aff4"} {
		t.Run(typ, func(t *testing.T) {
			e, disk := slowEnv(t)
			ext := map[string]string{"e01": ".E01", "raw": ".raw", "aff4": ".aff4"}[typ]
			tf := url.QueryEscape(e.targets)
			key := e.mustStart("/api/start-image?source=SATA6&targetType=" + typ + "&targetFile=R&targetFolder=" + tf)
			e.pauseAt(key, 10)
			img := filepath.Join(e.targets, "R"+ext)
			if err := os.Rename(img, img+".moved"); err != nil {
				t.Fatal(err)
			}
			// Another drive completes an image named R (its report goes elsewhere: R's report
			// folder is still the paused task's).
			other := e.mustStart("/api/start-image?source=SATA3&saveReport=false&targetType=" + typ + "&targetFile=R&targetFolder=" + tf)
			if m := e.wait(other); m["state"] != "completed" {
				t.Fatalf("other task: %v", m)
			}
			before := testenv.FileMD5(t, img)
			msg := e.errorOf("/api/resume-task?taskKey="+url.QueryEscape(key), 409)
			if !strings.Contains(msg, "not what it wrote") && !strings.Contains(msg, "not this task's") && !strings.Contains(msg, "not the paused task's image") {
				t.Fatalf("409 does not say the image is another's: %s", msg)
			}
			if got := testenv.FileMD5(t, img); got != before {
				t.Fatalf("the other image changed: MD5 %s, was %s", got, before)
			}
			if m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key)); m["state"] != "paused" {
				t.Fatalf("refused task: %v", m)
			}
			switch typ {
			case "e01":
				out, err := exec.Command("ewfverify", "-q", img).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "SUCCESS") {
					t.Fatalf("ewfverify of the other image: %v\n%s", err, out)
				}
			case "aff4":
				out, err := exec.Command(testenv.Tool(t, "unzip"), "-t", img).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "No errors detected") {
					t.Fatalf("unzip -t of the other image: %v\n%s", err, out)
				}
			}
			// Its own image back in place, the paused task resumes and completes.
			if err := os.Rename(img, img+".other"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(img+".moved", img); err != nil {
				t.Fatal(err)
			}
			e.json("/api/resume-task?taskKey=" + url.QueryEscape(key))
			if m := e.wait(key); m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != testenv.FileMD5(t, disk) {
				t.Fatalf("resumed task: %v", m)
			}
		})
	}
}

// Item 2: a paused task whose drive was swapped for another with the same model and serial is not
// resumed (409, the partial image unchanged); with its own drive back it resumes.
func TestResumeRefusesSwappedDrive(t *testing.T) {
	dir := t.TempDir()
	a, b := randomDisk(t, dir, "a.img", 8<<20), randomDisk(t, dir, "b.img", 8<<20)
	e := newEnv(t, board.PortDesc{Name: "SATA5", Mode: "source",
		Drive: &board.DriveDesc{Path: a, Model: "Twin Disk", Serial: "TWIN1", ReadMBps: 4}})
	key := e.mustStart("/api/start-image?source=SATA5&targetType=e01&targetFile=T&targetFolder=" + url.QueryEscape(e.targets))
	e.pauseAt(key, 25)
	img := filepath.Join(e.targets, "T.E01")
	before := testenv.FileMD5(t, img)
	for _, p := range []string{"/api/sim/unplug?port=SATA5", "/api/sim/plug?port=SATA5&model=Twin+Disk&serial=TWIN1&path=" + url.QueryEscape(b)} {
		if code, body := e.get(p); code != 200 {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	msg := e.errorOf("/api/resume-task?taskKey="+url.QueryEscape(key), 409)
	if !strings.Contains(msg, "another drive") {
		t.Fatalf("409 does not say the drive is another: %s", msg)
	}
	if testenv.FileMD5(t, img) != before {
		t.Fatal("the refused resume changed the partial image")
	}
	// A drive of another size is refused for its size.
	c := randomDisk(t, dir, "c.img", 6<<20)
	e.get("/api/sim/unplug?port=SATA5")
	e.get("/api/sim/plug?port=SATA5&model=Twin+Disk&serial=TWIN1&path=" + url.QueryEscape(c))
	if msg := e.errorOf("/api/resume-task?taskKey="+url.QueryEscape(key), 409); !strings.Contains(msg, "bytes") {
		t.Fatalf("size mismatch not named: %s", msg)
	}
	e.get("/api/sim/unplug?port=SATA5")
	e.get("/api/sim/plug?port=SATA5&model=Twin+Disk&serial=TWIN1&path=" + url.QueryEscape(a))
	e.json("/api/resume-task?taskKey=" + url.QueryEscape(key))
	if m := e.wait(key); m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != testenv.FileMD5(t, a) {
		t.Fatalf("resumed with its own drive: %v", m)
	}
}

// Item 3: two start-image with one targetFile on two drives at once: exactly one is accepted, every
// time, and the winner's report is its own.
func TestConcurrentStartsSameName(t *testing.T) {
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	for round := range 20 {
		name := "Y" + strconv.Itoa(round)
		var (
			wg    sync.WaitGroup
			codes [2]int
			keys  [2]string
		)
		for i, src := range []string{"SATA1", "SATA3"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], keys[i] = e.get("/api/start-image?source=" + src + "&targetType=raw&verify=false&targetFile=" + name + "&targetFolder=" + tf)
			}()
		}
		wg.Wait()
		win := 0
		if codes[1] == 200 {
			win = 1
		}
		if codes[win] != 200 || codes[1-win] != 409 {
			t.Fatalf("round %d: statuses %v (%v), want one 200 and one 409", round, codes, keys)
		}
		if m := e.wait(keys[win]); m["state"] != "completed" {
			t.Fatalf("round %d: winner %v", round, m)
		}
		html, err := os.ReadFile(filepath.Join(e.targets, name+"_RAW_report", "Report.html"))
		if err != nil || !strings.Contains(string(html), keys[win]) || !strings.Contains(string(html), "<td>completed</td>") {
			t.Fatalf("round %d: the winner's report is not its own (%v):\n%s", round, err, html)
		}
	}
}

// Item 4: an existing report folder is never emptied, replaced or followed: 409 for a given name,
// the next free number for an automatic one; diagnose numbering that restarts with a new state
// file never overwrites an older report. Item 5: a refused target folder creates nothing.
func TestReportFoldersNeverOverwrittenOrFollowed(t *testing.T) {
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	outside := filepath.Join(t.TempDir(), "outside")
	for _, d := range []string{filepath.Join(e.targets, "Z_RAW_report"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{filepath.Join(e.targets, "Z_RAW_report"), outside} {
		if err := os.WriteFile(filepath.Join(d, "Report.html"), []byte("older"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(e.targets, "W_RAW_report")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Z", "W"} {
		if msg := e.errorOf("/api/start-image?source=SATA1&targetType=raw&targetFile="+name+"&targetFolder="+tf, 409); !strings.Contains(msg, "never overwritten") {
			t.Fatalf("%s: %s", name, msg)
		}
		if _, err := os.Lstat(filepath.Join(e.targets, name+".raw")); err == nil {
			t.Fatalf("%s: a refused start left %s.raw", name, name)
		}
	}
	for _, d := range []string{filepath.Join(e.targets, "Z_RAW_report"), outside} {
		if ents, _ := os.ReadDir(d); len(ents) != 1 {
			t.Fatalf("%s now holds %d entries", d, len(ents))
		}
		if b, _ := os.ReadFile(filepath.Join(d, "Report.html")); string(b) != "older" {
			t.Fatalf("%s/Report.html was replaced", d)
		}
	}
	// An automatic name whose report folder is taken moves on to the next number.
	taken := filepath.Join(e.targets, "ST500LM012 HN-M500MBBS2RWJ9CD415935_0_RAW_report")
	if err := os.Mkdir(taken, 0o755); err != nil {
		t.Fatal(err)
	}
	key := e.mustStart("/api/start-image?source=SATA3&targetType=raw&targetFolder=" + tf)
	if m := e.wait(key); m["state"] != "completed" || m["target"] != filepath.Join(e.targets, "ST500LM012 HN-M500MBBS2RWJ9CD415935_1.raw") {
		t.Fatalf("automatic name beside a taken report folder: %v", m)
	}
	if ents, _ := os.ReadDir(taken); len(ents) != 0 {
		t.Fatalf("the taken report folder was written to: %v", ents)
	}

	// Item 5: ROOT/link/newdir/sub with link leading outside: 400, nothing created outside.
	if err := os.Symlink(outside, filepath.Join(e.targets, "link")); err != nil {
		t.Fatal(err)
	}
	e.errorOf("/api/start-image?source=SATA1&targetType=raw&targetFolder="+url.QueryEscape(e.targets+"/link/newdir/sub"), 400)
	if _, err := os.Lstat(filepath.Join(outside, "newdir")); err == nil {
		t.Fatal("a refused target folder created outside/newdir")
	}

	// Diagnose reports survive a reset of the state file.
	diag := url.QueryEscape(e.targets + "/diag")
	first := e.mustStart("/api/diagnose?source=SATA3&reportFolder=" + diag)
	e.wait(first)
	firstReport := filepath.Join(e.targets, "diag", "ST500LM012 HN-M500MBBS2RWJ9CD415935_diagnose_0", "Report.html")
	want, err := os.ReadFile(firstReport)
	if err != nil || !strings.Contains(string(want), first) {
		t.Fatalf("first diagnose report: %v", err)
	}
	fresh := &env{t: t, targets: e.targets, disks: e.disks}
	fresh.serve(t.TempDir(), board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{
		{Name: "SATA3", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA3"], Model: "ST500LM012 HN-M500MBB", Serial: "S2RWJ9CD415935"}},
	}}, io.Discard, "")
	second := fresh.mustStart("/api/diagnose?source=SATA3&reportFolder=" + diag)
	if m := fresh.wait(second); m["state"] != "completed" || !strings.HasSuffix(m["report"].(string), "_diagnose_1/Report.html") {
		t.Fatalf("diagnose after a state reset: %v", m)
	}
	if got, _ := os.ReadFile(firstReport); string(got) != string(want) {
		t.Fatal("the older diagnose report was overwritten")
	}
}

// Item 7: a paused task without a checkpoint (a record from before first checkpoints were taken at
// the start) restarts from byte 0 when its partial file provably holds this drive's data, removes
// it and says so in the log; an E01 it cannot prove is refused, untouched.
func TestResumeWithoutCheckpointRestarts(t *testing.T) {
	for _, typ := range []string{"raw", "e01"} {
		t.Run(typ, func(t *testing.T) {
			e, disk := slowEnv(t)
			key := e.mustStart("/api/start-image?source=SATA6&targetType=" + typ + "&targetFile=N&targetFolder=" + url.QueryEscape(e.targets))
			e.pauseAt(key, 10)
			rec, err := e.st.Task(key)
			if err != nil {
				t.Fatal(err)
			}
			rec.Checkpoint = nil
			if err := e.st.PutTask(rec); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(e.targets, "N"+map[string]string{"e01": ".E01", "raw": ".raw"}[typ])
			if typ == "e01" {
				before := testenv.FileMD5(t, img)
				if msg := e.errorOf("/api/resume-task?taskKey="+url.QueryEscape(key), 409); !strings.Contains(msg, "move it away") {
					t.Fatalf("409 without advice: %s", msg)
				}
				if testenv.FileMD5(t, img) != before {
					t.Fatal("the refused resume changed the partial E01")
				}
				if err := os.Rename(img, img+".moved"); err != nil {
					t.Fatal(err)
				}
			}
			e.json("/api/resume-task?taskKey=" + url.QueryEscape(key))
			m := e.wait(key)
			if m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != testenv.FileMD5(t, disk) {
				t.Fatalf("restarted task: %v", m)
			}
			log := e.reportMember(key, "Log.txt")
			if !strings.Contains(log, "no checkpoint yet: imaging restarts from byte 0") || (typ == "raw" && !strings.Contains(log, "removed the partial image")) {
				t.Fatalf("the log does not say it restarted:\n%s", log)
			}
		})
	}
}

// Item 6: a drive unplugged during start-logical fails the task (L01 and zip) as it fails a
// physical one: state failed, a message that says the drive is gone, a report that says incomplete.
func TestLogicalUnplugFails(t *testing.T) {
	corpus := testenv.Corpus(t)
	for _, typ := range []string{"l01", "zip"} {
		t.Run(typ, func(t *testing.T) {
			e := newEnv(t, board.PortDesc{Name: "SAS2", Mode: "source",
				Drive: &board.DriveDesc{Path: corpus, Model: "Slow Evidence", Serial: "SLOWC1", ReadMBps: 20}})
			key := e.mustStart("/api/start-logical?source=SAS2&targetType=" + typ + "&targetFolder=" + url.QueryEscape(e.targets+"/u"))
			for deadline := time.Now().Add(2 * time.Minute); ; {
				m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
				if p, _ := strconv.Atoi(m["progress"].(string)); m["taskStep"] == "copying" && p >= 10 {
					break
				}
				if m["state"] != "in-progress" || time.Now().After(deadline) {
					t.Fatalf("before unplug: %v", m)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if code, body := e.get("/api/sim/unplug?port=SAS2"); code != 200 {
				t.Fatalf("unplug: %d %s", code, body)
			}
			m := e.wait(key)
			if m["state"] != "failed" || !strings.Contains(m["message"].(string), "gone") || strings.Contains(m["message"].(string), "verified") {
				t.Fatalf("after unplug: %v", m)
			}
			if html := e.reportMember(key, "Report.html"); !strings.Contains(html, "logical image incomplete") {
				t.Fatalf("the report does not say incomplete:\n%s", html)
			}
		})
	}
}

// Item 7: a task paused (or killed) while verifying a complete image resumes by verifying it again,
// writing nothing, for every format.
func TestResumeDuringVerification(t *testing.T) {
	e := newEnv(t)
	for _, typ := range []string{"raw", "e01", "aff4"} {
		key := e.mustStart("/api/start-image?source=SATA1&targetType=" + typ + "&targetFile=V" + typ + "&targetFolder=" + url.QueryEscape(e.targets))
		done := e.wait(key)
		if done["state"] != "completed" {
			t.Fatalf("%s: %v", typ, done)
		}
		img := filepath.Join(e.targets, "V"+typ+"."+map[string]string{"raw": "raw", "e01": "E01", "aff4": "aff4"}[typ])
		before := testenv.FileMD5(t, img)
		// As the record stands after a kill -9 during verification.
		rec, err := e.st.Task(key)
		if err != nil {
			t.Fatal(err)
		}
		rec.State, rec.Step, rec.Message, rec.Completed = "paused", "verifying", "interrupted (power loss or restart)", time.Time{}
		if err := e.st.PutTask(rec); err != nil {
			t.Fatal(err)
		}
		e.json("/api/resume-task?taskKey=" + url.QueryEscape(key))
		m := e.wait(key)
		if m["state"] != "completed" || m["message"] != "completed and verified" || m["hashes"].(map[string]any)["MD5"] != done["hashes"].(map[string]any)["MD5"] {
			t.Fatalf("%s: re-verified task: %v", typ, m)
		}
		if testenv.FileMD5(t, img) != before {
			t.Fatalf("%s: the verification resume changed the image", typ)
		}
		if log := e.reportMember(key, "Log.txt"); !strings.Contains(log, "verifying the image again") {
			t.Fatalf("%s: the log does not say so:\n%s", typ, log)
		}
	}
}
