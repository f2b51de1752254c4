package ewf

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/evidenced/evidenced/formats/deflate"
	"github.com/evidenced/evidenced/internal/synthdisk"
	"github.com/evidenced/evidenced/internal/testenv"
)

// TestFastSizeVsEwfacquire guards issue 16's size target: on a text-heavy disk (mail with base64
// attachments, logs, prose) and on one full of already-compressed files, our E01 "fast" is at most
// 1 % larger than `ewfacquire -c deflate:fast` of the same bytes, and libewf verifies it.
func TestFastSizeVsEwfacquire(t *testing.T) {
	testenv.Tool(t, "ewfacquire")
	testenv.Tool(t, "ewfverify")
	for _, kind := range []synthdisk.Kind{synthdisk.Text, synthdisk.Compressed} {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "disk.img")
			f, err := os.Create(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := synthdisk.Write(f, kind, 12<<20, 16); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			ours := imageFile(t, src, filepath.Join(dir, "ours"), Options{Compression: CompressFast})
			ref := filepath.Join(dir, "ref")
			if out, err := exec.Command("nice", "ewfacquire", "-u", "-q", "-t", ref, "-c", "deflate:fast",
				"-C", "c", "-D", "d", "-E", "e", "-e", "x", "-N", "n", src).CombinedOutput(); err != nil {
				t.Fatalf("ewfacquire: %v\n%s", err, out)
			}
			oursSize := segmentsSize(t, ours.Files())
			refSize := segmentsSize(t, []string{ref + ".E01"})
			t.Logf("%s (%s engine): ours %d bytes, ewfacquire %d bytes (%.4f)", kind, deflate.Engine(),
				oursSize, refSize, float64(oursSize)/float64(refSize))
			if float64(oursSize) > 1.01*float64(refSize) {
				t.Errorf("fast image of %d bytes is more than 1%% over ewfacquire's %d", oursSize, refSize)
			}
			m, s := fileHashes(t, src)
			ewfverify(t, ours.Files()[0], m, s)
		})
	}
}
