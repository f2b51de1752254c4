package aff4

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func refDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("EVIDENCED_AFF4_REF")
	if d == "" {
		d = filepath.Join("..", "..", "..", "shared", "aff4-reference")
	}
	if _, err := os.Stat(filepath.Join(d, "EXPECTED_HASHES.txt")); err != nil {
		t.Skipf("AFF4 reference images not found at %s (set EVIDENCED_AFF4_REF): %v", d, err)
	}
	return d
}

func newHash(name string) hash.Hash {
	switch name {
	case "MD5":
		return md5.New()
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	case "SHA512":
		return sha512.New()
	}
	return nil
}

// hashReader hashes size bytes of r with every named algorithm.
func hashReader(t testing.TB, r io.ReaderAt, size int64, names ...string) map[string]string {
	t.Helper()
	hs := map[string]hash.Hash{}
	ws := []io.Writer{}
	for _, n := range names {
		hs[n] = newHash(n)
		ws = append(ws, hs[n])
	}
	if _, err := io.Copy(io.MultiWriter(ws...), io.NewSectionReader(r, 0, size)); err != nil {
		t.Fatalf("reading: %v", err)
	}
	out := map[string]string{}
	for n, h := range hs {
		out[n] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

func TestReferenceImages(t *testing.T) {
	dir := refDir(t)
	exp, err := os.ReadFile(filepath.Join(dir, "EXPECTED_HASHES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		files []string
		// expected hashes of the Map (the disk image), from EXPECTED_HASHES.txt
		mapHashes map[string]string
		streams   int // image streams with stored hashes to verify
	}{
		{"Base-Linear", []string{"AFF4Std/Base-Linear.aff4"}, map[string]string{"SHA1": "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d", "MD5": "dd6dbda282e27fd0d196abd95f5c3e58"}, 1},
		{"Base-Linear-AllHashes", []string{"AFF4Std/Base-Linear-AllHashes.aff4"}, map[string]string{"SHA1": "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d"}, 1},
		{"Base-Allocated", []string{"AFF4Std/Base-Allocated.aff4"}, map[string]string{"SHA1": "e8650e89b262cf0b4b73c025312488d5a6317a26", "MD5": "54a02991ff289c238570893e2e16df86"}, 1},
		{"Base-Linear-ReadError", []string{"AFF4Std/Base-Linear-ReadError.aff4"}, map[string]string{"SHA1": "67e245a640e2784ead30c1ff1a3f8d237b58310f", "MD5": "1f1ae18d3610d3b4ad2d705e3af42f19"}, 1},
		{"Striped", []string{"AFF4Std/Striped/Base-Linear_1.aff4", "AFF4Std/Striped/Base-Linear_2.aff4"}, map[string]string{"SHA1": "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var paths []string
			for _, f := range c.files {
				paths = append(paths, filepath.Join(dir, f))
			}
			v, err := OpenSet(paths...)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			// Every expected hash must also be in EXPECTED_HASHES.txt, so a typo here cannot pass.
			for _, h := range c.mapHashes {
				if !strings.Contains(string(exp), h) {
					t.Fatalf("%s not in EXPECTED_HASHES.txt", h)
				}
			}
			// Image streams: computed == stored in turtle.
			checked := 0
			for _, s := range v.ImageStreams() {
				stored := v.StreamHashes(s)
				if len(stored) == 0 {
					continue
				}
				ra, size, err := v.OpenStream(s)
				if err != nil {
					t.Fatalf("stream %s: %v", s, err)
				}
				var names []string
				for n := range stored {
					names = append(names, n)
					if !strings.Contains(string(exp), stored[n]) && n != "SHA512" {
						t.Errorf("stored %s %s of %s not in EXPECTED_HASHES.txt", n, stored[n], s)
					}
				}
				got := hashReader(t, ra, size, names...)
				for n := range stored {
					if got[n] != stored[n] {
						t.Errorf("stream %s %s: computed %s, stored %s", s, n, got[n], stored[n])
					}
				}
				checked++
			}
			if checked != c.streams {
				t.Errorf("verified %d image streams, want %d", checked, c.streams)
			}
			ims := v.Images()
			if len(ims) != 1 {
				t.Fatalf("%d images, want 1", len(ims))
			}
			im := ims[0]
			if im.Size != 268435456 {
				t.Errorf("image size %d", im.Size)
			}
			ra, err := im.Open()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for n := range c.mapHashes {
				names = append(names, n)
			}
			got := hashReader(t, ra, im.Size, names...)
			for n, want := range c.mapHashes {
				if got[n] != want {
					t.Errorf("image %s: computed %s, want %s", n, got[n], want)
				}
			}
		})
	}
}

func TestReferenceMetadata(t *testing.T) {
	dir := refDir(t)
	v, err := OpenFile(filepath.Join(dir, "AFF4Std/Base-Linear.aff4"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	im := v.Images()[0]
	want := map[string]string{"caseNumber": "Case ID: 1SR Canonical", "evidenceNumber": "Drive 1", "examiner": "Administrator", "diskModel": "ST-506", "diskSerial": "SGAT5060001234", "blockSize": "512"}
	for k, w := range want {
		if im.Metadata[k] != w {
			t.Errorf("Metadata[%s] = %q, want %q", k, im.Metadata[k], w)
		}
	}
	if im.URN != "aff4://cf853d0b-5589-4c7c-8358-2ca1572b87eb" {
		t.Errorf("URN %s", im.URN)
	}
	if v.URNs[0] != "aff4://685e15cc-d0fb-4dbc-ba47-48117fc77044" {
		t.Errorf("volume URN %v", v.URNs)
	}
}

// The exabyte-sparse erratum: 1 MiB of 0xFF at both ends, a small file
// system at 0x400000000000000; not hashable linearly, so spot-check.
func TestReferenceExabyteSparse(t *testing.T) {
	dir := refDir(t)
	v, err := OpenFile(filepath.Join(dir, "Errata/Base-ExabyteSparse.aff4"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Its image stream hashes are stored: verify them.
	for _, s := range v.ImageStreams() {
		stored := v.StreamHashes(s)
		ra, size, err := v.OpenStream(s)
		if err != nil {
			t.Fatal(err)
		}
		got := hashReader(t, ra, size, "MD5", "SHA1")
		if got["MD5"] != "da9eb0613cfe18c942c26dde9d68beaf" || got["SHA1"] != "eff6b08245ca6dd06c6c2ceda36659608a64277c" || stored["MD5"] != got["MD5"] {
			t.Errorf("stream hashes %v stored %v", got, stored)
		}
	}
	im := v.Images()[0]
	if im.Size != 9223372036854775296 {
		t.Errorf("size %d", im.Size)
	}
	ra, err := im.Open()
	if err != nil {
		t.Fatal(err)
	}
	check := func(off int64, n int, b byte) {
		buf := make([]byte, n)
		if _, err := ra.ReadAt(buf, off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt %#x: %v", off, err)
		}
		for i, c := range buf {
			if c != b {
				t.Fatalf("at %#x+%d: %#x, want %#x", off, i, c, b)
			}
		}
	}
	check(0, 1<<20, 0xff)
	check(0x7fffffffffeffe00, 1<<20, 0xff)
	check(1<<20, 4096, 0) // gap
	// The map puts image-stream bytes 0x20000.. at 0x3fffffffffffff00 (the
	// README's "0x400000000000000" is approximate).
	buf := make([]byte, 4096)
	if _, err := ra.ReadAt(buf, 0x3fffffffffffff00); err != nil {
		t.Fatal(err)
	}
	if isZero(buf) {
		t.Error("file system region reads as zeros")
	}
	sr, _, err := v.OpenStream(v.ImageStreams()[0])
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(buf))
	if _, err := sr.ReadAt(want, 0x20000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, want) {
		t.Error("mapped region differs from its image-stream bytes")
	}
}
