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

// RaceCorpusSize is how much of the corpus CorpusPrefix gives under the race detector: the MBR and
// the first 31 MiB of the ext4 partition (its metadata and files), hundreds of chunks for every
// parallel encoder and several segments of a small segment size.
const RaceCorpusSize = 32 << 20

// CorpusPrefix returns the corpus (as Corpus does) or, under the race detector (Race), a read-only
// copy of its first RaceCorpusSize bytes in a temporary folder of t. Tests that push the whole
// corpus through pure-Go compression, hashing or SMB run 5-10 times slower under the detector,
// which sees a race in the first megabytes of a stream as well as in the 200th: they take this
// path, and judge their output against the source it names as they judge the whole corpus.
func CorpusPrefix(t testing.TB) string {
	t.Helper()
	p := Corpus(t)
	if !Race {
		return p
	}
	src, err := os.Open(p)
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	defer src.Close()
	dst := filepath.Join(t.TempDir(), "corpus-prefix.img")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, io.LimitReader(src, RaceCorpusSize))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != RaceCorpusSize {
		t.Fatalf("copy the first %d bytes of the corpus: %d copied, %v", RaceCorpusSize, n, err)
	}
	return dst
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
