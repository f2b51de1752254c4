package ewf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestL01PreparedMatchesAddFile stores the same files, with the same short and failing reads,
// once through AddFile and once prepared on several goroutines and added with AddPrepared: the
// two sets hold the same stream (same chunks, same stream hashes), the same entries with the same
// hashes, and AddPrepared returns AddFile's hashes and errors; ewfverify accepts the prepared set
// and our reader gives back every file's bytes.
func TestL01PreparedMatchesAddFile(t *testing.T) {
	ioErr := errors.New("bad sector")
	part := randBytes(50000)
	type file struct {
		l01File
		size  int64 // what the entry claims
		rerr  error // what stops the read, after data
		short bool  // data is shorter than size without an error (AddFile sees EOF)
	}
	var files []file
	for _, f := range l01Corpus() {
		files = append(files, file{l01File: f, size: f.Size})
	}
	files = append(files,
		file{l01File: l01File{LogicalEntry: LogicalEntry{Path: "x/short"}, data: part}, size: 100000, short: true},
		file{l01File: l01File{LogicalEntry: LogicalEntry{Path: "x/failing"}, data: part[:1000]}, size: 100000, rerr: ioErr},
		file{l01File: l01File{LogicalEntry: LogicalEntry{Path: "x/nothing"}, data: nil}, size: 10, rerr: ioErr},
		file{l01File: l01File{LogicalEntry: LogicalEntry{Path: "x/big"}, data: mixedData(5<<20 + 17)}, size: 5<<20 + 17},
	)
	opt := LogicalOptions{Metadata: testMeta(), Compression: CompressFast, MD5: true, SHA1: true}
	dir := t.TempDir()
	write := func(name string, prepared bool) (string, map[string]string, []string) {
		base := filepath.Join(dir, name)
		w, err := NewLogicalWriter(osCreate, base, opt)
		if err != nil {
			t.Fatal(err)
		}
		// Prepare every file at once on goroutines, as a prefetcher does.
		preps := make([]PreparedFile, len(files))
		if prepared {
			var wg sync.WaitGroup
			for i, f := range files {
				wg.Go(func() { preps[i] = w.Prepare(f.data) })
			}
			wg.Wait()
		}
		var results []string
		for i, f := range files {
			e := f.LogicalEntry
			e.Size = f.size
			if f.Dir {
				if err := w.AddDir(e); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var h FileHashes
			var err error
			if prepared {
				h, err = w.AddPrepared(e, preps[i], f.rerr)
			} else {
				var r io.Reader = bytes.NewReader(f.data)
				if f.rerr != nil {
					r = &failReader{f.data, f.rerr}
				}
				h, err = w.AddFile(e, r)
			}
			if (err != nil) != (f.rerr != nil || f.short) || (f.rerr != nil && !errors.Is(err, f.rerr)) {
				t.Fatalf("%s: %s: error %v", name, f.Path, err)
			}
			if want := l01Hashes(f.data); h != want {
				t.Fatalf("%s: %s: hashes %+v, want %+v", name, f.Path, h, want)
			}
			results = append(results, f.Path+" "+h.MD5+" "+h.SHA1+" "+errString(err))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return base + ".L01", w.StreamHashes(), results
	}
	plain, plainSums, plainRes := write("plain", false)
	prep, prepSums, prepRes := write("prepared", true)
	if strings.Join(plainRes, "\n") != strings.Join(prepRes, "\n") {
		t.Fatalf("AddFile gave\n%s\nAddPrepared gave\n%s", strings.Join(plainRes, "\n"), strings.Join(prepRes, "\n"))
	}
	if plainSums["MD5"] != prepSums["MD5"] || plainSums["SHA1"] != prepSums["SHA1"] {
		t.Fatalf("stream hashes differ: %v / %v", plainSums, prepSums)
	}
	var want []l01File
	for _, f := range files {
		f.Size = int64(len(f.data))
		want = append(want, f.l01File)
	}
	checkOurReader(t, prep, want, opt)
	a, b := readEntries(t, plain), readEntries(t, prep)
	if a != b {
		t.Fatalf("entries differ:\n%s\n---\n%s", a, b)
	}
	testenv.Tool(t, "ewfverify")
	if out, err := exec.Command("ewfverify", "-q", "-d", "sha1", prep).CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("ewfverify: %v\n%s", err, out)
	}
	if _, err := os.Stat(plain); err != nil {
		t.Fatal(err)
	}
}

// A prepared file larger than its entry is refused before anything is stored.
func TestL01PreparedTooLarge(t *testing.T) {
	w, err := NewLogicalWriter(osCreate, filepath.Join(t.TempDir(), "big"), LogicalOptions{Metadata: testMeta(), MD5: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.AddPrepared(LogicalEntry{Path: "f", Size: 2}, w.Prepare([]byte("abc")), nil); err == nil {
		t.Fatal("3 bytes accepted for a 2-byte file")
	}
	if _, err := w.AddPrepared(LogicalEntry{Path: "f", Size: 3}, w.Prepare([]byte("abc")), nil); err != nil {
		t.Fatalf("the refused file's path must stay free: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "-"
	}
	return err.Error()
}

// readEntries lists a set's entries (path, size, hashes, extent) as text, to compare two sets.
func readEntries(t *testing.T, l01 string) string {
	t.Helper()
	r, err := OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b strings.Builder
	for _, e := range r.Entries() {
		fmt.Fprintf(&b, "%s dir=%v size=%d extent=%d+%d %s %s\n", e.Path, e.Dir, e.Size, e.off, e.dataSize, e.Hashes.MD5, e.Hashes.SHA1)
	}
	return b.String()
}
