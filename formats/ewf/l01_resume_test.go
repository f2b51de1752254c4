package ewf

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestL01ResumeAfterCrash checkpoints between files, writes more (which a crash then loses), and
// resumes from the JSON of the checkpoint in a new writer, across segment boundaries: the finished
// set holds every file exactly once, libewf reads it, and the stream hashes are right.
func TestL01ResumeAfterCrash(t *testing.T) {
	var files []l01File
	for i := range 24 {
		d := mixedData(70_000 + i*5_003) // not chunk multiples: checkpoints fall inside chunks
		if i%4 == 1 {
			d = randBytes(90_001)
		}
		files = append(files, l01File{LogicalEntry: LogicalEntry{Path: fmt.Sprintf("p1-ext4/d%d/f%02d", i%3, i),
			Size: int64(len(d)), Modified: time.Unix(1650000000+int64(i), 0)}, data: d})
	}
	files = append(files, l01File{LogicalEntry: LogicalEntry{Path: "p1-ext4/empty-dir", Dir: true}})
	for _, seg := range []int64{0, 1 << 20} {
		t.Run(fmt.Sprintf("segment=%d", seg), func(t *testing.T) {
			opt := LogicalOptions{Metadata: testMeta(), Compression: CompressFast, SegmentSize: seg, MD5: true, SHA1: true}
			base := filepath.Join(t.TempDir(), "logical")
			w, err := NewLogicalWriter(osCreate, base, opt)
			if err != nil {
				t.Fatal(err)
			}
			add := func(w *LogicalWriter, f l01File) {
				t.Helper()
				if f.Dir {
					err = w.AddDir(f.LogicalEntry)
				} else {
					_, err = w.AddFile(f.LogicalEntry, &oddReader{b: f.data})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			const at = 13
			for _, f := range files[:at] {
				add(w, f)
			}
			st, err := w.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Pending) == 0 {
				t.Fatal("the checkpoint should fall inside a chunk for this test")
			}
			for _, f := range files[at : at+5] { // lost in the crash: the resume writes them again
				add(w, f)
			}
			w.w.bw.Flush()
			js, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			var back LogicalState
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			openExisting := func(name string) (File, error) { return os.OpenFile(name, os.O_WRONLY, 0) }
			r, err := ResumeLogical(osCreate, openExisting, os.Truncate, base, opt, back) // os.Create replaces segments the crash left
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files[at:] {
				add(r, f)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			// Segments the crashed run wrote past the resumed set's are the caller's to remove.
			for i := len(r.Files()) + 1; ; i++ {
				if os.Remove(LogicalSegmentName(base, i)) != nil {
					break
				}
			}
			l01 := base + ".L01"
			checkOurReader(t, l01, files, opt)
			lr, err := OpenLogical(l01)
			if err != nil {
				t.Fatal(err)
			}
			if err := lr.Verify(); err != nil {
				t.Fatalf("verify after resume: %v", err)
			}
			lr.Close()
			ewfmountFiles(t, l01, files)
			libewfFiles(t, l01, files, opt)
		})
	}
}

// TestL01PauseTwice pauses (checkpoint, close) inside a chunk, resumes and pauses again before
// the partial chunk is full, then resumes to the end, adding files both ways (AddFile and
// AddPrepared): the second checkpoint's stream hash states hold the partial chunk once, so the
// finished set's stream hashes are its content's (our reader and ewfverify).
func TestL01PauseTwice(t *testing.T) {
	var files []l01File
	for i := range 12 {
		d := mixedData(40_000 + i*3_001)
		files = append(files, l01File{LogicalEntry: LogicalEntry{Path: fmt.Sprintf("v/f%02d", i), Size: int64(len(d))}, data: d})
	}
	opt := LogicalOptions{Metadata: testMeta(), Compression: CompressFast, MD5: true, SHA1: true}
	base := filepath.Join(t.TempDir(), "paused")
	add := func(w *LogicalWriter, f l01File, prepared bool) {
		t.Helper()
		var err error
		if prepared {
			_, err = w.AddPrepared(f.LogicalEntry, w.Prepare(f.data), nil)
		} else {
			_, err = w.AddFile(f.LogicalEntry, &oddReader{b: f.data})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	pause := func(w *LogicalWriter) LogicalState {
		t.Helper()
		st, err := w.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Pending) == 0 {
			t.Fatal("the checkpoint should fall inside a chunk for this test")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return st
	}
	openExisting := func(name string) (File, error) { return os.OpenFile(name, os.O_WRONLY, 0) }
	w, err := NewLogicalWriter(osCreate, base, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files[:5] {
		add(w, f, false)
	}
	st := pause(w)
	if w, err = ResumeLogical(osCreate, openExisting, os.Truncate, base, opt, st); err != nil {
		t.Fatal(err)
	}
	st = pause(w) // nothing written since the resume: the partial chunk is the restored one
	if w, err = ResumeLogical(osCreate, openExisting, os.Truncate, base, opt, st); err != nil {
		t.Fatal(err)
	}
	for i, f := range files[5:] {
		add(w, f, i%2 == 0)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l01 := base + ".L01"
	checkOurReader(t, l01, files, opt)
	lr, err := OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	if err := lr.Verify(); err != nil {
		t.Fatalf("stream after two pauses: %v", err)
	}
	ewfverify := testenv.Tool(t, "ewfverify")
	if out, err := exec.Command(ewfverify, "-q", l01).CombinedOutput(); err != nil {
		t.Fatalf("ewfverify: %v\n%s", err, out)
	}
}
