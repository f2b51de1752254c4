package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/hal/board"
	halinux "github.com/evidenced/evidenced/hal/linux"
	"github.com/evidenced/evidenced/internal/testenv"
)

// TestRealBoardLoopDrive: the daemon on the real board (kind linux) with a loop device as a
// source port's drive: scan-port finds it, raw and E01 images of it have the drive's MD5 (E01
// checked by ewfverify), diagnose runs, and after every task the drive's backing image is
// unchanged and a write through another descriptor is refused by the kernel.
func TestRealBoardLoopDrive(t *testing.T) {
	if os.Geteuid() != 0 {
		if testenv.Required() {
			t.Fatal("needs root for loop devices")
		}
		t.Skip("needs root for loop devices")
	}
	testenv.Tool(t, "losetup")
	ewfverify := testenv.Tool(t, "ewfverify")
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	ctl.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	img := testenv.RandomDisk(t, dir, "evidence.img", 24<<20)
	before := testenv.FileMD5(t, img)
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "EVD0001", Ports: []board.PortDesc{{Name: "SATA1", Attach: fmt.Sprintf("loop-%d", n), Mode: "source"}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := halinux.New(desc, halinux.Options{Source: "kernel", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, targets: filepath.Join(dir, "targets"), disks: map[string]string{}}
	e.serveBoard(dir, b, log, "")
	dev := fmt.Sprintf("/dev/loop%d", n)
	if out, err := exec.Command("losetup", dev, img).CombinedOutput(); err != nil {
		t.Fatalf("losetup: %v %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("losetup", "-d", dev).Run()
		exec.Command("blockdev", "--setrw", dev).Run()
	})
	var found string
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(found, "evidence.img"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("scan-port: %s", found)
		}
		_, found = e.get("/api/scan-port?port=SATA1")
	}
	check := func(after string) {
		t.Helper()
		if testenv.FileMD5(t, img) != before {
			t.Fatalf("the evidence changed after %s", after)
		}
		w, err := os.OpenFile(dev, os.O_WRONLY, 0)
		if err == nil {
			_, err = w.WriteAt(make([]byte, 512), 0)
			w.Close()
		}
		if err == nil {
			t.Fatalf("after %s: a write to the source drive went through", after)
		}
	}
	check("plug")
	key := e.mustStart("/api/start-image?source=SATA1&targetType=raw&targetFile=r&targetFolder=" + url.QueryEscape(e.targets+"/x"))
	if m := e.wait(key); m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != before {
		t.Fatalf("raw image: %v (drive MD5 %s)", m, before)
	}
	if got := testenv.FileMD5(t, filepath.Join(e.targets, "x", "r.raw")); got != before {
		t.Fatalf("raw image MD5 %s, drive %s", got, before)
	}
	check("raw image")
	key = e.mustStart("/api/start-image?source=SATA1&targetType=e01&targetFile=e&targetFolder=" + url.QueryEscape(e.targets+"/x"))
	if m := e.wait(key); m["state"] != "completed" || m["hashes"].(map[string]any)["MD5"] != before {
		t.Fatalf("E01 image: %v", m)
	}
	out, err := exec.Command(ewfverify, "-q", filepath.Join(e.targets, "x", "e.E01")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), before) {
		t.Fatalf("ewfverify: %v\n%s", err, out)
	}
	check("E01 image")
	key = e.mustStart("/api/diagnose?source=SATA1")
	if m := e.wait(key); m["state"] != "completed" {
		t.Fatalf("diagnose: %v", m)
	}
	check("diagnose")
}
