package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/testenv"
)

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// acquire of sources whose size is not a multiple of 512 gives E01 images libewf verifies; the
// summary keeps the true size and the source's hashes, and names the padded image's; acquire
// verifies without being asked.
func TestAcquireOddSizedSources(t *testing.T) {
	ewfverify := testenv.Tool(t, "ewfverify")
	dir := t.TempDir()
	for _, size := range []int{1, 511, 32767, 1000001} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i*7 + i/1000)
		}
		srcPath := filepath.Join(dir, "src"+strconv.Itoa(size))
		if err := os.WriteFile(srcPath, src, 0o444); err != nil {
			t.Fatal(err)
		}
		padded := append(append([]byte(nil), src...), make([]byte, (512-size%512)%512)...)
		out := filepath.Join(dir, "out", "img"+strconv.Itoa(size))
		cmd := exec.Command(builtBinary, "acquire", "--source", srcPath, "--format", "e01", "--out", out)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("acquire %d bytes: %v\n%s", size, err, stderr.String())
		}
		var sum acquireSummary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("summary: %v\n%s", err, stdout.String())
		}
		if sum.Verified == nil || !*sum.Verified {
			t.Fatalf("size %d: acquire did not verify by default: %s", size, stdout.String())
		}
		if sum.Bytes != int64(size) || sum.Hashes["MD5"] != md5hex(src) {
			t.Fatalf("size %d: summary bytes %d MD5 %s, want the source's %s", size, sum.Bytes, sum.Hashes["MD5"], md5hex(src))
		}
		if size%512 != 0 && (sum.ImageBytes != int64(len(padded)) || sum.ImageHashes["MD5"] != md5hex(padded) || !strings.Contains(sum.Note, "padded")) {
			t.Fatalf("size %d: image bytes %d hashes %v note %q; want %d bytes MD5 %s", size, sum.ImageBytes, sum.ImageHashes, sum.Note, len(padded), md5hex(padded))
		}
		vout, err := exec.Command(ewfverify, "-q", out+".E01").CombinedOutput()
		if err != nil || !strings.Contains(string(vout), "SUCCESS") || !strings.Contains(string(vout), md5hex(padded)) {
			t.Fatalf("size %d: ewfverify: %v\n%s", size, err, vout)
		}
	}
}

// A verification that fails makes acquire fail (the command exits 1 on any error).
func TestAcquireFailedVerify(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 31 / 7)
	}
	if err := os.WriteFile(src, data, 0o444); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, format := range []string{"e01", "aff4", "raw"} {
		comp := "none"
		if format == "raw" {
			comp = "fast"
		}
		args := []string{"--source", src, "--format", format, "--compression", comp, "--out", filepath.Join(dir, format, "img")}
		os.MkdirAll(filepath.Join(dir, format), 0o755)
		tampered := false
		// Flip one byte in the middle of the image: inside the stored chunk data of every format.
		err := acquire(args, log, func(files []string) {
			f, err := os.OpenFile(files[0], os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			b := make([]byte, 1)
			off := fi.Size() / 2
			f.ReadAt(b, off)
			b[0] ^= 0xff
			if _, err := f.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
			tampered = true
		})
		if !tampered || err == nil || !strings.Contains(err.Error(), "verif") {
			t.Fatalf("%s: acquire of a corrupted image returned %v", format, err)
		}
	}
}

// A refused AFF4 compression leaves no file behind; --help lists deflate.
func TestAcquireRefusedCompression(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, make([]byte, 4096), 0o444); err != nil {
		t.Fatal(err)
	}
	for format, ext := range map[string]string{"aff4": ".aff4", "e01": ".E01"} {
		out, err := exec.Command(builtBinary, "acquire", "--source", src, "--format", format, "--compression", "zstd", "--out", filepath.Join(dir, "img")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "zstd") {
			t.Fatalf("%s acquire with zstd: %v\n%s", format, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "img"+ext)); !os.IsNotExist(err) {
			t.Fatalf("a refused compression left img%s behind (%v)", ext, err)
		}
	}
	help, _ := exec.Command(builtBinary, "acquire", "-h").CombinedOutput()
	if !strings.Contains(string(help), "deflate") || !strings.Contains(string(help), "verify=false") {
		t.Fatalf("acquire -h does not list deflate and --verify=false:\n%s", help)
	}
}
