package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A Debian root as stage 1 sees it: /sbin -> usr/sbin (relative), /usr/sbin/init ->
// /lib/systemd/systemd (absolute, so it must resolve inside the new root, not the initramfs).
func TestHasInitResolvesInsideRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/sbin", "usr/lib/systemd"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Symlink("usr/sbin", filepath.Join(root, "sbin"))
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	os.Symlink("/lib/systemd/systemd", filepath.Join(root, "usr/sbin/init"))
	if err := hasInit(root, "/sbin/init"); err == nil {
		t.Fatal("init found although systemd is missing")
	}
	os.WriteFile(filepath.Join(root, "usr/lib/systemd/systemd"), []byte("#!"), 0o644)
	if err := hasInit(root, "/sbin/init"); err == nil {
		t.Fatal("a file that is not executable accepted as init")
	}
	os.Chmod(filepath.Join(root, "usr/lib/systemd/systemd"), 0o755)
	if err := hasInit(root, "/sbin/init"); err != nil {
		t.Fatal(err)
	}
	if p, err := resolveIn(root, "/sbin/init"); err != nil || p != "/usr/lib/systemd/systemd" {
		t.Fatalf("resolved %q, %v", p, err)
	}
	os.Symlink("loop", filepath.Join(root, "loop"))
	if _, err := resolveIn(root, "/loop"); err == nil {
		t.Fatal("a symlink loop resolved")
	}
}
