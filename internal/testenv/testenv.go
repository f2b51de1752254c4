// Package testenv gives tests the shared things they need from the machine: the mkdisk corpus and
// the independent tools (libewf, SleuthKit, Samba) that judge our output. Under `make test`
// (EVIDENCED_REQUIRE_TOOLS=1) a missing one fails the test instead of skipping it, so CI cannot
// pass by skipping the checks that matter.
package testenv

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Required reports whether missing tools and corpus must fail tests rather than skip them.
func Required() bool { return os.Getenv("EVIDENCED_REQUIRE_TOOLS") == "1" }

// Tool returns the path of an external program, skipping (or failing under make test) without it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if Required() {
			t.Fatalf("%s is not installed (EVIDENCED_REQUIRE_TOOLS=1; scripts/test-deps.sh installs it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// Corpus returns the path of the 256 MiB mkdisk evidence disk (MBR: ext4, FAT32, NTFS).
func Corpus(t testing.TB) string {
	t.Helper()
	p := os.Getenv("EVIDENCED_CORPUS")
	if p == "" {
		if Required() {
			t.Fatal("EVIDENCED_CORPUS is not set")
		}
		t.Skip("EVIDENCED_CORPUS is not set: run through `make test`, which builds it with mkdisk.sh")
	}
	return p
}

// FileMD5 is the hex MD5 of a file: how tests prove a source was not written to, or compare an
// image with what was meant to go in it.
func FileMD5(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RandomDisk writes size random bytes to dir/name, read-only, and returns its path: a drive image
// whose every sector differs, so a misplaced or skipped sector changes the image's hash.
func RandomDisk(t testing.TB, dir, name string, size int) string {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o444); err != nil {
		t.Fatal(err)
	}
	return p
}
