package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// daemon is a running evidenced binary.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs *testenv.Buffer
	args []string // as started, without --listen: a restart passes them again
}

var builtBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evidenced-e2e")
	if err != nil {
		panic(err)
	}
	builtBinary = filepath.Join(dir, "evidenced")
	out, err := exec.Command("go", "build", "-o", builtBinary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build evidenced: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDaemon runs the built binary with args and waits for /healthz.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(builtBinary, append([]string{"--listen", addr}, args...)...)
	logs := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, base: "http://" + addr, logs: logs, args: args}
	t.Cleanup(func() { d.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(d.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon did not become healthy; log:\n%s", logs)
	return nil
}

func (d *daemon) kill() {
	if d.cmd.ProcessState == nil {
		d.cmd.Process.Signal(syscall.SIGKILL)
		d.cmd.Wait()
	}
}

// stop ends the daemon gracefully (SIGTERM).
func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.t.Fatal("daemon did not stop on SIGTERM")
	}
}

// get sends GET path (with its raw query) and returns status and body.
func (d *daemon) get(path string) (int, []byte) {
	d.t.Helper()
	resp, err := http.Get(d.base + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *daemon) getJSON(path string, want int) map[string]any {
	d.t.Helper()
	code, body := d.get(path)
	if code != want {
		d.t.Fatalf("GET %s: status %d, want %d; body %s", path, code, want, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		d.t.Fatalf("GET %s: not JSON: %s", path, body)
	}
	return m
}

// waitTask polls check-task until the task leaves pending/in-progress.
func (d *daemon) waitTask(key string, max time.Duration) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		m := d.getJSON("/api/check-task?taskKey="+url.QueryEscape(key), 200)
		if s := m["state"]; s != "in-progress" && s != "pending" {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatalf("task %s did not finish in %v; log:\n%s", key, max, d.logs)
	return nil
}

func toolSum(t *testing.T, tool, path string) string {
	t.Helper()
	out, err := exec.Command(tool, path).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", tool, path, err)
	}
	return strings.Fields(string(out))[0]
}

func writeBoard(t *testing.T, dir string, ports string) string {
	t.Helper()
	p := filepath.Join(dir, "board.json")
	if err := os.WriteFile(p, []byte(`{"kind": "sim", "applianceId": "EVD0042", "ports": [`+ports+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole user story of issue 2, through the built binary and plain HTTP, as the seed's examples do.
func TestEndToEndRawImagingSurvivesRestart(t *testing.T) {
	src := testenv.Corpus(t)
	md5Before, sha1Before := toolSum(t, "md5sum", src), toolSum(t, "sha1sum", src)
	dir := t.TempDir()
	data, targets := filepath.Join(dir, "data"), filepath.Join(dir, "targets")
	board := writeBoard(t, dir, fmt.Sprintf(`{"name": "SATA1", "mode": "source", "drive": {"path": %q, "model": "SanDisk SDSSDA120G", "serial": "171108456213"}},
		{"name": "SATA2", "mode": "source"}, {"name": "USB1", "mode": "target"}`, src))
	args := []string{"--data-dir", data, "--board", board, "--target-root", targets, "--spin-up", "100ms"}
	d := startDaemon(t, args...)

	sd := d.getJSON("/api/source-drives", 200)
	found := fmt.Sprint(sd["foundSourceDevices"])
	if !strings.Contains(found, "SATA1 SanDisk SDSSDA120G 171108456213") || sd["totalSourcePorts"] != float64(2) {
		t.Fatalf("source-drives: %v", sd)
	}
	c := d.getJSON("/api/create-case?source=SATA1+SanDisk+SDSSDA120G+171108456213&caseId=CASE-001&caseExaminer=Ann&evidenceId=EV-1", 200)
	if c["caseId"] != "CASE-001" {
		t.Fatalf("create-case: %v", c)
	}
	code, keyB := d.get("/api/start-image?source=SATA1%20SanDisk%20SDSSDA120G%20171108456213&targetFolder=" + url.QueryEscape(targets+"/lab") + "&targetType=raw")
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, keyB)
	}
	key := string(keyB)
	if !strings.HasPrefix(key, "image_0_SanDisk%20SDSSDA120G_171108456213_EVD0042_") || len(key) != len("image_0_SanDisk%20SDSSDA120G_171108456213_EVD0042_")+36 {
		t.Fatalf("task key %q does not follow the contract", key)
	}
	// A second task on the busy drive is a conflict.
	if code, body := d.get("/api/start-image?source=SATA1&targetFolder=" + url.QueryEscape(targets) + "&targetType=raw"); code != 409 {
		t.Fatalf("second task on a busy drive: %d %s", code, body)
	}
	m := d.waitTask(key, 3*time.Minute)
	if m["state"] != "completed" || m["progress"] != "100" || m["taskStep"] != "post-hash" {
		t.Fatalf("task ended %v", m)
	}
	hashes := m["hashes"].(map[string]any)
	if hashes["MD5"] != md5Before || hashes["SHA1"] != sha1Before {
		t.Fatalf("hashes %v, want MD5 %s SHA1 %s", hashes, md5Before, sha1Before)
	}
	img := filepath.Join(targets, "lab", "SanDisk SDSSDA120G171108456213_0.raw")
	if m["target"] != img || m["port"] != "SATA 1" || m["source"] != "SanDisk SDSSDA120G 171108456213" {
		t.Fatalf("check-task fields: %v", m)
	}
	if toolSum(t, "md5sum", img) != md5Before {
		t.Fatal("the image file's MD5 differs from the source's")
	}
	if _, err := os.Stat(filepath.Join(targets, "lab", "SanDisk SDSSDA120G171108456213_0_RAW_report", "Report.html")); err != nil {
		t.Fatalf("report beside the image: %v", err)
	}
	// The report archive.
	code, zb := d.get("/api/report?taskKey=" + url.QueryEscape(key))
	if code != 200 {
		t.Fatalf("report: %d %s", code, zb)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatalf("report is not a zip: %v", err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	if !names["Report.html"] || !names["Log.txt"] || !names["Hashes.txt"] {
		t.Fatalf("report zip holds %v", names)
	}

	// Restart: the task, its hashes and the case are still there.
	d.stop()
	d = startDaemon(t, args...)
	m = d.getJSON("/api/check-task?taskKey="+key, 200) // decoded form of the key works too
	if m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != md5Before {
		t.Fatalf("after restart: %v", m)
	}
	m = d.getJSON("/api/check-task?source=SATA1", 200)
	if m["taskKey"] != key {
		t.Fatalf("check-task by source after restart: %v", m)
	}
	sp := d.getJSON("/api/scan-port?sata1", 200)
	for sp["state"] == "identifying" {
		time.Sleep(50 * time.Millisecond)
		sp = d.getJSON("/api/scan-port?sata1", 200)
	}
	if sp["caseId"] != "CASE-001" || sp["evidenceId"] != "EV-1" || sp["state"] != "ready" {
		t.Fatalf("case link after restart: %v", sp)
	}
	// The next image of the same drive gets n=1 and never overwrites.
	code, keyB = d.get("/api/start-image?source=SATA1&targetFolder=" + url.QueryEscape(targets+"/lab") + "&targetType=raw&verify=false")
	if code != 200 || !strings.HasPrefix(string(keyB), "image_1_") {
		t.Fatalf("second image: %d %s", code, keyB)
	}
	d.waitTask(string(keyB), 3*time.Minute)
	if md5After := toolSum(t, "md5sum", src); md5After != md5Before {
		t.Fatalf("the source changed: MD5 %s -> %s", md5Before, md5After)
	}
}
