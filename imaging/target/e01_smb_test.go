package target

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/internal/testenv"
)

// An E01 of the corpus (under -race its first 32 MiB) written through the user-space SMB client to
// a real Samba share verifies with the source's hashes, read back from the share's directory by
// libewf.
func TestE01ToSambaVerifies(t *testing.T) {
	src := testenv.CorpusPrefix(t)
	ewfverify := testenv.Tool(t, "ewfverify")
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tgt, err := OpenSMB(ctx, smbSpec(srv, "lab/case1"))
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	w, err := ewf.NewWriter(func(name string) (ewf.File, error) { return tgt.Create(name) }, "img",
		ewf.Options{Compression: ewf.CompressFast, MediaSize: st.Size(), Metadata: ewf.Metadata{CaseNumber: "SMB-1"}})
	if err != nil {
		t.Fatal(err)
	}
	m5, s1 := md5.New(), sha1.New()
	start := time.Now()
	if _, err := io.Copy(io.MultiWriter(w, m5, s1), f); err != nil {
		t.Fatal(err)
	}
	w.SetHash("MD5", m5.Sum(nil))
	w.SetHash("SHA1", s1.Sum(nil))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("E01 fast of %d bytes to Samba in %v", st.Size(), time.Since(start))
	out, err := exec.Command(ewfverify, "-q", "-d", "sha1", filepath.Join(share, "lab", "case1", "img.E01")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") ||
		!strings.Contains(string(out), hex.EncodeToString(m5.Sum(nil))) || !strings.Contains(string(out), hex.EncodeToString(s1.Sum(nil))) {
		t.Fatalf("ewfverify on the share: %v\n%s", err, out)
	}
	if got := tgt.Display("img.E01"); !strings.HasPrefix(got, "//127.0.0.1/") || !strings.HasSuffix(got, "/lab/case1/img.E01") {
		t.Fatalf("display path %q", got)
	}
}
