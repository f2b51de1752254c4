package main

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/aff4"
	"github.com/evidenced/evidenced/internal/testenv"
)

// kill -9 in the middle of imaging: after restart the task is paused, and resuming it gives an
// image whose hashes equal the source's, raw, E01 and AFF4 (AFF4 first paused by SIGTERM and resumed).
func TestKillDashNineThenResume(t *testing.T) {
	src := testenv.Corpus(t)
	md5src := toolSum(t, "md5sum", src)
	for _, typ := range []string{"raw", "e01", "aff4"} {
		// 256 MiB at 40 MB/s: about 6 s, so the kill lands in the middle.
		t.Run(typ, func(t *testing.T) { killDashNineThenResume(t, src, md5src, typ, 40, waitHalfway) })
	}
}

// waitHalfway waits past the first checkpoints (every 3 s). An AFF4 task is first paused by a
// SIGTERM (graceful shutdown pauses it at a checkpoint) and resumed, so that the kill lands in a
// container that was already reopened once. It returns the daemon now running.
func waitHalfway(t *testing.T, d *daemon, key string) *daemon {
	if strings.HasSuffix(d.getJSON("/api/check-task?taskKey="+url.QueryEscape(key), 200)["target"].(string), ".aff4") {
		waitProgress(t, d, key, 25)
		d.stop()
		d = startDaemon(t, d.args...)
		if m := d.getJSON("/api/check-task?taskKey="+url.QueryEscape(key), 200); m["state"] != "paused" {
			t.Fatalf("after SIGTERM: %v", m)
		}
		if r := d.getJSON("/api/resume-task?taskKey="+url.QueryEscape(key), 200); r["state"] != "in-progress" {
			t.Fatalf("resume after SIGTERM: %v", r)
		}
		waitProgress(t, d, key, 60)
		return d
	}
	waitProgress(t, d, key, 50)
	return d
}

// waitProgress waits until the task is in progress at pct percent or more.
func waitProgress(t *testing.T, d *daemon, key string, pct int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := d.getJSON("/api/check-task?taskKey="+url.QueryEscape(key), 200)
		if p, _ := strconv.Atoi(m["progress"].(string)); p >= pct && m["state"] == "in-progress" {
			return
		}
		if time.Now().After(deadline) || m["state"] != "in-progress" {
			t.Fatalf("task did not progress: %v", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killDashNineThenResume images src from a drive reading at mbps MB/s, kills the daemon with
// SIGKILL once before returns, restarts it, and resumes the task to an image equal to the source.
func killDashNineThenResume(t *testing.T, src, md5src, typ string, mbps int, before func(*testing.T, *daemon, string) *daemon) {
	dir := t.TempDir()
	data, targets := filepath.Join(dir, "data"), filepath.Join(dir, "targets")
	board := writeBoard(t, dir, fmt.Sprintf(`{"name": "SATA1", "mode": "source", "drive": {"path": %q, "model": "Slow Disk", "serial": "SLOW1", "readMBps": %d}}`, src, mbps))
	args := []string{"--data-dir", data, "--board", board, "--target-root", targets, "--spin-up", "50ms"}
	d := startDaemon(t, args...)
	code, keyB := d.get("/api/start-image?source=SATA1&targetFolder=" + url.QueryEscape(targets) + "&targetType=" + typ)
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, keyB)
	}
	key := string(keyB)
	d = before(t, d, key)
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
	switch typ {
	case "raw":
		if got := toolSum(t, "md5sum", filepath.Join(targets, "Slow DiskSLOW1_0.raw")); got != md5src {
			t.Fatalf("resumed image MD5 %s, source %s", got, md5src)
		}
		return
	case "aff4":
		// The container is a sound zip (unzip checks every member's CRC), and our reader's
		// stream has the source's MD5 (the task's verification compared it too).
		img := filepath.Join(targets, "Slow DiskSLOW1_0.aff4")
		out, err := exec.Command(testenv.Tool(t, "unzip"), "-t", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No errors detected") {
			t.Fatalf("unzip -t of the resumed AFF4: %v\n%s", err, out)
		}
		if !strings.Contains(m["message"].(string), "verified") {
			t.Fatalf("resumed AFF4 not verified: %v", m)
		}
		if got := aff4StreamMD5(t, img); got != md5src {
			t.Fatalf("resumed AFF4 stream MD5 %s, source %s", got, md5src)
		}
		return
	}
	// libewf re-reads the resumed E01 and computes the MD5 of its media.
	out, err := exec.Command(testenv.Tool(t, "ewfverify"), "-d", "md5", filepath.Join(targets, "Slow DiskSLOW1_0.E01")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "MD5 hash calculated over data:\t\t"+md5src) {
		t.Fatalf("ewfverify of the resumed E01: %v\n%s", err, out)
	}
}

// Item 7 of issue 11: kill -9 0.3 s into a task, before its first periodic checkpoint: after the
// restart the task is paused, and it resumes (from its first checkpoint, taken before the key was
// answered) to an image equal to the source, raw, E01 and AFF4.
func TestKillDashNineBeforeFirstCheckpoint(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.img")
	b := make([]byte, 16<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	if err := os.WriteFile(src, b, 0o444); err != nil {
		t.Fatal(err)
	}
	md5src := toolSum(t, "md5sum", src)
	for _, typ := range []string{"raw", "e01", "aff4"} {
		t.Run(typ, func(t *testing.T) {
			killDashNineThenResume(t, src, md5src, typ, 8, func(_ *testing.T, d *daemon, _ string) *daemon { time.Sleep(300 * time.Millisecond); return d })
		})
	}
}

func aff4StreamMD5(t *testing.T, path string) string {
	t.Helper()
	v, err := aff4.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	imgs := v.Images()
	if len(imgs) != 1 {
		t.Fatalf("%s holds %d images", path, len(imgs))
	}
	ra, err := imgs[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(ra, 0, imgs[0].Size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
