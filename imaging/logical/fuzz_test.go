package logical

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// The fuzz targets feed hostile disks to every parser of this package: the partition tables
// (Volumes), FAT, exFAT, ext and, through OpenFS, NTFS. A parser must return errors, never panic or
// hang. `make fuzz` runs each for a while; `go test` runs the committed corpora in
// testdata/fuzz/<Target>/ (seeds, and the inputs that once crashed) as regression cases.
//
// An input is a sparse disk image, so that seeds of real file systems stay a few KB: records of
// [offset uint32 LE][length uint16 LE][bytes] laid over fuzzDiskSize zero bytes (later records win,
// a short last record is cut). Seeds keep only the sectors the parsers read from an image built by
// mkfs (TestWriteFuzzSeeds, run by hand).

const fuzzDiskSize = 64 << 20

type sparseRec struct {
	off  int64
	data []byte
}

type sparseDisk struct{ recs []sparseRec }

func decodeSparse(in []byte) sparseDisk {
	var d sparseDisk
	for len(in) >= 6 {
		off := int64(binary.LittleEndian.Uint32(in)) % fuzzDiskSize
		n := int(binary.LittleEndian.Uint16(in[4:]))
		in = in[6:]
		n = min(n, len(in), int(fuzzDiskSize-off))
		d.recs = append(d.recs, sparseRec{off, in[:n]})
		in = in[n:]
	}
	return d
}

func (d sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= fuzzDiskSize {
		return 0, io.EOF
	}
	n := len(p)
	var err error
	if off+int64(n) > fuzzDiskSize {
		n, err = int(fuzzDiskSize-off), io.EOF
	}
	clear(p[:n])
	for _, r := range d.recs {
		lo, hi := max(off, r.off), min(off+int64(n), r.off+int64(len(r.data)))
		if lo < hi {
			copy(p[lo-off:hi-off], r.data[lo-r.off:hi-r.off])
		}
	}
	return n, err
}

// encodeSparse keeps the non-zero 512-byte sectors of img that read touched.
func encodeSparse(img []byte, touched map[int64]bool) []byte {
	var secs []int64
	for s := range touched {
		if s*512 < int64(len(img)) && !allZero(img[s*512:min(int64(len(img)), s*512+512)]) {
			secs = append(secs, s)
		}
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	var out []byte
	for i := 0; i < len(secs); {
		j := i + 1
		for j < len(secs) && secs[j] == secs[j-1]+1 && j-i < 120 {
			j++
		}
		start, end := secs[i]*512, min(int64(len(img)), secs[j-1]*512+512)
		out = binary.LittleEndian.AppendUint32(out, uint32(start))
		out = binary.LittleEndian.AppendUint16(out, uint16(end-start))
		out = append(out, img[start:end]...)
		i = j
	}
	return out
}

// exercise walks fsys and reads the first limit bytes of every file, as a logical task does, within
// a budget of entries and bytes (a fuzzed size field may claim gigabytes of zeros). It returns the
// first broken promise of the FS interface: a path that could climb out of the export (empty, ".",
// ".." or absolute), a negative size, or a file that yields other than its size without an error.
func exercise(fsys FS, limit int64) error {
	entries, budget := 0, int64(8<<20)
	var broken error
	_ = fsys.Walk(func(e Entry) error {
		if entries++; entries > 5000 || budget <= 0 {
			return io.EOF
		}
		for _, el := range strings.Split(e.Path, "/") {
			if el == "" || el == "." || el == ".." {
				broken = fmt.Errorf("entry path %q", e.Path)
				return broken
			}
		}
		if e.Size < 0 {
			broken = fmt.Errorf("%s: size %d", e.Path, e.Size)
			return broken
		}
		if e.Dir {
			return nil
		}
		rc, err := fsys.Open(e)
		if err == nil {
			want := min(limit, budget, e.Size)
			n, err := io.Copy(io.Discard, io.LimitReader(rc, want))
			budget -= n
			rc.Close()
			if err == nil && n != want {
				broken = fmt.Errorf("%s: read %d of %d bytes without an error", e.Path, n, want)
				return broken
			}
		}
		return nil
	}, func(string, error) {})
	return broken
}

func fuzzFS(f *testing.F, open func(*io.SectionReader) (FS, error)) {
	f.Fuzz(func(t *testing.T, in []byte) {
		defer testenv.NoHang(20 * time.Second)()
		fsys, err := open(io.NewSectionReader(decodeSparse(in), 0, fuzzDiskSize))
		if err != nil {
			return
		}
		if err := exercise(fsys, 1<<20); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzVolumes(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		defer testenv.NoHang(20 * time.Second)()
		d := decodeSparse(in)
		vols, err := Volumes(d, fuzzDiskSize)
		if err != nil {
			return
		}
		for _, v := range vols {
			if v.Offset < 0 || v.Size <= 0 || v.Offset+v.Size > fuzzDiskSize {
				t.Fatalf("volume outside the disk: %+v", v)
			}
		}
	})
}

func FuzzFAT(f *testing.F) {
	fuzzFS(f, func(r *io.SectionReader) (FS, error) { return nonNil(openFAT(r)) })
}

func FuzzExFAT(f *testing.F) {
	fuzzFS(f, func(r *io.SectionReader) (FS, error) { return nonNil(openExFAT(r)) })
}

func FuzzExt(f *testing.F) {
	fuzzFS(f, func(r *io.SectionReader) (FS, error) { return nonNil(openExt(r)) })
}

func FuzzNTFS(f *testing.F) {
	fuzzFS(f, func(r *io.SectionReader) (FS, error) {
		return OpenFS(r, Volume{Offset: 0, Size: r.Size(), FS: "ntfs"})
	})
}

// recorder notes the sectors a parser reads.
type recorder struct {
	r       io.ReaderAt
	touched map[int64]bool
}

func (rc recorder) ReadAt(p []byte, off int64) (int, error) {
	for s := off / 512; s*512 < off+int64(len(p)); s++ {
		rc.touched[s] = true
	}
	return rc.r.ReadAt(p, off)
}

// TestWriteFuzzSeeds builds small file systems with mkfs and the tools of the other tests, and
// writes the sectors the parsers read as seed corpora. Run by hand when the parsers change:
//
//	EVIDENCED_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./imaging/logical
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("EVIDENCED_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("writes testdata/fuzz seeds; set EVIDENCED_WRITE_FUZZ_SEEDS=1")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "sub", "b.bin"), bytes.Repeat([]byte("0123456789abcdef"), 300), 0o644))
	must(os.WriteFile(filepath.Join(src, "sub", "deeper", "A long file name, longer than eleven.txt"), []byte("long\n"), 0o644))
	must(os.Symlink("a.txt", filepath.Join(src, "link")))
	sh := func(script string) {
		t.Helper()
		out, err := exec.Command("bash", "-ec", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	img := func(name string) string { return filepath.Join(dir, name) }
	mtools := func(p string) string {
		return fmt.Sprintf(`MTOOLS_SKIP_CHECK=1 mcopy -s -i %[1]s %[2]s/a.txt %[2]s/sub ::/ && MTOOLS_SKIP_CHECK=1 mdel -i %[1]s ::/a.txt`, p, src)
	}
	sh(fmt.Sprintf("mkfs.vfat -C -F 12 -n SEED12 %s 256 >/dev/null && %s", img("fat12"), mtools(img("fat12"))))
	sh(fmt.Sprintf("mkfs.vfat -C -F 16 -s 1 -n SEED16 %s 4096 >/dev/null && %s", img("fat16"), mtools(img("fat16"))))
	sh(fmt.Sprintf("mkfs.vfat -C -F 32 -s 1 -n SEED32 %s 40000 >/dev/null && %s", img("fat32"), mtools(img("fat32"))))
	for _, v := range []string{"ext2", "ext4"} {
		sh(fmt.Sprintf("mkfs.%s -q -b 1024 -N 32 -O ^resize_inode -d %s %s 1M", v, src, img(v)))
	}
	sh(fmt.Sprintf("mkfs.ext4 -q -b 1024 -N 32 -O inline_data,^resize_inode,^has_journal -d %s %s 1M", src, img("ext4inline")))
	sh(fmt.Sprintf("truncate -s 4M %[1]s && mkntfs -q -F -f -L SEEDNTFS %[1]s >/dev/null", img("ntfs")))
	sh(fmt.Sprintf("truncate -s 8M %[1]s && printf 'label: dos\nstart=2048, size=4096, type=83\nstart=8192, size=6000, type=5\nstart=10240, size=2048, type=6\n' | sfdisk -q %[1]s", img("mbr")))
	sh(fmt.Sprintf("truncate -s 8M %[1]s && printf 'label: gpt\nstart=2048, size=4096, name=one\nstart=8192, size=4096, name=two\n' | sfdisk -q %[1]s", img("gpt")))
	gz, err := os.Open("testdata/exfat.img.gz")
	must(err)
	zr, err := gzip.NewReader(gz)
	must(err)
	exfat, err := io.ReadAll(zr)
	must(err)
	gz.Close()
	must(os.WriteFile(img("exfat"), exfat, 0o644))

	seeds := []struct{ target, image string }{
		{"FuzzFAT", "fat12"}, {"FuzzFAT", "fat16"}, {"FuzzFAT", "fat32"},
		{"FuzzExt", "ext2"}, {"FuzzExt", "ext4"}, {"FuzzExt", "ext4inline"},
		{"FuzzExFAT", "exfat"}, {"FuzzNTFS", "ntfs"},
		{"FuzzVolumes", "mbr"}, {"FuzzVolumes", "gpt"}, {"FuzzVolumes", "fat16"}, {"FuzzVolumes", "ext4"},
	}
	for _, s := range seeds {
		data, err := os.ReadFile(img(s.image))
		must(err)
		rec := recorder{bytes.NewReader(data), map[int64]bool{}}
		if s.target == "FuzzVolumes" {
			_, err = Volumes(rec, int64(len(data)))
		} else {
			var fsys FS
			fsys, err = OpenFS(rec, Volume{Offset: 0, Size: int64(len(data))})
			if err == nil {
				err = exercise(fsys, 1) // file contents are not structure: one sector of each is enough
			}
		}
		must(err)
		enc := encodeSparse(data, rec.touched)
		out := filepath.Join("testdata", "fuzz", s.target, "seed-"+s.image)
		must(os.MkdirAll(filepath.Dir(out), 0o755))
		must(os.WriteFile(out, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", enc)), 0o644))
		t.Logf("%s: %d bytes of %d", out, len(enc), len(data))
		if strings.HasPrefix(s.target, "Fuzz") && s.target != "FuzzVolumes" {
			// The seed must still be the file system it was made from.
			if _, err := OpenFS(decodeSparse(enc), Volume{Offset: 0, Size: fuzzDiskSize}); err != nil {
				t.Errorf("%s: seed does not open: %v", s.image, err)
			}
		}
	}
}
