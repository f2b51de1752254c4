package main

import (
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// kill -9 in the middle of imaging: after restart the task is paused, and resuming it gives an
// image whose hashes equal the source's, raw and E01.
func TestKillDashNineThenResume(t *testing.T) {
	src := testenv.Corpus(t)
	md5src := toolSum(t, "md5sum", src)
	for _, typ := range []string{"raw", "e01"} {
		t.Run(typ, func(t *testing.T) { killDashNineThenResume(t, src, md5src, typ) })
	}
}

func killDashNineThenResume(t *testing.T, src, md5src, typ string) {
	dir := t.TempDir()
	data, targets := filepath.Join(dir, "data"), filepath.Join(dir, "targets")
	// 256 MiB at 40 MB/s: about 6 s, so the kill lands in the middle.
	board := writeBoard(t, dir, fmt.Sprintf(`{"name": "SATA1", "mode": "source", "drive": {"path": %q, "model": "Slow Disk", "serial": "SLOW1", "readMBps": 40}}`, src))
	args := []string{"--data-dir", data, "--board", board, "--target-root", targets, "--spin-up", "50ms"}
	d := startDaemon(t, args...)
	code, keyB := d.get("/api/start-image?source=SATA1&targetFolder=" + url.QueryEscape(targets) + "&targetType=" + typ)
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, keyB)
	}
	key := string(keyB)
	// Wait past the first checkpoints (every 3 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := d.getJSON("/api/check-task?taskKey="+url.QueryEscape(key), 200)
		if p, _ := strconv.Atoi(m["stepProgress"].(string)); p >= 50 && m["taskStep"] == "imaging" && m["state"] == "in-progress" {
			break
		}
		if time.Now().After(deadline) || m["state"] != "in-progress" {
			t.Fatalf("task did not progress: %v", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.kill() // SIGKILL: no chance to checkpoint
	d = startDaemon(t, args...)
	m := d.getJSON("/api/check-task?taskKey="+url.QueryEscape(key), 200)
	if m["state"] != "paused" || !strings.Contains(m["message"].(string), "interrupted") {
		t.Fatalf("after kill -9: %v", m)
	}
	r := d.getJSON("/api/resume-task?taskKey="+url.QueryEscape(key), 200)
	if r["state"] != "in-progress" {
		t.Fatalf("resume: %v", r)
	}
	m = d.waitTask(key, 2*time.Minute)
	if m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != md5src {
		t.Fatalf("resumed task: %v (source MD5 %s)", m, md5src)
	}
	if typ == "raw" {
		if got := toolSum(t, "md5sum", filepath.Join(targets, "Slow DiskSLOW1_0.raw")); got != md5src {
			t.Fatalf("resumed image MD5 %s, source %s", got, md5src)
		}
		return
	}
	// libewf re-reads the resumed E01 and computes the MD5 of its media.
	out, err := exec.Command(testenv.Tool(t, "ewfverify"), "-d", "md5", filepath.Join(targets, "Slow DiskSLOW1_0.E01")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "MD5 hash calculated over data:\t\t"+md5src) {
		t.Fatalf("ewfverify of the resumed E01: %v\n%s", err, out)
	}
}
