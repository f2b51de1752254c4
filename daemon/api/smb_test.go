package api

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// smbEnv is newEnv's daemon with the user-space CIFS client chosen explicitly (the kernel one would
// be picked where cifs is loaded and we are root), its log kept, and SATA2 holding a 24 MiB disk,
// bigger than the 16 MiB share that fills up.
type smbEnv struct {
	*env
	log *testenv.Buffer
	db  string
}

func newSMBEnv(t *testing.T, extra ...board.PortDesc) *smbEnv {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, targets: filepath.Join(dir, "targets"), disks: map[string]string{}}
	e.disks["SATA1"] = randomDisk(t, dir, "sata1.img", 4<<20)
	e.disks["SATA2"] = randomDisk(t, dir, "sata2.img", 24<<20)
	e.disks["SATA3"] = randomDisk(t, dir, "sata3.img", 2<<20)
	desc := board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{
		{Name: "SATA1", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA1"], Model: "SanDisk SDSSDA120G", Serial: "171108456213"}},
		{Name: "SATA2", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA2"], Model: "Big Disk", Serial: "BIG24"}},
		{Name: "SATA3", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA3"], Model: "ST500LM012 HN-M500MBB", Serial: "S2RWJ9CD415935", BadSectors: []int64{100, 101, 3000}}},
	}}
	desc.Ports = append(desc.Ports, extra...)
	logBuf := &testenv.Buffer{}
	e.serve(dir, desc, logBuf, "smb")
	return &smbEnv{env: e, log: logBuf, db: filepath.Join(dir, "state.db")}
}

// shareQuery is the start-image query naming folder on srv with srv's credentials.
func shareQuery(srv *testenv.SMBD, folder, password string) string {
	return "targetFolder=" + url.QueryEscape(folder) + "&targetFolderLogin=" + url.QueryEscape(srv.User) +
		"&targetFolderPwd=" + url.QueryEscape(password) + "&mountOptions=" + url.QueryEscape(srv.MountOptions())
}

// cmdlineWatch scans every process's command line until stopped, for the life of a task: the
// password must never be on one (the kernel client is given it through mount(2) data, the user
// space client keeps it in memory).
type cmdlineWatch struct {
	stop chan struct{}
	done chan []string
}

func watchCmdlines(secret string) *cmdlineWatch {
	w := &cmdlineWatch{stop: make(chan struct{}), done: make(chan []string, 1)}
	go func() {
		var hits []string
		for {
			paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range paths {
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
					hits = append(hits, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
				}
			}
			select {
			case <-w.stop:
				w.done <- hits
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *cmdlineWatch) end(t *testing.T) {
	t.Helper()
	close(w.stop)
	if hits := <-w.done; len(hits) > 0 {
		t.Errorf("the password is on a process command line: %v", hits)
	}
}

// noLeak checks everywhere the password could end up: the daemon's log, the store's file (free
// pages included), the task list and each task's check-task and report archive, and the files on
// the share (reports and images).
func (e *smbEnv) noLeak(t *testing.T, secret, shareDir string) {
	t.Helper()
	forms := []string{secret}
	if q := url.QueryEscape(secret); q != secret {
		forms = append(forms, q)
	}
	check := func(where string, b []byte) {
		t.Helper()
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("the password appears in %s", where)
			}
		}
	}
	check("the daemon log", []byte(e.log.String()))
	db, err := os.ReadFile(e.db)
	if err != nil {
		t.Fatal(err)
	}
	check("the store file", db)
	_, list := e.get("/api/tasks")
	check("/api/tasks", []byte(list))
	for _, row := range e.json("/api/tasks")["tasks"].([]any) {
		key := url.QueryEscape(row.(map[string]any)["taskKey"].(string))
		_, ct := e.get("/api/check-task?taskKey=" + key)
		check("check-task", []byte(ct))
		if code, zb := e.get("/api/report?taskKey=" + key); code == 200 {
			for name, data := range unzip(t, zb) {
				check("/api/report "+name, data)
			}
		}
	}
	if shareDir != "" {
		filepath.WalkDir(shareDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				check(p, b)
			}
			return nil
		})
	}
}

func unzip(t *testing.T, data string) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(strings.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("report archive: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		out[f.Name] = b
	}
	return out
}

// stillServing: after a failed share, the daemon answers and images another drive to a local folder.
func (e *smbEnv) stillServing(t *testing.T) {
	t.Helper()
	if m := e.json("/api/source-drives"); len(m["foundSourceDevices"].([]any)) == 0 {
		t.Fatalf("source-drives after a failure: %v", m)
	}
	code, key := e.get("/api/start-image?source=SATA3&targetType=raw&targetFolder=" + url.QueryEscape(e.targets+"/after"))
	if code != 200 {
		t.Fatalf("local start-image after a failure: %d %s", code, key)
	}
	if m := e.wait(key); m["state"] != "completed" {
		t.Fatalf("local image after a failure: %v", m)
	}
}

// An E01 of SATA1 through the real handlers to a real Samba share: the task completes and
// verifies, libewf verifies the file in the share's folder with the source's MD5, check-task shows
// the share-relative paths of CONTRACT.md, the report folder is on the share, and the password is
// nowhere.
func TestSMBStartImageE01(t *testing.T) {
	ewfverify := testenv.Tool(t, "ewfverify")
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	e := newSMBEnv(t)
	want := testenv.FileMD5(t, e.disks["SATA1"])
	watch := watchCmdlines(srv.Password)
	code, key := e.get("/api/start-image?source=SATA1&targetType=e01&e01Case=LAB-1&" + shareQuery(srv, "//127.0.0.1/images/lab/case1", srv.Password))
	if code != 200 {
		watch.end(t)
		t.Fatalf("start-image: %d %s", code, key)
	}
	m := e.wait(key)
	watch.end(t)
	const name = "SanDisk SDSSDA120G171108456213_0"
	if m["state"] != "completed" || m["message"] != "completed" || m["verified"] != true || m["hashes"].(map[string]any)["MD5"] != want {
		t.Fatalf("task: %v (want MD5 %s)", m, want)
	}
	if m["target"] != "//127.0.0.1/images/lab/case1/"+name+".E01" || m["report"] != "//127.0.0.1/images/lab/case1/"+name+"_E01_report/Report.html" {
		t.Fatalf("check-task paths: target %q, report %q", m["target"], m["report"])
	}
	img := filepath.Join(share, "lab", "case1", name+".E01")
	out, err := exec.Command(ewfverify, "-q", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") || !strings.Contains(string(out), want) {
		t.Fatalf("ewfverify of the image on the share: %v\n%s", err, out)
	}
	for _, f := range []string{"Report.html", "Log.txt", "Hashes.txt"} {
		b, err := os.ReadFile(filepath.Join(share, "lab", "case1", name+"_E01_report", f))
		if err != nil || len(b) == 0 {
			t.Fatalf("report file %s on the share: %v", f, err)
		}
		if f == "Hashes.txt" && !strings.Contains(string(b), want) {
			t.Fatalf("Hashes.txt lacks the MD5: %s", b)
		}
	}
	e.noLeak(t, srv.Password, share)
}

// A wrong password and a share that does not exist are refused at once (400, no task), with a
// message saying which, never the password; the daemon goes on serving.
func TestSMBStartImageRefused(t *testing.T) {
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	e := newSMBEnv(t)
	const wrong = "Wrong-Pw-7f3a9c21-x"
	for _, c := range []struct {
		name, folder, pw, want string
	}{
		{"wrong password", "//127.0.0.1/images/lab", wrong, "access denied"},
		{"no such share", `\\127.0.0.1\nosuchshare\lab`, srv.Password, "nosuchshare"},
	} {
		watch := watchCmdlines(c.pw)
		start := time.Now()
		code, body := e.get("/api/start-image?source=SATA1&targetType=e01&" + shareQuery(srv, c.folder, c.pw))
		took := time.Since(start)
		watch.end(t)
		t.Logf("%s: %d in %v: %s", c.name, code, took.Round(time.Millisecond), strings.TrimSpace(body))
		if code != 400 || !strings.Contains(body, c.want) || strings.Contains(body, c.pw) || took > 5*time.Second {
			t.Fatalf("%s: %d after %v: %s", c.name, code, took, body)
		}
		e.noLeak(t, c.pw, share)
		e.stillServing(t)
	}
	if entries, _ := os.ReadDir(share); len(entries) != 0 {
		t.Fatalf("refused requests left files on the share: %v", entries)
	}
	e.noLeak(t, srv.Password, share)
}

// A share that fills up fails the task with a message naming the share and its free space; the
// partial image stays on the share, the report says the image is incomplete, and the daemon goes
// on serving.
func TestSMBShareFullTask(t *testing.T) {
	share := testenv.SmallFS(t, 16<<20)
	srv := testenv.StartSMBD(t, share)
	e := newSMBEnv(t)
	watch := watchCmdlines(srv.Password)
	start := time.Now()
	code, key := e.get("/api/start-image?source=SATA2&targetType=e01&" + shareQuery(srv, `\\127.0.0.1\images\full`, srv.Password))
	if code != 200 {
		watch.end(t)
		t.Fatalf("start-image: %d %s", code, key)
	}
	m := e.wait(key)
	watch.end(t)
	msg, _ := m["message"].(string)
	t.Logf("full share: task %s after %v: %s", m["state"], time.Since(start).Round(time.Millisecond), msg)
	if m["state"] != "failed" || !strings.Contains(msg, "//127.0.0.1/images") || !strings.Contains(msg, "bytes free") {
		t.Fatalf("task on a full share: %v", m)
	}
	const name = "Big DiskBIG24_0"
	if st, err := os.Stat(filepath.Join(share, "full", name+".E01")); err != nil || st.Size() < 8<<20 {
		t.Fatalf("the partial image is not kept on the share: %v %v", st, err)
	}
	code, zb := e.get("/api/report?taskKey=" + url.QueryEscape(key))
	if code != 200 {
		t.Fatalf("report: %d", code)
	}
	files := unzip(t, zb)
	for _, f := range []string{"Report.html", "Log.txt"} {
		if !strings.Contains(string(files[f]), "image incomplete: at most ") || !strings.Contains(string(files[f]), " of 25165824 source bytes written") {
			t.Fatalf("%s does not mark the image incomplete:\n%s", f, files[f])
		}
	}
	// What the log says is kept is what is on the share: the 16 MiB file system's worth.
	kept := regexp.MustCompile(`; (\d+) bytes of image files kept`).FindSubmatch(files["Log.txt"])
	if kept == nil {
		t.Fatalf("Log.txt does not say how much of the image is kept:\n%s", files["Log.txt"])
	}
	if n, _ := strconv.ParseInt(string(kept[1]), 10, 64); n < 1<<20 || n > 16<<20 {
		t.Fatalf("Log.txt says %d bytes of image are kept on a 16 MiB share", n)
	}
	// The share has no room for the report: none, or a whole one, but never a truncated one.
	if b, err := os.ReadFile(filepath.Join(share, "full", name+"_E01_report", "Report.html")); err == nil &&
		!strings.Contains(string(b), "image incomplete") {
		t.Fatalf("the report on the share does not mark the image incomplete:\n%s", b)
	}
	e.stillServing(t)
	e.noLeak(t, srv.Password, share)
}

// The bar: imaging to a loopback Samba share runs at >= 70% of the same image to a local
// folder. The 256 MiB corpus (under -race its first 32 MiB: testenv.CorpusPrefix) is imaged by
// real tasks (source reader, MD5+SHA1, format writer, target), E01 and raw, to a local folder and
// to the share in alternating rounds; the best round of each side is compared so that a burst of
// load elsewhere on a shared machine does not decide. Verification is off: it would measure
// reading back, not imaging.
//
// E01 is held to the bar everywhere. Raw is held to it only with 4 CPUs or more: a raw task is
// bound by MD5 on one core, and on a 2-core machine the loopback smbd (which on an appliance runs
// on the lab's server) takes its CPU from the hashing, so the ratio measures the test bed.
func TestSMBThroughputTask(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	corpus := testenv.CorpusPrefix(t)
	st, err := os.Stat(corpus)
	if err != nil {
		t.Fatal(err)
	}
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	e := newSMBEnv(t, board.PortDesc{Name: "SATA4", Mode: "source", Drive: &board.DriveDesc{Path: corpus, Model: "Corpus Disk", Serial: "CORPUS1"}})
	run := func(typ, folder, creds string) float64 {
		t.Helper()
		start := time.Now()
		code, key := e.get("/api/start-image?source=SATA4&verify=false&saveReport=false&targetType=" + typ + "&targetFolder=" + url.QueryEscape(folder) + creds)
		if code != 200 {
			t.Fatalf("start-image %s to %s: %d %s", typ, folder, code, key)
		}
		if m := e.wait(key); m["state"] != "completed" {
			t.Fatalf("%s to %s: %v", typ, folder, m)
		}
		return float64(st.Size()) / 1e6 / time.Since(start).Seconds()
	}
	creds := "&targetFolderLogin=" + srv.User + "&targetFolderPwd=" + url.QueryEscape(srv.Password) + "&mountOptions=" + url.QueryEscape(srv.MountOptions())
	const rounds = 5
	best := map[string][2]float64{}
	for round := range rounds {
		for _, typ := range []string{"e01", "raw"} {
			sub := fmt.Sprintf("r%d%s", round, typ)
			local := run(typ, e.targets+"/"+sub, "")
			os.RemoveAll(filepath.Join(e.targets, sub))
			smb := run(typ, "//127.0.0.1/images/"+sub, creds)
			os.RemoveAll(filepath.Join(share, sub))
			t.Logf("round %d %s: local %.0f MB/s, SMB %.0f MB/s, ratio %.2f", round+1, typ, local, smb, smb/local)
			b := best[typ]
			best[typ] = [2]float64{max(b[0], local), max(b[1], smb)}
		}
	}
	for _, typ := range []string{"e01", "raw"} {
		b := best[typ]
		t.Logf("%s best of %d: local %.0f MB/s, SMB %.0f MB/s, ratio %.2f", typ, rounds, b[0], b[1], b[1]/b[0])
		if typ == "raw" && runtime.NumCPU() < 4 {
			t.Logf("raw ratio not held to 0.70 on %d CPUs (smbd shares them with the hashing)", runtime.NumCPU())
			continue
		}
		if testenv.Race {
			// The race detector slows the Go SMB client and not the C deflate of a local E01: the
			// ratio measures the detector. make test runs this test again without it.
			t.Logf("%s ratio not held to 0.70 under -race", typ)
			continue
		}
		if b[1]/b[0] < 0.7 {
			t.Errorf("%s imaging to SMB runs at %.2f of local; the bar is 0.70", typ, b[1]/b[0])
		}
	}
}
