package api

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/recovery"
	"github.com/evidenced/evidenced/hal/sim"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/testenv"
	"github.com/evidenced/evidenced/store"
)

type env struct {
	t       *testing.T
	srv     *httptest.Server
	targets string
	disks   map[string]string // port -> image path
	st      *store.Store
	cfg     Config // of the API (ScanWait 1 s unless set)
	api     *Server
	zone    *time.Location // of the reports (nil: local)
}

func randomDisk(t *testing.T, dir, name string, size int) string {
	return testenv.RandomDisk(t, dir, name, size)
}

// newEnv starts the API on a sim board with the standard ports plus extra ones.
func newEnv(t *testing.T, extra ...board.PortDesc) *env {
	t.Helper()
	return newEnvCfg(t, Config{}, extra...)
}

// newEnvCfg is newEnv with an API configuration (user management, throttle, sessions).
func newEnvCfg(t *testing.T, cfg Config, extra ...board.PortDesc) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, targets: filepath.Join(dir, "targets"), disks: map[string]string{}, cfg: cfg}
	e.disks["SATA1"] = randomDisk(t, dir, "sata1.img", 4<<20)
	e.disks["SATA3"] = randomDisk(t, dir, "sata3.img", 2<<20)
	e.disks["USB1"] = randomDisk(t, dir, "usb1.img", 1<<20)
	desc := board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{
		{Name: "SATA1", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA1"], Model: "SanDisk SDSSDA120G", Serial: "171108456213"}},
		{Name: "SATA2", Mode: "source"},
		{Name: "SATA3", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA3"], Model: "ST500LM012 HN-M500MBB", Serial: "S2RWJ9CD415935", BadSectors: []int64{100, 101, 3000}}},
		{Name: "SATA4", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA1"], Model: "Slow Disk", Serial: "SLOW1", ReadMBps: 2}},
		{Name: "USB1", Mode: "target", Drive: &board.DriveDesc{Path: e.disks["USB1"], Model: "WDC WD10JMVW-11AJGS4", Serial: "WD-WXA1AA6PTY1K"}},
	}}
	desc.Ports = append(desc.Ports, extra...)
	e.serve(dir, desc, io.Discard, "")
	return e
}

// serve starts the daemon's parts on desc: the simulated board, the store (dir/state.db), the
// task manager (CIFS client as named, "" = automatic) and the HTTP server; logs go to logW.
func (e *env) serve(dir string, desc board.Description, logW io.Writer, client string) {
	t := e.t
	t.Helper()
	log := slog.New(slog.NewTextHandler(logW, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := sim.New(desc, sim.Options{SpinUp: 30 * time.Millisecond, Logger: log, PlugRoots: []string{os.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	e.serveBoard(dir, b, log, client)
}

// serveBoard is serve on a board already built (the real board's tests build theirs).
func (e *env) serveBoard(dir string, b hal.Board, log *slog.Logger, client string) {
	t := e.t
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	roots := []string{e.targets}
	tm, err := tasks.New(st, b, log, tasks.Config{ApplianceID: "EVD0001", TargetRoots: roots, Software: "evidenced test", TimeZone: e.zone,
		// Freezing drives (sim freezeAt) recover in test time: 4 s timeout (above the 2 s one read
		// of the slowest sim drive here takes), 50 ms off.
		Freeze: recovery.Config{Timeout: 4 * time.Second, ResetWait: 100 * time.Millisecond, OffTime: 50 * time.Millisecond, ReadyWait: 5 * time.Second, Cycles: 2},
		OpenTarget: func(ctx context.Context, spec target.Spec) (target.Target, error) {
			return target.Open(ctx, spec, target.Config{Roots: roots, Client: client})
		}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	if cfg.ScanWait == 0 {
		cfg.ScanWait = time.Second
	}
	srv, err := New(b, tm, st, log, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.api = srv
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { srv.Run(ctx); close(ran) }()
	e.srv = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		stop()
		<-ran
		tm.Close()
		b.Close()
		st.Close()
	})
}

func (e *env) get(path string) (int, string) {
	e.t.Helper()
	code, body, _ := e.getFull(path)
	return code, body
}

// getFull is get with the answer's headers.
func (e *env) getFull(path string) (int, string, http.Header) {
	e.t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (e *env) json(path string) map[string]any {
	e.t.Helper()
	code, body := e.get(path)
	if code != 200 {
		e.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return m
}

func (e *env) wait(key string) map[string]any {
	e.t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
		if m["state"] != "in-progress" && m["state"] != "pending" {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("task %s did not end", key)
	return nil
}

// Every endpoint, every documented error: exact status and a message naming what to fix.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	cases := []struct {
		name, path string
		code       int
		msg        string
	}{
		{"unknown endpoint", "/api/nope", 404, "no such endpoint"},
		{"source-drives ok", "/api/source-drives", 200, ""},
		{"scan-port no port", "/api/scan-port", 400, "name the port"},
		{"scan-port unknown", "/api/scan-port?SATA9", 404, "unknown port"},
		{"scan-port param form", "/api/scan-port?port=sata2", 200, ""},
		{"start-image no source", "/api/start-image?targetFolder=" + tf, 400, "source is required"},
		{"start-image no folder", "/api/start-image?source=SATA1", 400, "targetFolder is required"},
		{"start-image bad type", "/api/start-image?source=SATA1&targetFolder=" + tf + "&targetType=vmdk", 400, "e01, aff4, raw"},
		{"start-image bad bool", "/api/start-image?source=SATA1&targetFolder=" + tf + "&targetType=raw&saveReport=maybe", 400, "saveReport"},
		{"start-image bad segment", "/api/start-image?source=SATA1&targetFolder=" + tf + "&targetType=raw&e01Segment=-1", 400, "e01Segment"},
		{"start-image bad aff4Comp", "/api/start-image?source=SATA1&targetFolder=" + tf + "&targetType=raw&aff4Comp=zstd", 400, "aff4Comp"},
		{"start-image bad aff4Hash", "/api/start-image?source=SATA1&targetFolder=" + tf + "&targetType=aff4&aff4Hash=crc32", 400, "aff4Hash"},
		{"start-image bad file", "/api/start-image?source=SATA1&targetFolder=" + tf + "&targetType=raw&targetFile=../x", 400, "targetFile"},
		{"start-image unknown port", "/api/start-image?source=SATA9&targetFolder=" + tf + "&targetType=raw", 404, "unknown port"},
		{"start-image empty port", "/api/start-image?source=SATA2&targetFolder=" + tf + "&targetType=raw", 404, "no drive"},
		{"start-image wrong drive", "/api/start-image?source=SATA1+Other+Model+123&targetFolder=" + tf + "&targetType=raw", 409, "not Other Model 123"},
		{"start-image two words", "/api/start-image?source=SATA1+X&targetFolder=" + tf + "&targetType=raw", 400, "port alone"},
		{"start-image target port", "/api/start-image?source=USB1&targetFolder=" + tf + "&targetType=raw", 409, "target mode"},
		{"start-image outside roots", "/api/start-image?source=SATA1&targetFolder=/etc&targetType=raw", 400, "target root"},
		{"start-image relative", "/api/start-image?source=SATA1&targetFolder=images&targetType=raw", 400, "targetFolder"},
		{"start-logical no source", "/api/start-logical?targetFolder=" + tf, 400, "source is required"},
		{"diagnose no source", "/api/diagnose", 400, "source is required"},
		{"diagnose unknown port", "/api/diagnose?source=IDE1", 404, "unknown port"},
		{"check-task nothing", "/api/check-task", 400, "taskKey or source"},
		{"check-task unknown key", "/api/check-task?taskKey=image_0_x", 404, "no task"},
		{"check-task no task on port", "/api/check-task?source=SATA2", 404, "no task"},
		{"stop-task no key", "/api/stop-task", 400, "taskKey is required"},
		{"stop-task unknown", "/api/stop-task?taskKey=nope", 404, "no task"},
		{"resume-task unknown", "/api/resume-task?taskKey=nope", 404, "no task"},
		{"report no key", "/api/report", 400, "taskKey is required"},
		{"report unknown", "/api/report?taskKey=nope", 404, "no task"},
		{"create-case no drive", "/api/create-case?caseId=C", 400, "name the drive"},
		{"create-case unknown drive", "/api/create-case?model=X&serial=Y&caseId=C", 404, "no identified drive"},
		{"edit-case no id", "/api/edit-case", 400, "caseId is required"},
		{"edit-case unknown", "/api/edit-case?caseId=nope", 404, "no case"},
		{"set-port-mode bad mode", "/api/set-port-mode?port=SATA2&mode=both", 400, "source or target"},
		{"set-port-mode no port", "/api/set-port-mode?mode=source", 400, "port is required"},
		{"set-port-mode unknown port", "/api/set-port-mode?port=NVME1&mode=source", 404, "unknown port"},
		{"tasks bad state", "/api/tasks?state=done", 400, "accepted values"},
		{"login user mgmt off", "/login", 405, "POST"},
		{"sim plug missing", "/api/sim/plug?port=SATA2", 400, "path is required"},
		{"sim plug not a file", "/api/sim/plug?port=SATA2&path=/nonexistent&model=M&serial=S", 400, "plug"},
		{"sim unplug empty", "/api/sim/unplug?port=SATA2", 409, "unplug"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.get(c.path)
			if code != c.code {
				t.Fatalf("GET %s: status %d, want %d; body %s", c.path, code, c.code, body)
			}
			if c.code != 200 {
				var m map[string]string
				if err := json.Unmarshal([]byte(body), &m); err != nil || m["error"] == "" {
					t.Fatalf("error body is not {\"error\": ...}: %s", body)
				}
				if !strings.Contains(m["error"], c.msg) {
					t.Fatalf("error %q does not say %q", m["error"], c.msg)
				}
			}
		})
	}
}

func TestSourceDrivesAndScanPort(t *testing.T) {
	e := newEnv(t)
	m := e.json("/api/source-drives")
	if m["totalSourcePorts"] != float64(4) || m["scannedSourcePorts"] != float64(4) {
		t.Fatalf("counts: %v", m)
	}
	got := m["foundSourceDevices"].([]any)
	want := []string{"SATA1 SanDisk SDSSDA120G 171108456213", "SATA3 ST500LM012 HN-M500MBB S2RWJ9CD415935", "SATA4 Slow Disk SLOW1"}
	if len(got) != len(want) {
		t.Fatalf("found %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("found %v, want %v", got, want)
		}
	}
	sp := e.json("/api/scan-port?usb1")
	if sp["state"] != "identifying" && sp["state"] != "ready" {
		t.Fatalf("scan-port usb1: %v", sp)
	}
	for sp["state"] == "identifying" {
		time.Sleep(20 * time.Millisecond)
		sp = e.json("/api/scan-port?USB1")
	}
	if sp["state"] != "ready" || sp["isSource"] != false || sp["serial"] != "WD-WXA1AA6PTY1K" {
		t.Fatalf("scan-port usb1: %v", sp)
	}
	sp = e.json("/api/scan-port?SATA2")
	for sp["state"] == "identifying" {
		time.Sleep(20 * time.Millisecond)
		sp = e.json("/api/scan-port?SATA2")
	}
	if sp["state"] != "not-detected" {
		t.Fatalf("empty port: %v", sp)
	}
}

func TestRawImageBadSectorsAndReport(t *testing.T) {
	e := newEnv(t)
	before := testenv.FileMD5(t, e.disks["SATA3"])
	code, key := e.get("/api/start-image?source=SATA3&targetFolder=" + url.QueryEscape(e.targets+"/x") + "&targetType=raw&targetFile=bad")
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, key)
	}
	m := e.wait(key)
	if m["state"] != "completed" || m["unreadableSectors"] != float64(3) || m["message"] != "completed" || !strings.Contains(m["details"].(string), "3 unreadable sectors") {
		t.Fatalf("task: %v", m)
	}
	// The image is the zero-filled stream and the hashes are its hashes.
	src, _ := os.ReadFile(e.disks["SATA3"])
	for _, lba := range []int{100, 101, 3000} {
		clear(src[lba*512 : lba*512+512])
	}
	sum := md5.Sum(src)
	if m["hashes"].(map[string]any)["MD5"] != hex.EncodeToString(sum[:]) || testenv.FileMD5(t, filepath.Join(e.targets, "x", "bad.raw")) != hex.EncodeToString(sum[:]) {
		t.Fatalf("hashes %v are not the zero-filled stream's", m["hashes"])
	}
	code, body := e.get("/api/report?taskKey=" + url.QueryEscape(key))
	if code != 200 || !strings.HasPrefix(body, "PK") {
		t.Fatalf("report: %d", code)
	}
	html, _ := os.ReadFile(filepath.Join(e.targets, "x", "bad_RAW_report", "Report.html"))
	if !strings.Contains(string(html), "<td>100</td><td>2</td>") || !strings.Contains(string(html), "<td>3000</td><td>1</td>") {
		t.Fatalf("report does not list the unreadable sectors:\n%s", html)
	}
	// An existing image is never overwritten.
	if code, body := e.get("/api/start-image?source=SATA3&targetFolder=" + url.QueryEscape(e.targets+"/x") + "&targetType=raw&targetFile=bad"); code != 409 || !strings.Contains(body, "never overwritten") {
		t.Fatalf("overwrite: %d %s", code, body)
	}
	if testenv.FileMD5(t, e.disks["SATA3"]) != before {
		t.Fatal("the source changed")
	}
}

func TestStopResumeAndModes(t *testing.T) {
	e := newEnv(t)
	before := testenv.FileMD5(t, e.disks["SATA1"])
	// SATA4 reads at 2 MB/s: a 4 MiB disk takes two seconds.
	code, key := e.get("/api/start-image?source=SATA4&targetFolder=" + url.QueryEscape(e.targets) + "&targetType=raw")
	if code != 200 {
		t.Fatalf("start: %d %s", code, key)
	}
	if code, body := e.get("/api/set-port-mode?port=SATA4&mode=target"); code != 409 {
		t.Fatalf("mode change while busy: %d %s", code, body)
	}
	if sp := e.json("/api/scan-port?SATA4"); sp["state"] != "task-progress" {
		t.Fatalf("busy port: %v", sp)
	}
	if m := e.json("/api/source-drives"); strings.Contains(string(mustJSON(m)), "SLOW1") {
		t.Fatalf("busy drive listed: %v", m)
	}
	time.Sleep(500 * time.Millisecond)
	st := e.json("/api/stop-task?taskKey=" + url.QueryEscape(key))
	if st["state"] != "paused" {
		t.Fatalf("stop-task: %v", st)
	}
	if code, _ := e.get("/api/stop-task?taskKey=" + url.QueryEscape(key)); code != 409 {
		t.Fatalf("stopping a paused task: %d", code)
	}
	if m := e.json("/api/tasks?state=paused"); len(m["tasks"].([]any)) != 1 {
		t.Fatalf("paused tasks: %v", m)
	}
	if r := e.json("/api/resume-task?taskKey=" + url.QueryEscape(key)); r["state"] != "in-progress" {
		t.Fatalf("resume: %v", r)
	}
	m := e.wait(key)
	if m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != before {
		t.Fatalf("resumed task: %v (want MD5 %s)", m, before)
	}
	if testenv.FileMD5(t, filepath.Join(e.targets, "Slow DiskSLOW1_0.raw")) != before {
		t.Fatal("resumed image differs from the source")
	}
	if code, _ := e.get("/api/resume-task?taskKey=" + url.QueryEscape(key)); code != 409 {
		t.Fatalf("resume a completed task: %d", code)
	}
	if m := e.json("/api/set-port-mode?port=sata4&mode=Target"); m["mode"] != "target" {
		t.Fatalf("set-port-mode: %v", m)
	}
	if code, _ := e.get("/api/start-image?source=SATA4&targetFolder=" + url.QueryEscape(e.targets) + "&targetType=raw"); code != 409 {
		t.Fatalf("imaging a target port: %d", code)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestDiagnose(t *testing.T) {
	e := newEnv(t)
	before := testenv.FileMD5(t, e.disks["SATA3"])
	code, key := e.get("/api/diagnose?source=SATA3&reportFolder=" + url.QueryEscape(e.targets+"/diag"))
	if code != 200 || !strings.HasPrefix(key, "diagnose_0_ST500LM012%20HN-M500MBB_S2RWJ9CD415935_EVD0001_") {
		t.Fatalf("diagnose: %d %s", code, key)
	}
	m := e.wait(key)
	if m["state"] != "completed" || m["taskStep"] != "report" || m["message"] != "completed" || !strings.Contains(m["details"].(string), "3 unreadable") {
		t.Fatalf("diagnose task: %v", m)
	}
	resp, err := http.Get(e.srv.URL + "/api/report?taskKey=" + url.QueryEscape(key))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(resp.Header.Get("Content-Disposition"), key+".html") {
		t.Fatalf("diagnose report headers: %v", resp.Header)
	}
	for _, want := range []string{"Surface read test", "SMART", "S2RWJ9CD415935", "Unreadable sectors"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("report lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(e.targets, "diag")); err != nil {
		t.Fatalf("report folder copy: %v", err)
	}
	// Diagnose works on target ports too.
	code, key = e.get("/api/diagnose?source=USB1")
	if code != 200 {
		t.Fatalf("diagnose target drive: %d %s", code, key)
	}
	e.wait(key)
	if testenv.FileMD5(t, e.disks["SATA3"]) != before {
		t.Fatal("diagnose changed the source")
	}
}

func TestCases(t *testing.T) {
	e := newEnv(t)
	e.json("/api/source-drives")
	c := e.json("/api/create-case?model=SDSSDA120G&serial=171108456213&caseId=CASE-001&evidenceId=EV-001&caseExaminer=Ann&caseDescription=laptop")
	ev := c["evidence"].([]any)[0].(map[string]any)
	if c["caseId"] != "CASE-001" || c["caseExaminer"] != "Ann" || ev["model"] != "SanDisk SDSSDA120G" || ev["evidenceId"] != "EV-001" {
		t.Fatalf("create-case: %v", c)
	}
	if code, body := e.get("/api/create-case?source=SATA3&caseId=CASE-001"); code != 409 || !strings.Contains(body, "taken") {
		t.Fatalf("duplicate case id: %d %s", code, body)
	}
	c = e.json("/api/edit-case?caseId=CASE-001&caseLocation=Lab+2&evidenceId=EV-001&evidenceExaminer=Bob")
	if c["caseLocation"] != "Lab 2" || c["caseExaminer"] != "Ann" || c["evidence"].([]any)[0].(map[string]any)["evidenceExaminer"] != "Bob" {
		t.Fatalf("edit-case: %v", c)
	}
	if code, _ := e.get("/api/edit-case?caseId=CASE-001&evidenceId=EV-404&evidenceExaminer=X"); code != 404 {
		t.Fatalf("unknown evidence: %d", code)
	}
	if code, _ := e.get("/api/edit-case?caseId=CASE-001&evidenceId=EV-001"); code != 400 {
		t.Fatalf("evidenceId without examiner: %d", code)
	}
	if err := e.st.PutSetting(SettingAllowNonUniqueCaseNames, true); err != nil {
		t.Fatal(err)
	}
	if code, body := e.get("/api/create-case?source=SATA3&caseId=CASE-001"); code != 200 {
		t.Fatalf("non-unique allowed: %d %s", code, body)
	}
	sp := e.json("/api/scan-port?SATA1")
	if sp["caseId"] != "CASE-001" || sp["evidenceId"] != "EV-001" {
		t.Fatalf("scan-port case link: %v", sp)
	}
}
