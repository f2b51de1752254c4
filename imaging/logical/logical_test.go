package logical

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestCorpus checks everything on the mkdisk corpus against SleuthKit and sfdisk, and that
// none of it writes to the source: the image's MD5 is compared before and after.
func TestCorpus(t *testing.T) {
	img := testenv.Corpus(t)
	fls := testenv.Tool(t, "fls")
	icat := testenv.Tool(t, "icat")
	before := testenv.FileMD5(t, img)
	defer func() {
		if after := testenv.FileMD5(t, img); after != before {
			t.Errorf("corpus changed while reading it: MD5 %s before, %s after", before, after)
		}
	}()
	f, err := os.Open(img) // read-only: the package must never need more
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	vols, err := Volumes(f, st.Size())
	if err != nil {
		t.Fatalf("Volumes: %v", err)
	}

	t.Run("volumes", func(t *testing.T) {
		checkAgainstSfdisk(t, img, vols)
		want := []struct{ fs, label string }{{"ext4", "evidence-ext4"}, {"fat32", "EVIDENCEFAT"}, {"ntfs", "evidence-ntfs"}}
		if len(vols) != len(want) {
			t.Fatalf("got %d volumes, want %d", len(vols), len(want))
		}
		for i, w := range want {
			if vols[i].FS != w.fs || vols[i].Label != w.label || vols[i].Scheme != "mbr" {
				t.Errorf("volume %d: got %s %q (%s), want %s %q (mbr)", i+1, vols[i].FS, vols[i].Label, vols[i].Scheme, w.fs, w.label)
			}
		}
	})
	for _, v := range vols {
		t.Run(v.FS, func(t *testing.T) {
			compareWithTSK(t, f, img, fls, icat, v, 500)
		})
	}
}

// checkAgainstSfdisk compares the table with `sfdisk -J`, the judge for partition tables.
func checkAgainstSfdisk(t *testing.T, img string, vols []Volume) {
	sfdisk := testenv.Tool(t, "sfdisk")
	t.Helper()
	out, err := exec.Command(sfdisk, "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var j struct {
		PT struct {
			Label      string `json:"label"`
			SectorSize int64  `json:"sectorsize"`
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	scheme := map[string]string{"dos": "mbr", "gpt": "gpt"}[j.PT.Label]
	var got, want []string
	for _, v := range vols {
		got = append(got, fmt.Sprintf("%d %s %d %d %s %q", v.Index, v.Scheme, v.Offset, v.Size, v.PartType, v.PartName))
	}
	for _, p := range j.PT.Partitions {
		typ := p.Type
		if scheme == "mbr" {
			n, _ := strconv.ParseUint(typ, 16, 8)
			typ = fmt.Sprintf("0x%02x", n)
			if n == 5 || n == 0xf || n == 0x85 {
				continue // the extended container is not a volume
			}
		}
		idx := strings.TrimLeft(p.Node[len(strings.TrimRight(p.Node, "0123456789")):], "")
		want = append(want, fmt.Sprintf("%s %s %d %d %s %q", idx, scheme, p.Start*j.PT.SectorSize, p.Size*j.PT.SectorSize, typ, p.Name))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("volumes differ from sfdisk:\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// tskTime formats a time the way `fls -l` does, for comparison.
func tskTime(t time.Time) string {
	if t.IsZero() {
		return "0000-00-00 00:00:00 (UTC)"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " (UTC)"
}

// compareWithTSK checks that Walk finds exactly the allocated regular files fls lists, with the
// same sizes, that every file reads back exactly Size bytes, and that a sample's MD5 equals icat's.
func compareWithTSK(t *testing.T, src io.ReaderAt, img, fls, icat string, v Volume, minFiles int) {
	fsys, err := OpenFS(src, v)
	if err != nil {
		t.Fatalf("OpenFS: %v", err)
	}
	want := testenv.SleuthKitFiles(t, img, v.Offset/512, v.FS)
	got := map[string]Entry{}
	var order []string
	err = fsys.Walk(func(e Entry) error {
		order = append(order, e.Path)
		if e.Regular() && !e.Deleted {
			if _, dup := got[e.Path]; dup {
				t.Errorf("path walked twice: %s", e.Path)
			}
			got[e.Path] = e
		}
		return nil
	}, func(p string, err error) { t.Errorf("walk error at %q: %v", p, err) })
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	checkPreOrder(t, order)
	var missing, extra, sizes, times []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			missing = append(missing, p)
		case g.Size != w.Size:
			sizes = append(sizes, fmt.Sprintf("%s: %d, fls %d", p, g.Size, w.Size))
		}
		if ok {
			gt := [4]string{tskTime(g.Modified), tskTime(g.Accessed), tskTime(g.Changed), tskTime(g.Created)}
			if v.FS == "exfat" && !g.Accessed.IsZero() {
				// TSK keeps only the date of an exFAT access time (as for FAT, where that is
				// all there is); exFAT stores the full time, which we return.
				gt[1] = g.Accessed.Format("2006-01-02") + " 00:00:00 (UTC)"
			}
			if (v.FS == "ext2" || v.FS == "ext3") && w.Times[3] == tskTime(time.Time{}) {
				// TSK reads the creation time of ext4 only; mke2fs' 256-byte inodes have one
				// on ext2/3 too, and it is returned.
				gt[3] = w.Times[3]
			}
			if gt != w.Times {
				times = append(times, fmt.Sprintf("%s: m/a/c/cr %v, fls %v", p, gt, w.Times))
			}
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			extra = append(extra, p)
		}
	}
	for what, l := range map[string][]string{"missing (fls has them)": missing, "extra (fls lacks them)": extra, "size differs": sizes, "with other times": times} {
		if len(l) > 0 {
			sort.Strings(l)
			t.Errorf("%d files %s, e.g.:\n%s", len(l), what, strings.Join(l[:min(10, len(l))], "\n"))
		}
	}
	if len(want) < minFiles {
		t.Errorf("fls lists only %d files: the corpus looks too small to be a meaningful judge", len(want))
	}
	t.Logf("%s: %d files match fls", v.FS, len(got))

	// Every file must read back exactly Size bytes; a sample (every n-th path, plus the
	// largest file) is compared with icat.
	paths := make([]string, 0, len(got))
	for p := range got {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	sample := map[string]bool{}
	step := max(1, len(paths)/100)
	var largest string
	for i, p := range paths {
		if i%step == 0 {
			sample[p] = true
		}
		if largest == "" || got[p].Size > got[largest].Size {
			largest = p
		}
	}
	sample[largest] = true
	off := strconv.FormatInt(v.Offset/512, 10)
	checked := 0
	for _, p := range paths {
		sum, err := entryMD5(fsys, got[p])
		if err != nil {
			t.Errorf("read %s: %v", p, err)
			continue
		}
		w, ok := want[p]
		if !sample[p] || !ok {
			continue
		}
		out, err := exec.Command(icat, "-o", off, img, w.Inode).Output()
		if err != nil {
			t.Errorf("icat %s (%s): %v", p, w.Inode, err)
			continue
		}
		if ws := md5.Sum(out); hex.EncodeToString(ws[:]) != sum {
			t.Errorf("%s: content MD5 %s, icat's %x", p, sum, ws)
		}
		checked++
	}
	if checked < min(50, minFiles) {
		t.Errorf("only %d files compared with icat", checked)
	}
}

func entryMD5(fsys FS, e Entry) (string, error) {
	rc, err := fsys.Open(e)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := md5.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", err
	}
	if n != e.Size {
		return "", fmt.Errorf("read %d bytes, Size is %d", n, e.Size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkPreOrder verifies that each path's parent was visited before it and that siblings come
// sorted by name.
func checkPreOrder(t *testing.T, order []string) {
	t.Helper()
	seen := map[string]bool{"": true}
	last := map[string]string{}
	for _, p := range order {
		dir, name := filepath.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if !seen[dir] {
			t.Errorf("%s visited before its directory", p)
			return
		}
		if prev, ok := last[dir]; ok && prev > name {
			t.Errorf("%s visited after sibling %s: not sorted", p, prev)
			return
		}
		last[dir] = name
		seen[p] = true
	}
}

// run runs a tool, failing the test with its output on error.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func openImage(t *testing.T, p string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

// walkAll returns the entries of a file system by path, failing on any walk error.
func walkAll(t *testing.T, fsys FS) map[string]Entry {
	t.Helper()
	m := map[string]Entry{}
	err := fsys.Walk(func(e Entry) error {
		m[e.Path] = e
		return nil
	}, func(p string, err error) { t.Errorf("walk error at %q: %v", p, err) })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readEntry(t *testing.T, fsys FS, e Entry) []byte {
	t.Helper()
	rc, err := fsys.Open(e)
	if err != nil {
		t.Fatalf("open %s: %v", e.Path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", e.Path, err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testContent is deterministic, non-repeating content of n bytes.
func testContent(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// partitionedImage creates a sparse disk image of size bytes at img partitioned by sfdisk from
// the script table.
func partitionedImage(t *testing.T, img string, size int64, table string) string {
	t.Helper()
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "sfdisk"), "-q", img)
	cmd.Stdin = strings.NewReader(table)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return img
}

// TestGPT builds a GPT disk with sfdisk and a FAT32 partition with mtools (no mount needed).
func TestGPT(t *testing.T) {
	dir := t.TempDir()
	img := partitionedImage(t, filepath.Join(dir, "gpt.img"), 80<<20, "label: gpt\n"+
		"start=2048, size=20480, type=0FC63DAF-8483-4772-B69D-3D6984AF1E58, name=\"empty linux\"\n"+
		"start=22528, size=102400, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"evidence data\"\n")
	at := fmt.Sprintf("%s@@%d", img, 22528*512)
	run(t, "mformat", "-i", at, "-F", "-v", "GPTFAT", "-T", "102400", "::")
	big := testContent(300_000, 1)
	writeFile(t, filepath.Join(dir, "Big File.bin"), big)
	writeFile(t, filepath.Join(dir, "small.txt"), []byte("hello gpt\n"))
	run(t, "mmd", "-i", at, "::/Sub Dir")
	run(t, "mcopy", "-i", at, filepath.Join(dir, "Big File.bin"), "::/Sub Dir/")
	run(t, "mcopy", "-i", at, filepath.Join(dir, "small.txt"), "::/")

	f, size := openImage(t, img)
	vols, err := Volumes(f, size)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSfdisk(t, img, vols)
	if len(vols) != 2 || vols[1].FS != "fat32" || vols[1].Label != "GPTFAT" || vols[0].FS != "" ||
		vols[1].PartType != "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" {
		t.Fatalf("unexpected volumes: %+v", vols)
	}
	if _, err := OpenFS(f, vols[0]); !errors.Is(err, ErrUnsupported) {
		t.Errorf("OpenFS on an empty partition: got %v, want ErrUnsupported", err)
	}
	fsys, err := OpenFS(f, vols[1])
	if err != nil {
		t.Fatal(err)
	}
	es := walkAll(t, fsys)
	if e, ok := es["Sub Dir"]; !ok || !e.Dir {
		t.Errorf("Sub Dir missing or not a directory: %+v", e)
	}
	e, ok := es["Sub Dir/Big File.bin"]
	if !ok || e.Size != int64(len(big)) || !bytes.Equal(readEntry(t, fsys, e), big) {
		t.Errorf("Sub Dir/Big File.bin missing or wrong: %+v", e)
	}
	if e, ok := es["small.txt"]; !ok || string(readEntry(t, fsys, e)) != "hello gpt\n" || e.Modified.IsZero() {
		t.Errorf("small.txt missing or wrong: %+v", e)
	}
}

// TestBareFATDeleted checks a FAT file system without a partition table, of each FAT width,
// and that a file deleted with mdel comes back Deleted, with its content.
func TestBareFATDeleted(t *testing.T) {
	for _, c := range []struct {
		kind string
		kib  int
	}{{"fat12", 1440}, {"fat16", 32 << 10}, {"fat32", 64 << 10}} {
		t.Run(c.kind, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "bare.img")
			bits := strings.TrimPrefix(c.kind, "fat")
			run(t, "mkfs.vfat", "-C", "-F", bits, "-n", "BARE"+bits, img, strconv.Itoa(c.kib))
			keep := testContent(5000, 2)
			gone := testContent(7000, 3)
			writeFile(t, filepath.Join(dir, "keep.dat"), keep)
			writeFile(t, filepath.Join(dir, "Deleted Document.txt"), gone)
			run(t, "mcopy", "-i", img, filepath.Join(dir, "keep.dat"), filepath.Join(dir, "Deleted Document.txt"), "::/")
			run(t, "mdel", "-i", img, "::/Deleted Document.txt")

			f, size := openImage(t, img)
			vols, err := Volumes(f, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(vols) != 1 || vols[0].Scheme != "none" || vols[0].Index != 0 || vols[0].FS != c.kind ||
				vols[0].Label != "BARE"+bits || vols[0].Size != size {
				t.Fatalf("unexpected volumes: %+v", vols)
			}
			fsys, err := OpenFS(f, vols[0])
			if err != nil {
				t.Fatal(err)
			}
			es := walkAll(t, fsys)
			if e := es["keep.dat"]; e.Deleted || !bytes.Equal(readEntry(t, fsys, e), keep) {
				t.Errorf("keep.dat wrong: %+v", e)
			}
			// The long name survives deletion except nothing: LFN entries keep all characters.
			e, ok := es["Deleted Document.txt"]
			if !ok {
				t.Fatalf("deleted file not found; entries: %v", keys(es))
			}
			if !e.Deleted || e.Size != int64(len(gone)) || !bytes.Equal(readEntry(t, fsys, e), gone) {
				t.Errorf("deleted file: %+v, content recovered: %v", e, bytes.Equal(readEntry(t, fsys, e), gone))
			}
		})
	}
}

func keys(m map[string]Entry) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return k
}

// TestGarbage: random bytes are neither a table nor a file system, and forcing a file system
// type on them yields errors, not panics.
func TestGarbage(t *testing.T) {
	g := bytes.NewReader(testContent(4<<20, 9))
	if vols, err := Volumes(g, g.Size()); !errors.Is(err, ErrNoVolumes) || len(vols) != 0 {
		t.Errorf("Volumes(garbage) = %v, %v; want ErrNoVolumes", vols, err)
	}
	if vols, err := Volumes(bytes.NewReader(nil), 0); err == nil || len(vols) != 0 {
		t.Errorf("Volumes(empty) = %v, %v; want an error", vols, err)
	}
	for _, fs := range []string{"", "ntfs", "fat12", "fat16", "fat32", "ext2", "ext3", "ext4", "exfat", "zfs"} {
		if _, err := OpenFS(g, Volume{Size: g.Size(), FS: fs}); err == nil {
			t.Errorf("OpenFS(garbage, %q) succeeded", fs)
		}
	}
}

// TestCorrupted damages copies of the corpus' file systems and walks and reads them: the
// parsers may report errors but must neither panic nor hang.
func TestCorrupted(t *testing.T) {
	img := testenv.Corpus(t)
	f, size := openImage(t, img)
	vols, err := Volumes(f, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		t.Run(v.FS, func(t *testing.T) {
			// The first 8 MiB hold the boot sector, superblock, FAT or the start of the MFT
			// and the first directories: those are damaged, in memory over the read-only file.
			n := min(v.Size, 8<<20)
			buf := make([]byte, n)
			if _, err := f.ReadAt(buf, v.Offset); err != nil {
				t.Fatal(err)
			}
			vol := v
			vol.Offset = 0
			corruptAndWalk(t, buf, io.NewSectionReader(f, v.Offset, v.Size), vol)
		})
	}
}

// corruptAndWalk damages copies of head, the first bytes of the file system rest, past its
// first 4 KiB (so it is still recognised) with four patterns, and walks and reads each copy:
// errors are expected, panics and hangs are failures.
func corruptAndWalk(t *testing.T, head []byte, rest io.ReaderAt, vol Volume) {
	noise := testContent(len(head), byte(vol.Index)+1)
	for seed := 0; seed < 4; seed++ {
		img := bytes.Clone(head)
		for i := 4096 + seed; i < len(img); i += 97 + seed {
			img[i] ^= noise[i]
		}
		fsys, err := OpenFS(overlay{img, rest}, vol)
		if err != nil {
			continue
		}
		files, errs := 0, 0
		_ = fsys.Walk(func(e Entry) error {
			if e.Dir || files > 300 {
				return nil
			}
			files++
			if rc, err := fsys.Open(e); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
				rc.Close()
			}
			return nil
		}, func(string, error) { errs++ })
		t.Logf("%s seed %d: %d files opened, %d walk errors", vol.FS, seed, files, errs)
	}
}

// overlay reads head over the start of rest.
type overlay struct {
	head []byte
	rest io.ReaderAt
}

func (o overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.rest.ReadAt(p, off)
	if off < int64(len(o.head)) {
		copy(p[:n], o.head[off:])
	}
	return n, err
}

// TestExtendedMBR checks logical partitions in an extended partition, numbered from 5 as
// sfdisk numbers them, with a FAT file system in one of them.
func TestExtendedMBR(t *testing.T) {
	dir := t.TempDir()
	img := partitionedImage(t, filepath.Join(dir, "ext.img"), 64<<20, "label: dos\n"+
		"start=2048, size=20480, type=83\n"+
		"start=22528, size=100000, type=5\n"+
		"start=24576, size=40960, type=6\n"+
		"start=67584, size=20480, type=7\n")
	at := fmt.Sprintf("%s@@%d", img, 24576*512)
	run(t, "mformat", "-i", at, "-v", "LOGICAL", "-T", "40960", "::")
	writeFile(t, filepath.Join(dir, "in-logical.txt"), []byte("logical partition 5\n"))
	run(t, "mcopy", "-i", at, filepath.Join(dir, "in-logical.txt"), "::/")

	f, size := openImage(t, img)
	vols, err := Volumes(f, size)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSfdisk(t, img, vols)
	if len(vols) != 3 || vols[1].Index != 5 || !strings.HasPrefix(vols[1].FS, "fat") || vols[1].Label != "LOGICAL" {
		t.Fatalf("unexpected volumes: %+v", vols)
	}
	fsys, err := OpenFS(f, vols[1])
	if err != nil {
		t.Fatal(err)
	}
	e, ok := walkAll(t, fsys)["in-logical.txt"]
	if !ok || string(readEntry(t, fsys, e)) != "logical partition 5\n" {
		t.Errorf("in-logical.txt missing or wrong: %+v", e)
	}
}

// panicReader panics on every read once armed, as a parser bug on hostile input would.
type panicReader struct {
	r     io.ReaderAt
	armed *bool
}

func (p panicReader) ReadAt(b []byte, off int64) (int, error) {
	if *p.armed {
		panic("simulated parser crash")
	}
	return p.r.ReadAt(b, off)
}

// TestPanicsBecomeErrors: a panic of go-ntfs below OpenFS, Walk or a file's Read reaches the
// caller as a one-line *PanicError carrying the stack, and an error from fn stops the walk and is
// returned. (Our own FAT, exFAT and ext code is not wrapped: it must not panic, see fuzz_test.go.)
func TestPanicsBecomeErrors(t *testing.T) {
	img := testenv.Corpus(t)
	f, size := openImage(t, img)
	vols, err := Volumes(f, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if v.FS != "ntfs" {
			continue
		}
		t.Run(v.FS, func(t *testing.T) {
			armed := true
			src := panicReader{f, &armed}
			_, err := OpenFS(src, v)
			pe, ok := errors.AsType[*PanicError](err)
			if !ok || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "simulated parser crash") ||
				!strings.Contains(string(pe.Stack), "panicReader") {
				t.Errorf("OpenFS with a crashing reader: %v, want a one-line PanicError with the stack", err)
			}
			armed = false
			fsys, err := OpenFS(src, v)
			if err != nil {
				t.Fatal(err)
			}
			stop := errors.New("stop")
			var file Entry
			n := 0
			err = fsys.Walk(func(e Entry) error {
				n++
				if e.Regular() && e.Size > 0 {
					file = e
					return stop
				}
				return nil
			}, func(p string, err error) { t.Errorf("walk error at %q: %v", p, err) })
			if err != stop {
				t.Fatalf("Walk returned %v after fn failed, want fn's error", err)
			}
			rc, err := fsys.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			armed = true
			if _, err := io.ReadAll(rc); err == nil {
				t.Errorf("reading %s through a crashing reader succeeded", file.Path)
			}
			walkErrs := 0
			err = fsys.Walk(func(Entry) error { return nil }, func(string, error) { walkErrs++ })
			if err == nil && walkErrs == 0 {
				t.Errorf("Walk through a crashing reader reported nothing")
			}
		})
	}
}

// TestNTFSDeleted builds an NTFS image with ntfs-3g (FUSE, needs root), deletes a file and a
// directory with a file in it, and checks they come back Deleted with their content, and that
// the deleted paths equal those of `fls -d`.
func TestNTFSDeleted(t *testing.T) {
	mkntfs := testenv.Tool(t, "mkntfs")
	ntfs3g := testenv.Tool(t, "ntfs-3g")
	fls := testenv.Tool(t, "fls")
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		if testenv.Required() {
			t.Fatal("needs root and /dev/fuse for ntfs-3g (mkdisk.sh needs them too)")
		}
		t.Skip("needs root and /dev/fuse for ntfs-3g")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "ntfs.img")
	mnt := filepath.Join(dir, "mnt")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, mkntfs, "-F", "-q", "-L", "deltest", img)
	run(t, ntfs3g, img, mnt)
	mounted := true
	umount := func() {
		if mounted {
			mounted = false
			run(t, "umount", mnt)
		}
	}
	t.Cleanup(umount)
	gone := testContent(50_000, 4)
	inner := testContent(100, 5) // small enough to stay resident in the MFT record
	for _, d := range []string{"dir", "gonedir"} {
		if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(mnt, "dir", "gone.bin"), gone)
	writeFile(t, filepath.Join(mnt, "gonedir", "inner.txt"), inner)
	writeFile(t, filepath.Join(mnt, "keep.txt"), []byte("keep\n"))
	run(t, "sync")
	if err := os.Remove(filepath.Join(mnt, "dir", "gone.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(mnt, "gonedir")); err != nil {
		t.Fatal(err)
	}
	umount()

	f, size := openImage(t, img)
	vols, err := Volumes(f, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].FS != "ntfs" || vols[0].Label != "deltest" || vols[0].Scheme != "none" {
		t.Fatalf("unexpected volumes: %+v", vols)
	}
	fsys, err := OpenFS(f, vols[0])
	if err != nil {
		t.Fatal(err)
	}
	es := walkAll(t, fsys)
	if e := es["keep.txt"]; e.Deleted || string(readEntry(t, fsys, e)) != "keep\n" {
		t.Errorf("keep.txt wrong: %+v", e)
	}
	for p, want := range map[string][]byte{"dir/gone.bin": gone, "gonedir/inner.txt": inner} {
		e, ok := es[p]
		if !ok || !e.Deleted || e.Size != int64(len(want)) || !bytes.Equal(readEntry(t, fsys, e), want) {
			t.Errorf("%s: not recovered: %+v (found %v)", p, e, ok)
		}
	}
	if e := es["gonedir"]; !e.Deleted || !e.Dir {
		t.Errorf("gonedir: %+v, want a deleted directory", e)
	}
	var got, want []string
	for p, e := range es {
		if e.Deleted {
			got = append(got, p)
		}
	}
	out, err := exec.Command(fls, "-r", "-p", "-d", img).Output()
	if err != nil {
		t.Fatalf("fls -d: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		_, p, ok := strings.Cut(l, ":\t")
		if ok && !strings.HasPrefix(p, "$OrphanFiles") {
			want = append(want, p)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(want) < 3 {
		t.Errorf("fls -d lists only %q", want)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("deleted entries differ from fls -d:\ngot:  %q\nwant: %q", got, want)
	}
}

// TestExFAT reads testdata/exfat.img.gz, built with mkfs.exfat and exfat-fuse (see
// testdata/README), against fls and icat, including a fragmented file and two deleted ones.
func TestExFAT(t *testing.T) {
	fls := testenv.Tool(t, "fls")
	icat := testenv.Tool(t, "icat")
	img := filepath.Join(t.TempDir(), "exfat.img")
	gz, err := os.Open("testdata/exfat.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, img, raw)
	f, size := openImage(t, img)
	vols, err := Volumes(f, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].FS != "exfat" || vols[0].Label != "EXFIXTURE" || vols[0].Scheme != "none" {
		t.Fatalf("unexpected volumes: %+v", vols)
	}
	compareWithTSK(t, f, img, fls, icat, vols[0], 7)

	fsys, err := OpenFS(f, vols[0])
	if err != nil {
		t.Fatal(err)
	}
	es := walkAll(t, fsys)
	if e := es["docs/A rather long file name, longer than fifteen.txt"]; e.Size != 1234 {
		t.Errorf("long name: %+v", e)
	}
	// Deleted files: the same paths as `fls -d`, and the content icat gives for them.
	out, err := exec.Command(fls, "-r", "-p", "-d", img).Output()
	if err != nil {
		t.Fatalf("fls -d: %v", err)
	}
	want := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		head, p, ok := strings.Cut(l, ":\t")
		if ok && !strings.HasPrefix(p, "$OrphanFiles") {
			want[p] = head[strings.LastIndex(head, " ")+1:]
		}
	}
	got := 0
	for p, e := range es {
		if !e.Deleted {
			continue
		}
		got++
		inode, ok := want[p]
		if !ok {
			t.Errorf("deleted %s not listed by fls -d", p)
			continue
		}
		ic, err := exec.Command(icat, img, inode).Output()
		if err != nil {
			t.Fatalf("icat: %v", err)
		}
		if !bytes.Equal(readEntry(t, fsys, e), ic) {
			t.Errorf("deleted %s: content differs from icat", p)
		}
	}
	if got != len(want) || got != 2 {
		t.Errorf("%d deleted entries, fls -d lists %d: %v", got, len(want), want)
	}
	corruptAndWalk(t, raw, bytes.NewReader(raw), vols[0])
}

// TestExtVariants builds ext2, ext3 and ext4 file systems (1 KiB blocks, so that a 600 KB file
// needs double-indirect blocks on ext2/3; ext4 also with inline_data) from a directory with
// mke2fs -d, no mount needed, and compares them with fls and icat. The tree has a sparse file,
// fast and slow symlinks and a directory large enough to get a hash-tree index.
func TestExtVariants(t *testing.T) {
	fls := testenv.Tool(t, "fls")
	icat := testenv.Tool(t, "icat")
	src := t.TempDir()
	for _, d := range []string{"big dir", "a/b/c"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 400; i++ {
		writeFile(t, filepath.Join(src, "big dir", fmt.Sprintf("file-with-a-longish-name-%04d.txt", i)), []byte(strconv.Itoa(i)))
	}
	writeFile(t, filepath.Join(src, "a/b/c/large.bin"), testContent(600_000, 6))
	writeFile(t, filepath.Join(src, "tiny"), []byte("x"))
	writeFile(t, filepath.Join(src, "inline-100"), testContent(100, 7)) // i_block + system.data with inline_data
	writeFile(t, filepath.Join(src, "inline-60"), testContent(60, 8))
	writeFile(t, filepath.Join(src, "empty"), nil)
	sp, err := os.Create(filepath.Join(src, "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.WriteAt([]byte("end of a sparse file"), 300_000); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	slow := strings.Repeat("long/target/", 10) + "file"
	for name, target := range map[string]string{"fast-link": "tiny", "slow-link": slow} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ fs, mkfs string }{
		{"ext2", "mkfs.ext2"}, {"ext3", "mkfs.ext3"}, {"ext4", "mkfs.ext4"}, {"ext4", "mkfs.ext4 -O inline_data"},
	} {
		t.Run(strings.ReplaceAll(c.mkfs, " ", ""), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "ext.img")
			args := append(strings.Fields(c.mkfs)[1:], "-q", "-b", "1024", "-L", "variant", "-d", src, img, "8M")
			run(t, strings.Fields(c.mkfs)[0], args...)
			f, size := openImage(t, img)
			vols, err := Volumes(f, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(vols) != 1 || vols[0].FS != c.fs || vols[0].Label != "variant" {
				t.Fatalf("unexpected volumes: %+v", vols)
			}
			compareWithTSK(t, f, img, fls, icat, vols[0], 400)
			fsys, err := OpenFS(f, vols[0])
			if err != nil {
				t.Fatal(err)
			}
			es := walkAll(t, fsys)
			for _, p := range []string{"inline-100", "inline-60", "sparse.bin", "a/b/c/large.bin", "tiny", "empty"} {
				want, err := os.ReadFile(filepath.Join(src, p))
				if err != nil {
					t.Fatal(err)
				}
				if got := readEntry(t, fsys, es[p]); !bytes.Equal(got, want) {
					t.Errorf("%s: content differs from the source file (%d bytes, want %d)", p, len(got), len(want))
				}
			}
			for name, target := range map[string]string{"fast-link": "tiny", "slow-link": slow} {
				e := es[name]
				if e.Mode.Type() != fs.ModeSymlink || string(readEntry(t, fsys, e)) != target {
					t.Errorf("%s: %+v, want a symlink to %s", name, e, target)
				}
			}
		})
	}
}

// TestRecognisedUnsupported: file systems that are recognised but not read are named, as a bare
// volume and inside a partition table, and OpenFS refuses them with ErrUnsupported and the name.
func TestRecognisedUnsupported(t *testing.T) {
	for _, c := range []struct {
		fs   string
		at   int
		sig  string
		want string
	}{
		{"apfs", 32, "NXSB", "apfs"},
		{"hfsplus", 1024, "H+", "hfsplus"},
		{"xfs", 0, "XFSB", "xfs"},
		{"btrfs", 0x10040, "_BHRfS_M", "btrfs"},
		{"refs", 3, "ReFS", "refs"},
		{"bitlocker", 3, "-FVE-FS-", "encrypted volume"},
		{"luks", 0, "LUKS\xba\xbe", "encrypted volume"},
	} {
		t.Run(c.fs, func(t *testing.T) {
			img := make([]byte, 1<<20)
			copy(img[c.at:], c.sig)
			src := bytes.NewReader(img)
			vols, err := Volumes(src, int64(len(img)))
			if err != nil || len(vols) != 1 || vols[0].FS != c.fs || vols[0].Scheme != "none" {
				t.Fatalf("Volumes: %+v, %v", vols, err)
			}
			_, err = OpenFS(src, vols[0])
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("OpenFS: %v", err)
			}
		})
	}
}
