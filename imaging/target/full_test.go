package target

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSMBShareFull points the share at a 16 MiB loop-mounted ext4 and writes past it.
func TestSMBShareFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop mount needs root")
	}
	tmp := t.TempDir()
	img, mnt := filepath.Join(tmp, "fs.img"), filepath.Join(tmp, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("truncate", "-s", "16M", img).CombinedOutput(); err != nil {
		t.Skip("truncate:", err, string(out))
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skip("mkfs.ext4:", err, string(out))
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skip("loop mount impossible here: ", strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	srv := startSMBD(t, mnt)
	tg, err := Open(context.Background(), srv.spec("full"), Config{Client: "smb"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	f, err := tg.Create("big.raw")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for i := 0; i < 32 && err == nil; i++ {
		_, err = f.Write(buf)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil || !strings.Contains(err.Error(), "//127.0.0.1/images") || !strings.Contains(err.Error(), "bytes free") {
		t.Fatalf("share full: %v", err)
	}
	t.Log(err)
}
