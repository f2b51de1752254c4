package ewf

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestOddSizedMedia: a source whose size is not a multiple of the sector size is stored as whole
// sectors, the last one zero-padded. libewf reads it (ewfverify computes the padded media's
// hashes, which are the ones stored), ewfinfo counts the sectors, ewfexport gives the source
// followed by the padding zeros, and so does our reader.
func TestOddSizedMedia(t *testing.T) {
	testenv.Tool(t, "ewfverify")
	ewfinfo, ewfexport := testenv.Tool(t, "ewfinfo"), testenv.Tool(t, "ewfexport")
	sectorsRE := regexp.MustCompile(`Number of sectors:\s+(\d+)`)
	for _, size := range []int{1, 511, 32767, 1000001} {
		for _, c := range []Compression{CompressNone, CompressFast} {
			data := mixedData(size)
			data[0], data[size-1] = 0xA5, 0x5A // the edges are not zero by chance
			padded := append(append([]byte(nil), data...), make([]byte, (512-size%512)%512)...)
			base := filepath.Join(t.TempDir(), "odd")
			w, err := NewWriter(osCreate, base, Options{Metadata: testMeta(), Compression: c, MediaSize: int64(size)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			m, s := md5.Sum(padded), sha1.Sum(padded)
			w.SetHash("MD5", m[:])
			w.SetHash("SHA1", s[:])
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			e01 := base + ".E01"
			m5, s1 := hashes(padded)
			ewfverify(t, e01, m5, s1)

			out, err := exec.Command(ewfinfo, e01).CombinedOutput()
			sm := sectorsRE.FindSubmatch(out)
			if err != nil || sm == nil {
				t.Fatalf("ewfinfo: %v\n%s", err, out)
			}
			if n, _ := strconv.Atoi(string(sm[1])); n != (size+511)/512 {
				t.Fatalf("size %d: ewfinfo counts %d sectors, want %d", size, n, (size+511)/512)
			}

			raw := filepath.Join(t.TempDir(), "export")
			if out, err := exec.Command(ewfexport, "-q", "-u", "-f", "raw", "-t", raw, e01).CombinedOutput(); err != nil {
				t.Fatalf("ewfexport: %v\n%s", err, out)
			}
			exported, err := os.ReadFile(raw + ".raw")
			if err != nil {
				t.Fatal(err)
			}
			if len(exported) != len(padded) || !bytes.Equal(exported[:size], data) || !bytes.Equal(exported, padded) {
				t.Fatalf("size %d %v: ewfexport gave %d bytes, want the source then zeros to %d", size, c, len(exported), len(padded))
			}
			got, _ := readAll(t, e01)
			if !bytes.Equal(got, padded) {
				t.Fatalf("size %d %v: our reader gave %d bytes, want %d", size, c, len(got), len(padded))
			}
		}
	}
}
