package ewf

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"hash/adler32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sectionAt finds the descriptor of the section typ in a segment file by its own checksum (an
// independent walk, not the reader's) and returns the offset of its body and the body's size.
func sectionAt(t *testing.T, seg []byte, typ string) (int, int) {
	t.Helper()
	name := make([]byte, 16)
	copy(name, typ)
	for off := 0; off+descSize <= len(seg); off++ {
		d := seg[off : off+descSize]
		if !bytes.Equal(d[:16], name) || binary.LittleEndian.Uint32(d[72:]) != adler32.Checksum(d[:72]) {
			continue
		}
		return off + descSize, int(binary.LittleEndian.Uint64(d[24:])) - descSize
	}
	t.Fatalf("no %s section", typ)
	return 0, 0
}

// TestDamagedDescriptiveSections damages the error2, hash and digest sections of a written E01
// one at a time: the media still reads byte for byte, the damaged section's content is not
// trusted, and Damage names the section, where the reader used to skip it silently.
func TestDamagedDescriptiveSections(t *testing.T) {
	data := mixedData(1 << 20)
	wantMD5, wantSHA1 := hashes(data)
	dir := t.TempDir()
	base := filepath.Join(dir, "img")
	w, err := NewWriter(osCreate, base, Options{Metadata: testMeta(), Compression: CompressFast, MediaSize: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	w.AddReadError(100, 8)
	w.AddReadError(1000, 3)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	m, s := md5.Sum(data), sha1.Sum(data)
	w.SetHash("MD5", m[:])
	w.SetHash("SHA1", s[:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(base + ".E01")
	if err != nil {
		t.Fatal(err)
	}
	// The undamaged file: no damage, everything it describes is there.
	_, r := readAll(t, base+".E01")
	if err := r.Damage(); err != nil {
		t.Fatalf("undamaged image: Damage = %v", err)
	}
	if h := r.Hashes(); h["MD5"] != wantMD5 || h["SHA1"] != wantSHA1 || len(r.ReadErrors()) != 2 {
		t.Fatalf("undamaged image: hashes %v, read errors %v", h, r.ReadErrors())
	}

	for _, tc := range []struct {
		name, section string
		damage        func(body []byte) // in place
		want          string            // in the Damage text
		hashes        map[string]string // what the reader still takes from the intact sections
		readErrors    int
	}{
		{"digest SHA1 byte", "digest", func(b []byte) { b[20] ^= 0xff }, "digest section", map[string]string{"MD5": wantMD5}, 2},
		{"digest short", "digest", nil, "digest section", map[string]string{"MD5": wantMD5}, 2},
		{"hash MD5 byte", "hash", func(b []byte) { b[3] ^= 0x01 }, "hash section", map[string]string{"MD5": wantMD5, "SHA1": wantSHA1}, 2},
		{"error2 entry", "error2", func(b []byte) { b[error2HdrSize+1] ^= 0x40 }, "error2 section", map[string]string{"MD5": wantMD5, "SHA1": wantSHA1}, 0},
		{"error2 header", "error2", func(b []byte) { b[100] = 1 }, "header: checksum mismatch", map[string]string{"MD5": wantMD5, "SHA1": wantSHA1}, 0},
		{"error2 count past the section", "error2", func(b []byte) {
			binary.LittleEndian.PutUint32(b, 1000) // with a header checksum that matches
			binary.LittleEndian.PutUint32(b[516:], adler32.Checksum(b[:516]))
		}, "entries do not fit", map[string]string{"MD5": wantMD5, "SHA1": wantSHA1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg := bytes.Clone(good)
			off, size := sectionAt(t, seg, tc.section)
			if tc.damage != nil {
				tc.damage(seg[off : off+size])
			} else {
				// The descriptor claims a body too short for a digest: shrink it and fix its checksum.
				d := seg[off-descSize : off]
				binary.LittleEndian.PutUint64(d[24:], uint64(descSize+20))
				binary.LittleEndian.PutUint32(d[72:], adler32.Checksum(d[:72]))
			}
			name := filepath.Join(t.TempDir(), "img.E01")
			if err := os.WriteFile(name, seg, 0o644); err != nil {
				t.Fatal(err)
			}
			got, r := readAll(t, name)
			if !bytes.Equal(got, data) {
				t.Fatal("the media reads differently")
			}
			err := r.Damage()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Damage = %v, want it to contain %q", err, tc.want)
			}
			if h := r.Hashes(); len(h) != len(tc.hashes) || h["MD5"] != tc.hashes["MD5"] || h["SHA1"] != tc.hashes["SHA1"] {
				t.Errorf("hashes %v, want %v", h, tc.hashes)
			}
			if n := len(r.ReadErrors()); n != tc.readErrors {
				t.Errorf("%d read error ranges, want %d", n, tc.readErrors)
			}
		})
	}
}

// TestL01VerifyReportsDamage: an L01 whose digest section is damaged (data intact) opens, but
// Verify fails naming the section: the stream's stored hashes are lost.
func TestL01VerifyReportsDamage(t *testing.T) {
	content := mixedData(200_000)
	l01, _ := writeL01(t, []l01File{{LogicalEntry{Path: "dir/a.bin", Size: int64(len(content))}, content}},
		LogicalOptions{MD5: true, SHA1: true})
	lr, err := OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	if err := lr.Verify(); err != nil {
		t.Fatalf("undamaged L01: %v", err)
	}
	lr.Close()
	seg, err := os.ReadFile(l01)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := sectionAt(t, seg, "digest")
	seg[off] ^= 0x80
	damaged := filepath.Join(t.TempDir(), "logical.L01")
	if err := os.WriteFile(damaged, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	lr, err = OpenLogical(damaged)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	if err := lr.Verify(); err == nil || !strings.Contains(err.Error(), "digest section") {
		t.Fatalf("Verify of a damaged L01 = %v, want the digest section named", err)
	}
}
