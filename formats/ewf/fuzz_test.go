package ewf

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// The fuzz targets give hostile segment files to the E01 reader (every section type), the L01
// reader and the ltree parser: errors, never a panic or a hang. Seeds are small sets written by
// this package (no, fast and empty-block compression) plus, in testdata/fuzz, a segment written by
// libewf's ewfacquire; inputs that once failed are kept there as regression cases.

type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

// memOpen serves data as the set's only segment.
func memOpen(first string, data []byte) OpenFunc {
	return func(name string) (ReadFile, error) {
		if name != first {
			return nil, fs.ErrNotExist
		}
		return memFile{bytes.NewReader(data)}, nil
	}
}

func seedFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzEWF(f *testing.F) {
	data := mixedData(3*32768 + 700)
	for _, c := range []Compression{CompressNone, CompressFast, CompressEmptyBlock} {
		e01, _ := writeImage(f, data, Options{Compression: c, SectorsPerChunk: 16})
		seedFiles(f, e01)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		defer testenv.NoHang(20 * time.Second)()
		r, err := Open(memOpen("x.E01", in), "x.E01")
		if err != nil {
			return
		}
		defer r.Close()
		_, _, _ = r.Metadata(), r.Hashes(), r.ReadErrors()
		n, err := io.Copy(io.Discard, io.NewSectionReader(r, 0, min(r.Size(), 16<<20)))
		if err == nil && n != min(r.Size(), 16<<20) {
			t.Fatalf("read %d of %d bytes without an error", n, r.Size())
		}
	})
}

func fuzzL01Seeds(f *testing.F) []string {
	files := l01Corpus()[:4]
	var out []string
	for _, c := range []Compression{CompressNone, CompressFast} {
		l01, _ := writeL01(f, files, LogicalOptions{Compression: c, MD5: true, SHA1: true})
		out = append(out, l01)
	}
	return out
}

func FuzzL01(f *testing.F) {
	seedFiles(f, fuzzL01Seeds(f)...)
	f.Fuzz(func(t *testing.T, in []byte) {
		defer testenv.NoHang(20 * time.Second)()
		lr, err := OpenLogicalSet(memOpen("x.L01", in), "x.L01")
		if err != nil {
			return
		}
		defer lr.Close()
		for _, e := range lr.Entries() {
			if e.Dir {
				continue
			}
			if sr, err := lr.Open(e.Path); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(sr, 1<<20))
			}
		}
		_ = lr.Verify()
	})
}

func FuzzLtree(f *testing.F) {
	for _, p := range fuzzL01Seeds(f) {
		r, err := openSet(memOpenFile(f, p), p, true)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.ltree)
		r.Close()
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		defer testenv.NoHang(20 * time.Second)()
		files, err := parseLtree(in)
		if err != nil {
			return
		}
		for _, e := range files {
			if e.Path == "" {
				t.Fatalf("entry without a path: %+v", e)
			}
		}
	})
}

func memOpenFile(f *testing.F, path string) OpenFunc {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return memOpen(path, b)
}
