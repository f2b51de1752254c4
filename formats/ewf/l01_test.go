package ewf

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/evidenced/evidenced/internal/testenv"
)

// l01File is one entry a test stores, with the content it expects back.
type l01File struct {
	LogicalEntry
	data []byte
}

func l01Hashes(b []byte) FileHashes {
	m, s := md5.Sum(b), sha1.Sum(b)
	return FileHashes{hex.EncodeToString(m[:]), hex.EncodeToString(s[:])}
}

// oddReader returns its data in small, uneven pieces to exercise chunk cutting across reads.
type oddReader struct {
	b []byte
	r *mrand.Rand
}

func (o *oddReader) n(k int) int {
	if o.r == nil {
		return k
	}
	return o.r.IntN(k)
}

func (o *oddReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(o.b), 1+o.n(70_000))
	copy(p, o.b[:n])
	o.b = o.b[n:]
	return n, nil
}

func writeL01(t testing.TB, files []l01File, opt LogicalOptions) (string, *LogicalWriter) {
	t.Helper()
	base := filepath.Join(t.TempDir(), "logical")
	if opt.CaseNumber == "" {
		opt.Metadata = testMeta()
	}
	w, err := NewLogicalWriter(osCreate, base, opt)
	if err != nil {
		t.Fatal(err)
	}
	rnd := mrand.New(mrand.NewPCG(1, 2))
	for _, f := range files {
		if f.Dir {
			if err := w.AddDir(f.LogicalEntry); err != nil {
				t.Fatal(err)
			}
			continue
		}
		h, err := w.AddFile(f.LogicalEntry, &oddReader{f.data, rnd})
		if err != nil {
			t.Fatal(err)
		}
		want := l01Hashes(f.data)
		if !opt.MD5 {
			want.MD5 = ""
		}
		if !opt.SHA1 {
			want.SHA1 = ""
		}
		if h != want {
			t.Fatalf("%s: AddFile hashes %+v, want %+v", f.Path, h, want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return base + ".L01", w
}

// expectTree maps every path (implicit parents included) to its entry.
func expectTree(files []l01File) map[string]l01File {
	m := map[string]l01File{}
	for _, f := range files {
		m[f.Path] = f
		for p := filepath.Dir(f.Path); p != "."; p = filepath.Dir(p) {
			if _, ok := m[p]; !ok {
				m[p] = l01File{LogicalEntry: LogicalEntry{Path: p, Dir: true}}
			}
		}
	}
	return m
}

// checkOurReader reads the set back through OpenLogical.
func checkOurReader(t testing.TB, l01 string, files []l01File, opt LogicalOptions) {
	t.Helper()
	r, err := OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := expectTree(files)
	got := r.Entries()
	if len(got) != len(want) {
		t.Fatalf("reader lists %d entries, want %d", len(got), len(want))
	}
	for _, g := range got {
		w, ok := want[g.Path]
		if !ok {
			t.Fatalf("unexpected entry %q", g.Path)
		}
		if g.Dir != w.Dir || g.Deleted != w.Deleted {
			t.Fatalf("%s: dir %v deleted %v, want %v %v", g.Path, g.Dir, g.Deleted, w.Dir, w.Deleted)
		}
		for _, c := range []struct {
			name    string
			got, wt time.Time
		}{{"created", g.Created, w.Created}, {"modified", g.Modified, w.Modified},
			{"accessed", g.Accessed, w.Accessed}, {"changed", g.Changed, w.Changed}} {
			if !c.got.Equal(c.wt.Truncate(time.Second)) {
				t.Fatalf("%s: %s %v, want %v", g.Path, c.name, c.got, c.wt)
			}
		}
		if w.Dir {
			continue
		}
		if g.Size != int64(len(w.data)) {
			t.Fatalf("%s: size %d, want %d", g.Path, g.Size, len(w.data))
		}
		h := l01Hashes(w.data)
		if (opt.MD5 && g.Hashes.MD5 != h.MD5) || (opt.SHA1 && g.Hashes.SHA1 != h.SHA1) {
			t.Fatalf("%s: stored hashes %+v, want %+v", g.Path, g.Hashes, h)
		}
		sr, err := r.Open(g.Path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(sr)
		if err != nil {
			t.Fatalf("%s: %v", g.Path, err)
		}
		if !bytes.Equal(b, w.data) {
			t.Fatalf("%s: content differs", g.Path)
		}
	}
	if m := r.Metadata(); m.CaseNumber != "CASE-42" || m.Examiner != "J. Doe" {
		t.Fatalf("metadata %+v", m)
	}
	if r.StreamHashes()["MD5"] == "" {
		t.Fatal("no stream MD5")
	}
}

// ewfmountFiles mounts the L01 with ewfmount -f files and compares it to what was stored.
// ewfmount 20140813 shows an entry without children as a regular file, so an empty directory is
// expected there as an empty file (ewfexportFiles and libewfFiles check it is a directory).
func ewfmountFiles(t testing.TB, l01 string, files []l01File) {
	t.Helper()
	testenv.Tool(t, "ewfmount")
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ewfmount", "-f", "files", l01, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ewfmount: %v\n%s", err, out)
	}
	defer func() {
		if err := exec.Command("fusermount", "-u", dir).Run(); err != nil {
			exec.Command("umount", "-l", dir).Run()
		}
	}()
	want := expectTree(files)
	hasChild := map[string]bool{}
	for p := range want {
		hasChild[filepath.Dir(p)] = true
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		w, ok := want[rel]
		if !ok {
			return fmt.Errorf("ewfmount shows unexpected %q", rel)
		}
		seen++
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if w.Dir && hasChild[rel] {
			if !st.IsDir() {
				return fmt.Errorf("%s: not a directory in ewfmount", rel)
			}
			return nil
		}
		if w.Dir { // empty directory: shown as an empty regular file by ewfmount 20140813
			if st.IsDir() || st.Size() != 0 {
				return fmt.Errorf("%s: empty dir shown as %v size %d", rel, st.Mode(), st.Size())
			}
			return nil
		}
		if st.IsDir() || st.Size() != int64(len(w.data)) {
			return fmt.Errorf("%s: ewfmount mode %v size %d, want file of %d", rel, st.Mode(), st.Size(), len(w.data))
		}
		if !w.Modified.IsZero() && st.ModTime().Unix() != w.Modified.Unix() {
			return fmt.Errorf("%s: ewfmount mtime %v, want %v", rel, st.ModTime(), w.Modified)
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && !w.Accessed.IsZero() && sys.Atim.Sec != w.Accessed.Unix() {
			return fmt.Errorf("%s: ewfmount atime %d, want %d", rel, sys.Atim.Sec, w.Accessed.Unix())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: read through ewfmount: %w", rel, err)
		}
		if got, wt := l01Hashes(b), l01Hashes(w.data); got != wt {
			return fmt.Errorf("%s: ewfmount content sha1 %s, want %s", rel, got.SHA1, wt.SHA1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Fatalf("ewfmount shows %d entries, want %d", seen, len(want))
	}
}

// ewfexportFiles extracts the L01 with ewfexport -f files (libewf's file entry reader, which
// also shows empty directories as directories) and compares the result with what was stored.
func ewfexportFiles(t testing.TB, l01 string, files []l01File) {
	t.Helper()
	testenv.Tool(t, "ewfexport")
	dir := filepath.Join(t.TempDir(), "export")
	out, err := exec.Command("ewfexport", "-q", "-u", "-f", "files", "-t", dir, l01).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ewfexport: SUCCESS") {
		t.Fatalf("ewfexport: %v\n%s", err, out)
	}
	want := expectTree(files)
	seen := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		w, ok := want[rel]
		if !ok {
			return fmt.Errorf("ewfexport wrote unexpected %q", rel)
		}
		seen++
		if d.IsDir() != w.Dir {
			return fmt.Errorf("%s: ewfexport dir %v, want %v", rel, d.IsDir(), w.Dir)
		}
		if w.Dir {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(b) != len(w.data) || l01Hashes(b) != l01Hashes(w.data) {
			return fmt.Errorf("%s: ewfexport wrote %d bytes sha1 %s, want %d bytes sha1 %s", rel, len(b), l01Hashes(b).SHA1, len(w.data), l01Hashes(w.data).SHA1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Fatalf("ewfexport wrote %d entries, want %d", seen, len(want))
	}
}

// libewfFilesPy lists an L01 through libewf's file entry API (what pyewf wraps) with ctypes and
// reads every file through libewf_file_entry_read_buffer: unlike ewfmount and ewfexport, it reads
// empty files too, and it returns the per-file hashes libewf parsed from the ltree.
const libewfFilesPy = `# Lists an L01 through libewf's own file entry API (as pyewf does) and reads every file.
import ctypes, hashlib, json, sys

try:
    lib = ctypes.CDLL("libewf.so.2")
except OSError as e:
    print("no libewf: %s" % e, file=sys.stderr)
    sys.exit(3)
P = ctypes.c_void_p
err = P()


def check(ok, what):
    if ok != 1:
        buf = ctypes.create_string_buffer(4096)
        if err.value:
            lib.libewf_error_sprint(err, buf, 4096)
        sys.exit("%s failed: %s" % (what, buf.value.decode(errors="replace")))


lib.libewf_file_entry_read_buffer.restype = ctypes.c_ssize_t
name = sys.argv[1].encode()
files, n = ctypes.POINTER(ctypes.c_char_p)(), ctypes.c_int()
check(lib.libewf_glob(name, ctypes.c_size_t(len(name)), ctypes.c_uint8(0), ctypes.byref(files), ctypes.byref(n), ctypes.byref(err)), "glob")
h = P()
check(lib.libewf_handle_initialize(ctypes.byref(h), ctypes.byref(err)), "initialize")
check(lib.libewf_handle_open(h, files, n, 1, ctypes.byref(err)), "open")
root = P()
check(lib.libewf_handle_get_root_file_entry(h, ctypes.byref(root), ctypes.byref(err)), "root")


def text(fn, fe, size):
    buf = ctypes.create_string_buffer(size)
    r = fn(fe, buf, ctypes.c_size_t(size), ctypes.byref(err))
    if r == -1:
        check(r, fn.__name__)
    return buf.value.decode() if r == 1 else ""


def walk(fe, path):
    nsub = ctypes.c_int()
    check(lib.libewf_file_entry_get_number_of_sub_file_entries(fe, ctypes.byref(nsub), ctypes.byref(err)), "sub entries")
    for i in range(nsub.value):
        sub = P()
        check(lib.libewf_file_entry_get_sub_file_entry(fe, i, ctypes.byref(sub), ctypes.byref(err)), "sub entry")
        size = ctypes.c_size_t()
        check(lib.libewf_file_entry_get_utf8_name_size(sub, ctypes.byref(size), ctypes.byref(err)), "name size")
        nm = ctypes.create_string_buffer(size.value)
        check(lib.libewf_file_entry_get_utf8_name(sub, nm, size, ctypes.byref(err)), "name")
        p = path + "/" + nm.value.decode() if path else nm.value.decode()
        typ, flags, fsize = ctypes.c_uint8(), ctypes.c_uint32(), ctypes.c_uint64()
        check(lib.libewf_file_entry_get_type(sub, ctypes.byref(typ), ctypes.byref(err)), "type")
        check(lib.libewf_file_entry_get_flags(sub, ctypes.byref(flags), ctypes.byref(err)), "flags")
        check(lib.libewf_file_entry_get_size(sub, ctypes.byref(fsize), ctypes.byref(err)), "size")
        times = {}
        for k in ("creation", "modification", "access", "entry_modification"):
            v = ctypes.c_uint32()
            check(getattr(lib, "libewf_file_entry_get_%s_time" % k)(sub, ctypes.byref(v), ctypes.byref(err)), k)
            times[k] = v.value
        e = {"path": p, "type": chr(typ.value), "flags": flags.value, "size": fsize.value, "times": times,
             "md5": text(lib.libewf_file_entry_get_utf8_hash_value_md5, sub, 33),
             "sha1": text(lib.libewf_file_entry_get_utf8_hash_value_sha1, sub, 41)}
        if e["type"] == "f":
            md5, sha1, total = hashlib.md5(), hashlib.sha1(), 0
            buf = ctypes.create_string_buffer(65536)
            while True:
                r = lib.libewf_file_entry_read_buffer(sub, buf, ctypes.c_size_t(65536), ctypes.byref(err))
                if r < 0:
                    check(-1, "read " + p)
                if r == 0:
                    break
                md5.update(buf.raw[:r])
                sha1.update(buf.raw[:r])
                total += r
            e["read"] = total
            e["data_md5"], e["data_sha1"] = md5.hexdigest(), sha1.hexdigest()
        print(json.dumps(e))
        walk(sub, p)


walk(root, "")
`

type libewfEntry struct {
	Path     string            `json:"path"`
	Type     string            `json:"type"`
	Flags    uint32            `json:"flags"`
	Size     int64             `json:"size"`
	Times    map[string]uint32 `json:"times"`
	MD5      string            `json:"md5"`
	SHA1     string            `json:"sha1"`
	Read     int64             `json:"read"`
	DataMD5  string            `json:"data_md5"`
	DataSHA1 string            `json:"data_sha1"`
}

// libewfFiles checks the L01 through libewf's library API: tree, types, flags, sizes, times,
// stored hashes and content.
func libewfFiles(t testing.TB, l01 string, files []l01File, opt LogicalOptions) {
	t.Helper()
	py := testenv.Tool(t, "python3")
	script := filepath.Join(t.TempDir(), "libewf_files.py")
	if err := os.WriteFile(script, []byte(libewfFilesPy), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, l01).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 && !testenv.Required() {
		t.Skipf("libewf.so.2 not loadable: %s", ee.Stderr)
	}
	if err != nil {
		if ee != nil {
			out = append(out, ee.Stderr...)
		}
		t.Fatalf("libewf listing: %v\n%s", err, out)
	}
	want := expectTree(files)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("libewf lists %d entries, want %d", len(lines), len(want))
	}
	for _, l := range lines {
		var g libewfEntry
		if err := json.Unmarshal([]byte(l), &g); err != nil {
			t.Fatal(err)
		}
		w, ok := want[g.Path]
		if !ok {
			t.Fatalf("libewf lists unexpected %q", g.Path)
		}
		if wt := map[bool]string{true: "d", false: "f"}[w.Dir]; g.Type != wt {
			t.Fatalf("%s: libewf type %s, want %s", g.Path, g.Type, wt)
		}
		if (g.Flags&lefDeleted != 0) != w.Deleted {
			t.Fatalf("%s: libewf flags %#x, deleted %v", g.Path, g.Flags, w.Deleted)
		}
		for k, wt := range map[string]time.Time{"creation": w.Created, "modification": w.Modified,
			"access": w.Accessed, "entry_modification": w.Changed} {
			if want := uint32(max(wt.Unix(), 0)); wt.IsZero() && g.Times[k] != 0 || !wt.IsZero() && g.Times[k] != want {
				t.Fatalf("%s: libewf %s time %d, want %v", g.Path, k, g.Times[k], wt)
			}
		}
		if w.Dir {
			continue
		}
		h := l01Hashes(w.data)
		if g.Size != int64(len(w.data)) || g.Read != g.Size || g.DataMD5 != h.MD5 || g.DataSHA1 != h.SHA1 {
			t.Fatalf("%s: libewf size %d read %d md5 %s sha1 %s, want %d bytes md5 %s sha1 %s",
				g.Path, g.Size, g.Read, g.DataMD5, g.DataSHA1, len(w.data), h.MD5, h.SHA1)
		}
		if !opt.MD5 {
			h.MD5 = ""
		}
		if !opt.SHA1 {
			h.SHA1 = ""
		}
		if g.MD5 != h.MD5 || g.SHA1 != h.SHA1 {
			t.Fatalf("%s: libewf stored hashes md5 %q sha1 %q, want %+v", g.Path, g.MD5, g.SHA1, h)
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func l01Corpus() []l01File {
	t0 := time.Unix(1700000000, 0)
	ts := func(e LogicalEntry, k int) LogicalEntry {
		e.Created = t0.Add(time.Duration(k) * time.Hour)
		e.Modified = t0.Add(time.Duration(k)*time.Hour + time.Minute)
		e.Accessed = t0.Add(time.Duration(k)*time.Hour + 2*time.Minute)
		e.Changed = t0.Add(time.Duration(k)*time.Hour + 3*time.Minute)
		return e
	}
	several := append(mixedData(5*32768+1234), randBytes(40000)...)
	files := []l01File{
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4", Dir: true}, 0)},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/empty"}, 1), data: []byte{}},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/one"}, 2), data: []byte{'x'}},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/chunk"}, 3), data: randBytes(32768)},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/usr/bin/several"}, 4), data: several},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/usr/share/zeros"}, 5), data: make([]byte, 100000)},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/usr/lib/empty-dir", Dir: true}, 6)},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/café/日本語.txt"}, 7), data: []byte("こんにちは")},
		{LogicalEntry: ts(LogicalEntry{Path: "p1-ext4/deleted.doc", Deleted: true}, 8), data: randBytes(777)},
		{LogicalEntry: LogicalEntry{Path: "p2-fat/NOTIMES.TXT"}, data: []byte("no times at all\n")},
	}
	for i := range files {
		files[i].Size = int64(len(files[i].data))
	}
	return files
}

func TestL01RoundTrip(t *testing.T) {
	for _, c := range []Compression{CompressNone, CompressFast, CompressBest, CompressEmptyBlock} {
		t.Run(c.String(), func(t *testing.T) {
			files := l01Corpus()
			opt := LogicalOptions{Compression: c, MD5: true, SHA1: true}
			l01, _ := writeL01(t, files, opt)
			checkOurReader(t, l01, files, opt)
			ewfmountFiles(t, l01, files)
			ewfexportFiles(t, l01, files)
			libewfFiles(t, l01, files, opt)
		})
	}
}

func TestL01NoHashes(t *testing.T) {
	files := l01Corpus()
	opt := LogicalOptions{Compression: CompressFast}
	l01, _ := writeL01(t, files, opt)
	checkOurReader(t, l01, files, opt)
	libewfFiles(t, l01, files, opt)
	r, err := OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, e := range r.Entries() {
		if e.Hashes != (FileHashes{}) {
			t.Fatalf("%s: hashes %+v stored though not requested", e.Path, e.Hashes)
		}
	}
}

func TestL01Segments(t *testing.T) {
	var files []l01File
	for i := range 12 {
		d := randBytes(300_000 + i*1000)
		if i%3 == 0 {
			d = mixedData(400_000)
		}
		files = append(files, l01File{LogicalEntry: LogicalEntry{Path: fmt.Sprintf("vol/dir%d/f%02d.bin", i%4, i),
			Size: int64(len(d)), Modified: time.Unix(1600000000+int64(i), 0)}, data: d})
	}
	opt := LogicalOptions{Compression: CompressFast, SegmentSize: 1 << 20, MD5: true, SHA1: true}
	l01, w := writeL01(t, files, opt)
	segs := w.Files()
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	for i, s := range segs {
		if want := LogicalSegmentName(strings.TrimSuffix(l01, ".L01"), i+1); s != want {
			t.Fatalf("segment %d named %s, want %s", i+1, s, want)
		}
		st, err := os.Stat(s)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > opt.SegmentSize {
			t.Fatalf("%s: %d bytes, over the segment size", s, st.Size())
		}
	}
	checkOurReader(t, l01, files, opt)
	ewfmountFiles(t, l01, files)
	ewfexportFiles(t, l01, files)
	libewfFiles(t, l01, files, opt)
}

// TestL01TreeInLastSegment fills the last segment so that the ltree needs one of its own.
func TestL01TreeInLastSegment(t *testing.T) {
	var files []l01File
	// 31 uncompressed chunks fill most of a 1 MiB segment; the 300 one-byte files complete the
	// 31st chunk, so all data is in the first segment but its ltree no longer fits there.
	d := randBytes(31*32768 - 300)
	files = append(files, l01File{LogicalEntry: LogicalEntry{Path: "big", Size: int64(len(d))}, data: d})
	for i := range 300 {
		files = append(files, l01File{LogicalEntry: LogicalEntry{Path: fmt.Sprintf("many/a-rather-long-file-name-%04d.txt", i), Size: 1}, data: []byte{byte(i)}})
	}
	opt := LogicalOptions{Compression: CompressNone, SegmentSize: 1 << 20, MD5: true}
	l01, w := writeL01(t, files, opt)
	if len(w.Files()) != 2 {
		t.Fatalf("%d segments, want 2", len(w.Files()))
	}
	for _, s := range w.Files() {
		if st, err := os.Stat(s); err != nil || st.Size() > opt.SegmentSize {
			t.Fatalf("%s: %v %v", s, st.Size(), err)
		}
	}
	segs := w.Files()
	if got := strings.Join(sectionTypes(t, segs[len(segs)-1]), " "); got != "data ltree digest hash done" {
		t.Fatalf("last segment sections: %s", got)
	}
	checkOurReader(t, l01, files, opt)
	ewfmountFiles(t, l01, files)
	ewfexportFiles(t, l01, files)
	libewfFiles(t, l01, files, opt)
}

// sectionTypes lists the sections of one segment file.
func sectionTypes(t testing.TB, name string) []string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for off := int64(fileHdrSize); off+descSize <= int64(len(b)); {
		d := b[off : off+descSize]
		typ := string(bytes.TrimRight(d[:16], "\x00"))
		types = append(types, typ)
		next := int64(binary.LittleEndian.Uint64(d[16:]))
		if typ == "next" || typ == "done" || next <= off {
			break
		}
		off = next
	}
	return types
}

func TestL01ManyFiles(t *testing.T) {
	var files []l01File
	for i := range 2000 {
		d := []byte(fmt.Sprintf("file %d\n%s", i, strings.Repeat("x", i%50)))
		files = append(files, l01File{LogicalEntry: LogicalEntry{Path: fmt.Sprintf("p1/d%02d/s%d/f%04d", i%20, i%3, i),
			Size: int64(len(d)), Modified: time.Unix(1500000000+int64(i), 0)}, data: d})
	}
	opt := LogicalOptions{Compression: CompressFast, MD5: true}
	start := time.Now()
	l01, _ := writeL01(t, files, opt)
	t.Logf("2000 files written in %v", time.Since(start))
	checkOurReader(t, l01, files, opt)
	ewfmountFiles(t, l01, files)
	ewfexportFiles(t, l01, files)
	libewfFiles(t, l01, files, opt)
}

type failReader struct {
	data []byte
	err  error
}

func (f *failReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// A short or failing read is reported but the entry stays consistent and writing goes on.
func TestL01ShortRead(t *testing.T) {
	base := filepath.Join(t.TempDir(), "short")
	opt := LogicalOptions{Metadata: testMeta(), Compression: CompressFast, MD5: true, SHA1: true}
	w, err := NewLogicalWriter(osCreate, base, opt)
	if err != nil {
		t.Fatal(err)
	}
	part := randBytes(50000)
	_, err = w.AddFile(LogicalEntry{Path: "a/short", Size: 100000}, bytes.NewReader(part))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short read: %v", err)
	}
	ioErr := errors.New("bad sector")
	h, err := w.AddFile(LogicalEntry{Path: "a/failing", Size: 100000}, &failReader{part[:1000], ioErr})
	if !errors.Is(err, ioErr) || h != l01Hashes(part[:1000]) {
		t.Fatalf("failing read: %v %+v", err, h)
	}
	if _, err := w.AddFile(LogicalEntry{Path: "a/nothing", Size: 10}, bytes.NewReader(nil)); err == nil {
		t.Fatal("no error for a read of nothing")
	}
	after := randBytes(70000)
	if _, err := w.AddFile(LogicalEntry{Path: "a/after", Size: int64(len(after))}, bytes.NewReader(after)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddFile(LogicalEntry{Path: "a/after", Size: 1}, bytes.NewReader([]byte{1})); err == nil {
		t.Fatal("duplicate path accepted")
	}
	if _, err := w.AddFile(LogicalEntry{Path: "a/after/x", Size: 1}, bytes.NewReader([]byte{1})); err == nil {
		t.Fatal("file under a file accepted")
	}
	if err := w.AddDir(LogicalEntry{Path: "a/../b", Dir: true}); err == nil {
		t.Fatal("path with .. accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := []l01File{
		{LogicalEntry: LogicalEntry{Path: "a/short", Size: 50000}, data: part},
		{LogicalEntry: LogicalEntry{Path: "a/failing", Size: 1000}, data: part[:1000]},
		{LogicalEntry: LogicalEntry{Path: "a/nothing"}, data: []byte{}},
		{LogicalEntry: LogicalEntry{Path: "a/after", Size: 70000}, data: after},
	}
	checkOurReader(t, base+".L01", files, opt)
	ewfmountFiles(t, base+".L01", files)
	ewfexportFiles(t, base+".L01", files)
	libewfFiles(t, base+".L01", files, opt)
}

// ewfinfo shows the case metadata of an L01; ewfverify checks the stream's MD5.
func TestL01EwfinfoEwfverify(t *testing.T) {
	testenv.Tool(t, "ewfinfo")
	files := l01Corpus()
	opt := LogicalOptions{Compression: CompressBest, MD5: true, SHA1: true}
	l01, _ := writeL01(t, files, opt)
	out, err := exec.Command("ewfinfo", l01).CombinedOutput()
	if err != nil {
		t.Fatalf("ewfinfo: %v\n%s", err, out)
	}
	for _, s := range []string{"CASE-42", "EV-7", "J. Doe", "test disk", "single files", "日本語.txt", "deleted.doc"} {
		if !strings.Contains(strings.ToLower(string(out)), strings.ToLower(s)) {
			t.Fatalf("ewfinfo output lacks %q:\n%s", s, out)
		}
	}
	t.Logf("ewfinfo:\n%s", out)
	testenv.Tool(t, "ewfverify")
	out, err = exec.Command("ewfverify", "-q", "-d", "sha1", l01).CombinedOutput()
	t.Logf("ewfverify:\n%s", out)
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("ewfverify: %v\n%s", err, out)
	}
	// The stream hashes ewfverify computed must be the ones we stored.
	r, err := OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sh := r.StreamHashes()
	got := map[string]string{}
	for _, m := range hashRE.FindAllStringSubmatch(string(out), -1) {
		got[m[1]] = m[2]
	}
	if got["MD5"] != sh["MD5"] || got["SHA1"] != sh["SHA1"] {
		t.Fatalf("ewfverify computed %v, stored %v", got, sh)
	}
}

// A set with directories only has an empty logical stream: no chunk at all.
func TestL01DirsOnly(t *testing.T) {
	files := []l01File{
		{LogicalEntry: LogicalEntry{Path: "p1/a/b", Dir: true, Modified: time.Unix(1650000000, 0)}},
		{LogicalEntry: LogicalEntry{Path: "p1/c", Dir: true}},
	}
	opt := LogicalOptions{Compression: CompressFast, MD5: true}
	l01, _ := writeL01(t, files, opt)
	checkOurReader(t, l01, files, opt)
	ewfmountFiles(t, l01, files)
	ewfexportFiles(t, l01, files)
	libewfFiles(t, l01, files, opt)
}

// Adding entries and rendering the tree must stay linear: a quadratic step (a scan of the
// siblings or of all entries per add) would take minutes for 100,000 entries in one directory.
func TestL01TreeScales(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	w, err := NewLogicalWriter(func(string) (File, error) { return discard{}, nil }, "x", LogicalOptions{Metadata: testMeta()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	one := []byte{1}
	for i := range 100_000 {
		if _, err := w.AddFile(LogicalEntry{Path: fmt.Sprintf("flat/f%06d", i), Size: 1}, bytes.NewReader(one)); err != nil {
			t.Fatal(err)
		}
	}
	size := w.ltreeSection().size
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("100000 entries added and rendered (%d KiB of ltree) in %v", size>>10, el)
	if el > 20*time.Second {
		t.Fatalf("100000 entries took %v", el)
	}
}

func BenchmarkL01AddFile(b *testing.B) {
	data := mixedData(8 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, _ := NewLogicalWriter(func(string) (File, error) { return discard{}, nil }, "x",
			LogicalOptions{Compression: CompressFast, MD5: true, SHA1: true})
		w.AddFile(LogicalEntry{Path: "f", Size: int64(len(data))}, bytes.NewReader(data))
		w.Close()
	}
}

// Verify catches a changed byte in a file's data (stored uncompressed, so only the digests and
// the chunk's Adler-32 notice) and passes on an intact set.
func TestL01Verify(t *testing.T) {
	files := l01Corpus()
	opt := LogicalOptions{Compression: CompressNone, MD5: true, SHA1: true}
	l01, _ := writeL01(t, files, opt)
	r, err := OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b, err := os.ReadFile(l01)
	if err != nil {
		t.Fatal(err)
	}
	// The 32 KiB random file is stored raw: flip one of its bytes.
	i := bytes.Index(b, files[3].data[:64])
	if i < 0 {
		t.Fatal("raw chunk not found")
	}
	b[i+100] ^= 0xff
	if err := os.WriteFile(l01, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Verify(); err == nil {
		t.Fatal("Verify passed a corrupted set")
	} else {
		t.Log(err)
	}
}

// fullFile fails every write once limit bytes are in it, like a share that filled up.
type fullFile struct {
	*os.File
	limit int64
}

var errFull = errors.New("no space left on the share")

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, errFull
	}
	return f.File.WriteAt(p, off)
}

// A target that fails under the writer (a share that fills up) stops the copy with the target's
// error from AddFile and Close, and no call hangs.
func TestL01TargetFails(t *testing.T) {
	base := filepath.Join(t.TempDir(), "full")
	create := func(name string) (File, error) {
		f, err := os.Create(name)
		return &fullFile{File: f, limit: 3 << 20}, err
	}
	w, err := NewLogicalWriter(create, base, LogicalOptions{Metadata: testMeta(), Compression: CompressFast, MD5: true})
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(256 << 10) // incompressible: stored as is, so the target fills
	var addErr error
	for i := 0; i < 64 && addErr == nil; i++ {
		_, addErr = w.AddFile(LogicalEntry{Path: fmt.Sprintf("f%d", i), Size: int64(len(data))}, bytes.NewReader(data))
	}
	if addErr != nil && !errors.Is(addErr, errFull) {
		t.Fatalf("AddFile: %v, want the target's error", addErr)
	}
	if err := w.Close(); !errors.Is(err, errFull) {
		t.Fatalf("Close: %v, want the target's error", err)
	}
	if addErr == nil {
		t.Fatal("16 MiB went into a 3 MiB target without an error from AddFile")
	}
}

// Threads.Go starts every goroutine of the writer (batches, their stream digests, the encoders,
// a large write's file digests), and what it writes is what the go statement's writer writes.
func TestL01Threads(t *testing.T) {
	files := append(l01Corpus(), l01File{LogicalEntry: LogicalEntry{Path: "p1-ext4/big", Size: 3 << 20}, data: mixedData(3 << 20)})
	var started atomic.Int64
	opt := LogicalOptions{Compression: CompressFast, MD5: true, SHA1: true}
	withThreads := opt
	withThreads.Threads = Threads{Workers: 1, Go: func(f func()) { started.Add(1); go f() }}
	l01, w := writeL01(t, files, withThreads)
	checkOurReader(t, l01, files, withThreads)
	// At least a batch (its goroutine, two stream digests, one encoder) and the big file's digests.
	if n := started.Load(); n < 6 {
		t.Fatalf("Threads.Go started %d goroutines, want the writer's every one (at least 6)", n)
	}
	_, plain := writeL01(t, files, opt)
	if got, want := w.StreamHashes(), plain.StreamHashes(); !maps.Equal(got, want) {
		t.Fatalf("stream hashes with Threads %v, without %v", got, want)
	}
}

// ltreeSectionRef is the ltree body as utf16.Encode gives it: the encoding ltreeSection must keep.
func ltreeSectionRef(text string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(text)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// sectionBody is what x's descriptor is followed by in the file.
func sectionBody(t *testing.T, x namedSection) []byte {
	t.Helper()
	var b []byte
	if err := x.emit(func(p []byte) error { b = append(b, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != x.size {
		t.Fatalf("%s section: emitted %d bytes, size says %d", x.typ, len(b), x.size)
	}
	return b
}

// checkLtreeSection renders text through ltreeSection in one piece, and also split after every
// character (the pieces renderLtree hands on end on whole lines, never inside a character).
func checkLtreeSection(t *testing.T, text string) {
	t.Helper()
	checkLtreeBody(t, text, sectionBody(t, ltreeSection(func(emit func([]byte)) { emit([]byte(text)) })))
	pieces := func(emit func([]byte)) {
		rest := []byte(text)
		for len(rest) > 0 {
			_, n := utf8.DecodeRune(rest)
			emit(rest[:n])
			rest = rest[n:]
		}
	}
	checkLtreeBody(t, text, sectionBody(t, ltreeSection(pieces)))
}

func checkLtreeBody(t *testing.T, text string, got []byte) {
	t.Helper()
	want := ltreeSectionRef(text)
	if !bytes.Equal(got[ltreeHdrSize:], want) {
		t.Fatalf("%q: UTF-16 body %x, want %x", text, got[ltreeHdrSize:], want)
	}
	if sum := md5.Sum(want); !bytes.Equal(got[:16], sum[:]) {
		t.Fatalf("%q: header MD5 %x, want %x", text, got[:16], sum)
	}
	if n := binary.LittleEndian.Uint32(got[16:]); int(n) != len(want) {
		t.Fatalf("%q: header size %d, want %d", text, n, len(want))
	}
}

// The ltree text is UTF-16LE as utf16.Encode makes it, for every kind of character a file name
// brings: ASCII, two- and three-byte UTF-8, characters beyond the BMP (surrogate pairs), and bytes
// that are not UTF-8 (U+FFFD, as a []rune conversion makes them).
func TestLtreeSectionUTF16(t *testing.T) {
	for _, s := range []string{"", "5\nrec\tname\n", "résumé.doc", "漢字/ファイル", "😀 photo.jpg", "a\xffb", "\xed\xa0\x80", "\xf0\x9f", "\U0010FFFF"} {
		checkLtreeSection(t, s)
	}
}

func FuzzLtreeSection(f *testing.F) {
	for _, s := range []string{"entry\t1", "😀é漢", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(checkLtreeSection)
}
