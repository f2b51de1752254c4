package logical

import (
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestConcurrentOpen: ConcurrentOpen says yes for the corpus' ext4 and FAT32 and no for its NTFS;
// on the file systems it says yes for, files opened and read in small pieces from four goroutines
// at once (under -race in make test's race run) give the content a serial read gives.
func TestConcurrentOpen(t *testing.T) {
	img := testenv.Corpus(t)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	vols, err := Volumes(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"ext4": true, "fat32": true, "ntfs": false}
	for _, v := range vols {
		fsys, err := OpenFS(f, v)
		if err != nil {
			t.Fatal(err)
		}
		if got := ConcurrentOpen(fsys); got != want[v.FS] {
			t.Fatalf("%s: ConcurrentOpen %v", v.FS, got)
		}
		if !want[v.FS] {
			continue
		}
		var files []Entry
		serial := map[string]string{}
		for _, e := range walkAll(t, fsys) {
			if e.Regular() && e.Size <= 64<<10 && len(files) < 600 {
				files = append(files, e)
				if serial[e.Path], err = entryMD5(fsys, e); err != nil {
					t.Fatalf("%s: %s: %v", v.FS, e.Path, err)
				}
			}
		}
		if len(files) < 300 {
			t.Fatalf("%s: only %d small files to read", v.FS, len(files))
		}
		var wg sync.WaitGroup
		errs := make(chan string, len(files))
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < len(files); i += 4 {
					e := files[i]
					rc, err := fsys.Open(e)
					if err != nil {
						errs <- e.Path + ": " + err.Error()
						continue
					}
					h := md5.New()
					_, err = io.CopyBuffer(h, struct{ io.Reader }{rc}, make([]byte, 4096))
					rc.Close()
					if sum := hex.EncodeToString(h.Sum(nil)); err != nil || sum != serial[e.Path] {
						errs <- e.Path + ": concurrent read differs from the serial one"
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("%s: %s", v.FS, e)
		}
	}
}
